"""Point-charge electrostatics: distributed charges -> sites, dipole and potential (pure jax).

Units (see ``docs/conventions.md``): positions and sites in Angstrom, charges in e, dipoles
in e*Angstrom, the electrostatic potential (ESP) in Hartree/e (atomic units, as PySCF gives
it); reports convert ESP to kcal/mol/e and dipoles to Debye with the constants below.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["BOHR", "HARTREE_KCALMOL", "EANG_DEBYE", "esp", "batched_esp", "bounded_displacement",
           "neutralize", "assemble_charges"]

BOHR = 0.529177210903  # Angstrom per bohr (CODATA 2018)
HARTREE_KCALMOL = 627.5094740631  # kcal/mol per Hartree
EANG_DEBYE = 4.803204712570263  # Debye per e*Angstrom


def esp(sites: jax.Array, charges: jax.Array, points: jax.Array) -> jax.Array:
    """Potential of point charges at query points.

    sites (S, 3) Angstrom, charges (S,) e, points (P, 3) Angstrom -> (P,) Hartree/e:
    ``V(p) = sum_s q_s / |p - s|`` with the distance in bohr.

    >>> import numpy as np
    >>> float(esp(np.zeros((1, 3)), np.ones(1), np.array([[BOHR, 0.0, 0.0]]))[0])
    1.0
    """
    d = jnp.linalg.norm(points[:, None, :] - sites[None, :, :], axis=-1) / BOHR  # [P, S] bohr
    return jnp.sum(charges[None, :] / d, axis=-1)


def batched_esp(sites, charges, node_graph, node_mask, points) -> jax.Array:
    """ESP of each molecule of a padded batch at its own points.

    sites (N, K, 3) Angstrom and charges (N, K) e of K charges per atom; node_graph (N,)
    int, node_mask (N,) bool; points (G, P, 3) Angstrom -> (G, P) Hartree/e. Charges of
    other molecules and of padding atoms do not contribute.
    """
    n, k = charges.shape
    own = (node_graph[None, :] == jnp.arange(points.shape[0])[:, None]) & node_mask[None, :]  # [G, N]
    q = jnp.where(own[:, :, None], charges[None], 0.0).reshape(points.shape[0], n * k)  # [G, N*K]
    diff = points[:, :, None, :] - sites.reshape(1, 1, n * k, 3)  # [G, P, N*K, 3]
    d = jnp.sqrt(jnp.sum(diff * diff, axis=-1) + 1e-12) / BOHR
    return jnp.einsum("gs,gps->gp", q, 1.0 / d)


def bounded_displacement(v: jax.Array, max_displacement: float) -> jax.Array:
    """Scale vectors (..., 3) to length ``max_displacement * tanh(|v|)``, keeping their direction.

    Rotation-equivariant (only the length is squashed), smooth at v = 0.
    """
    norm = jnp.sqrt(jnp.sum(v * v, axis=-1, keepdims=True) + 1e-12)
    return v * (max_displacement * jnp.tanh(norm) / norm)


def neutralize(charges, node_graph, node_mask, total_charge) -> jax.Array:
    """Shift charges (N, K) equally within each molecule so that they sum to ``total_charge`` (G,) exactly."""
    n_graphs = total_charge.shape[0]
    k = charges.shape[1]
    m = node_mask.astype(charges.dtype)[:, None]
    q = charges * m
    excess = jax.ops.segment_sum(q.sum(axis=1), node_graph, num_segments=n_graphs) - total_charge  # [G]
    count = jax.ops.segment_sum(m[:, 0], node_graph, num_segments=n_graphs) * k
    return (q - (excess / jnp.maximum(count, 1.0))[node_graph][:, None]) * m


def assemble_charges(raw_charges, displacements, batch, total_charge) -> dict:
    """Raw head outputs -> distributed charges, their sites and the molecular dipole.

    raw_charges (N, K) e; displacements (N, K, 3) Angstrom (already bounded); ``batch`` a
    :class:`~tensorprop.data.batching.GraphBatch`; total_charge (G,) e. Returns
    ``charges`` (N, K) summing to the total charge of each molecule, ``sites`` (N, K, 3)
    absolute positions, ``dipole`` (G, 3) e*Angstrom about each molecule's centroid of
    atoms (origin-independent for neutral molecules).
    """
    g = batch.graph_mask.shape[0]
    charges = neutralize(raw_charges, batch.node_graph, batch.node_mask, total_charge)
    sites = batch.positions[:, None, :] + displacements
    m = batch.node_mask.astype(sites.dtype)
    count = jnp.maximum(jax.ops.segment_sum(m, batch.node_graph, num_segments=g), 1.0)
    centroid = jax.ops.segment_sum(batch.positions * m[:, None], batch.node_graph, num_segments=g) / count[:, None]
    moment = jnp.sum(charges[:, :, None] * (sites - centroid[batch.node_graph][:, None, :]), axis=1)  # [N, 3]
    dipole = jax.ops.segment_sum(moment * m[:, None], batch.node_graph, num_segments=g)
    return {"charges": charges, "sites": sites, "dipole": dipole}
