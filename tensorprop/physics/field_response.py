"""Response properties of a field-coupled energy E(R, F) by automatic differentiation.

With E in eV, R in Angstrom and F in V/Angstrom:

    forces         f_(i,b)      = -dE/dR_(i,b)                 eV/A
    dipole         P_a          = -dE/dF_a                     e*A  (per structure)
    Born charges   Z*_(i,a,b)   = dP_a/dR_(i,b) = df_(i,b)/dF_a   e  (phonopy's order)
    polarisability alpha_(a,b)  = dP_a/dF_b = -d2E/dF_a dF_b    e*A^2/V
    eps_inf        eps          = I + alpha / (eps0 V)          (periodic structures, V in A^3)

Forces of a translation-invariant energy sum to zero at any field, so the Born charges obey the
acoustic sum rule exactly, with no correction.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from ..outputs import BORN_CHARGES, DIPOLE, ENERGY, EPSILON, FORCES, POLARISABILITY

__all__ = ["EPSILON0", "field_response", "neutral_species_charges"]

EPSILON0 = 0.0055263494  # vacuum permittivity, e / (V * Angstrom)


def neutral_species_charges(stats: dict, batch) -> jax.Array:
    """Per-atom fixed charges q_i (N,) from the per-species ``born_shift``, shifted so each structure is neutral."""
    q = jnp.asarray(stats["born_shift"], batch.positions.dtype)[batch.numbers]
    w = batch.node_mask.astype(q.dtype)
    g = batch.graph_mask.shape[0]
    total = jax.ops.segment_sum(q * w, batch.node_graph, num_segments=g)
    count = jnp.maximum(jax.ops.segment_sum(w, batch.node_graph, num_segments=g), 1.0)
    return (q - (total / count)[batch.node_graph]) * w


def field_response(energy: Callable, batch, field=None, *, want=(BORN_CHARGES, EPSILON)) -> dict:
    """Derivatives of ``energy(positions (N, 3), field (G, 3)) -> (G,)`` at ``field`` (default zero).

    Returns ``energy`` (G,), ``forces`` (N, 3), ``dipole`` (G, 3) and, as requested in ``want``,
    ``born_charges`` (N, 3, 3), ``polarisability`` (G, 3, 3) and ``epsilon`` (G, 3, 3) (identity for
    structures without a cell volume).
    """
    g = batch.graph_mask.shape[0]
    dtype = batch.positions.dtype
    field = jnp.zeros((g, 3), dtype) if field is None else field

    def total(pos, f):
        return jnp.sum(energy(pos, f))

    def forces_and_dipole(pos, f):
        ge, gf = jax.grad(total, argnums=(0, 1))(pos, f)
        return -ge, -gf

    forces, dipole = forces_and_dipole(batch.positions, field)
    out = {ENERGY: energy(batch.positions, field), FORCES: forces, DIPOLE: dipole}
    need_alpha = POLARISABILITY in want or EPSILON in want
    if BORN_CHARGES in want or need_alpha:
        directions = jnp.eye(3, dtype=dtype)

        def along(a):  # d(forces, dipole)/dF_a with every structure's field moved along axis a
            return jax.jvp(lambda f: forces_and_dipole(batch.positions, f), (field,),
                           (jnp.broadcast_to(directions[a], (g, 3)),))[1]

        d_forces, d_dipole = jax.vmap(along)(jnp.arange(3))  # [3(a), N, 3(b)], [3(b), G, 3(a)]
        if BORN_CHARGES in want:
            out[BORN_CHARGES] = jnp.transpose(d_forces, (1, 0, 2)) * batch.node_mask[:, None, None]
        if need_alpha:
            alpha = jnp.transpose(d_dipole, (1, 2, 0))  # [G, a, b] = dP_a/dF_b
            alpha = 0.5 * (alpha + jnp.swapaxes(alpha, -1, -2))
            out[POLARISABILITY] = alpha
            volume = jnp.abs(jnp.linalg.det(batch.cell))
            periodic = (volume > 1e-6) & batch.graph_mask
            eps = jnp.eye(3, dtype=dtype) + alpha / (EPSILON0 * jnp.where(periodic, volume, 1.0))[:, None, None]
            out[EPSILON] = jnp.where(periodic[:, None, None], eps, jnp.eye(3, dtype=dtype))
    return out
