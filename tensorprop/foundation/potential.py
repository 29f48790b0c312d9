"""Energy, forces and stress of padded graph batches, and per-layer features, with a Nequix network.

The batches are the project's :class:`~tensorprop.data.batching.GraphBatch` (built with a cutoff of at
least ``arch.cutoff``; edges beyond it contribute exactly zero). Forces are -dE/dR and the stress is
dE/d(strain) / volume (ase's sign: positive when the cell wants to shrink; eV/A^3), both by ``jax.grad``
of one function; strain acts on the edge vectors r -> r (1 + eps), which strains positions, cell and
image shifts alike. Compiled once per architecture and padded shape (``arch`` is a static argument).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from .._lazy import e3nn
from ..data.batching import GraphBatch
from .architecture import NequixArchitecture
from .network import node_energies, node_features

__all__ = ["batch_features", "energy_forces_stress", "species_indices"]


def species_indices(arch: NequixArchitecture, numbers: jax.Array) -> jax.Array:
    """[n] species indices; unknown elements (checked on the host before batching) and padding -> 0."""
    return jnp.maximum(jnp.asarray(arch.species_table)[numbers], 0)


def _edge_vectors(batch: GraphBatch, positions: jax.Array, strain: jax.Array) -> jax.Array:
    """[e, 3] edge vectors of the strained structure: r (1 + sym(eps)) with the strain of each edge's graph."""
    r = positions[batch.senders] - positions[batch.receivers] + batch.shifts  # [e, 3]
    eps = 0.5 * (strain + jnp.swapaxes(strain, -1, -2))  # [g, 3, 3]
    return r + jnp.einsum("ei,eij->ej", r, eps[batch.node_graph[batch.receivers]])


def batch_features(params: dict, arch: NequixArchitecture, batch: GraphBatch, *, unrolled: bool = False
                   ) -> list[e3nn.IrrepsArray]:
    """Hidden node features after each interaction layer for a padded batch (pure; jit it or call it
    inside a jitted function, with ``arch`` static). ``unrolled=True``: the faster forward pass on CPU, for
    features that are not differentiated (:func:`tensorprop.foundation.network.interaction`).

    Returns
    -------
    list of ``arch.n_layers`` IrrepsArrays [N, irreps] (N padded nodes; rows of padding nodes are
    meaningless, mask them with ``batch.node_mask``): ``arch.hidden_irreps`` after each layer but the
    last, the last layer's scalars (e.g. 128x0e) at the end.
    """
    strain = jnp.zeros_like(batch.cell)
    vectors = _edge_vectors(batch, batch.positions, strain)
    return node_features(params, arch, vectors, species_indices(arch, batch.numbers), batch.senders, batch.receivers,
                         batch.edge_mask, unrolled=unrolled)


def _graph_energies(params, arch, batch, positions, strain):
    """[G] energies of the batch's structures (padding graphs 0) at strained positions."""
    species = species_indices(arch, batch.numbers)
    vectors = _edge_vectors(batch, positions, strain)
    feats = node_features(params, arch, vectors, species, batch.senders, batch.receivers, batch.edge_mask)
    e = jnp.where(batch.node_mask, node_energies(params, arch, feats[-1], species), 0.0)  # [N]
    return jax.ops.segment_sum(e, batch.node_graph, num_segments=batch.cell.shape[0])


@partial(jax.jit, static_argnums=1)
def energy_forces_stress(params: dict, arch: NequixArchitecture, batch: GraphBatch
                         ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Energies [G] eV, forces [N, 3] eV/A (-dE/dR) and stresses [G, 3, 3] eV/A^3 (dE/d(strain) / V) of a
    padded batch; padding rows are zero."""
    strain = jnp.zeros_like(batch.cell)

    def total(positions, strain):
        energies = _graph_energies(params, arch, batch, positions, strain)
        return jnp.sum(energies), energies

    (dr, deps), energies = jax.grad(total, argnums=(0, 1), has_aux=True)(batch.positions, strain)
    volume = jnp.abs(jnp.linalg.det(batch.cell))  # [G]
    volume = jnp.where(batch.graph_mask & (volume > 0), volume, 1.0)
    stress = jnp.where(batch.graph_mask[:, None, None], deps / volume[:, None, None], 0.0)
    forces = jnp.where(batch.node_mask[:, None], -dr, 0.0)
    return jnp.where(batch.graph_mask, energies, 0.0), forces, stress
