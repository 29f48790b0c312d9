"""A field-coupled NequIP energy E(R, F): per-atom energy terms up to second order in the field.

    E = sum_i [ e_i - mu_i . F - 1/2 F . alpha_i . F ] - F . sum_i q_i r_i

e_i (0e), mu_i (1o, a polar vector) and alpha_i (0e + 2e, symmetric) are read from the backbone's
features of atom i's environment; q_i are fixed per-species charges (training statistics, made
neutral per structure). The field F (G, 3) in V/Angstrom enters as an equivariant (1o) input, and
every response property is an exact derivative (see ``physics/field_response.py``).
"""

from __future__ import annotations

import jax.numpy as jnp

from ..physics.tensors import irreps_to_cartesian
from .backbone import Backbone
from .heads import IrrepsReadout

__all__ = ["FIELD_IRREPS", "field_energy_fn"]

FIELD_IRREPS = "0e + 1o + 0e + 2e"  # e_i, mu_i, alpha_i (0e + 2e)


def field_energy_fn(config):
    """``(batch, field (G, 3), charges (N,)) -> energy (G,)`` in eV, positions in Angstrom, field in V/A."""

    def forward(batch, field, charges):
        vectors = batch.positions[batch.senders] - batch.positions[batch.receivers] + batch.shifts
        features = Backbone(config, name="backbone")(vectors, batch.numbers, batch.senders, batch.receivers,
                                                     batch.edge_mask)
        out = IrrepsReadout(config.head_irreps, FIELD_IRREPS, name="field_head")(features).array  # [N, 10]
        e_i, mu_i = out[:, 0], out[:, 1:4]
        alpha_i = irreps_to_cartesian(out[:, 4:10], symmetric=True)  # [N, 3, 3]
        f = field[batch.node_graph]  # [N, 3]
        per_atom = (e_i - jnp.sum(mu_i * f, -1) - 0.5 * jnp.einsum("na,nab,nb->n", f, alpha_i, f)
                    - charges * jnp.sum(f * batch.positions, -1))
        per_atom = per_atom * batch.node_mask.astype(per_atom.dtype)
        return jnp.zeros(field.shape[0], per_atom.dtype).at[batch.node_graph].add(per_atom)

    return forward
