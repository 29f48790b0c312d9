"""Tensor heads: gated equivariant readouts from backbone features to irreps outputs."""

from __future__ import annotations

import haiku as hk
import jax
import jax.numpy as jnp

from .._lazy import e3nn
from .backbone import NUM_ELEMENTS, gated, with_gate_scalars

__all__ = ["IrrepsReadout", "CartesianReadout", "graph_mean"]


class IrrepsReadout(hk.Module):
    """features (N, irreps) -> Linear -> gate -> Linear -> (N, irreps_out).

    Used with ``irreps_out = 0e+1e+2e`` for Born charges (per atom) and ``0e+2e`` for the
    dielectric tensor (per atom, then averaged over the structure).
    """

    def __init__(self, hidden_irreps, irreps_out, name=None):
        super().__init__(name=name)
        self.hidden_irreps = e3nn.Irreps(hidden_irreps)
        self.irreps_out = e3nn.Irreps(irreps_out)

    def __call__(self, x: e3nn.IrrepsArray) -> e3nn.IrrepsArray:
        h = gated(e3nn.haiku.Linear(with_gate_scalars(self.hidden_irreps), name="hidden")(x))
        return e3nn.haiku.Linear(self.irreps_out, name="out", force_irreps_out=True)(h)


class CartesianReadout(hk.Module):
    """Invariant (0e) features and a species embedding -> MLP -> ``n_out`` numbers in the lab frame.

    The non-equivariant baseline of the tensor heads: it sees only invariants, so it cannot know
    the orientation of the structure and must learn the lab-frame components from the data.
    """

    def __init__(self, n_out: int, features: int = 64, layers: int = 2, name=None):
        super().__init__(name=name)
        self.n_out, self.features, self.layers = n_out, features, layers

    def __call__(self, x: e3nn.IrrepsArray, numbers: jax.Array) -> jax.Array:
        h = jnp.concatenate([x.filter(keep="0e").array, hk.Embed(NUM_ELEMENTS, 16, name="species")(numbers)], -1)
        for i in range(self.layers):
            h = jax.nn.silu(hk.Linear(self.features, name=f"dense_{i}")(h))
        return hk.Linear(self.n_out, name="out")(h)


def graph_mean(x: jax.Array, node_graph, node_mask, n_graphs: int) -> jax.Array:
    """Mean of per-node rows (N, ...) over the real atoms of each structure -> (G, ...).

    A mean (not a sum) makes a graph-level intensive property, such as eps_inf,
    independent of the number of atoms in the chosen cell.
    """
    w = node_mask.astype(x.dtype).reshape((-1,) + (1,) * (x.ndim - 1))
    total = jax.ops.segment_sum(x * w, node_graph, num_segments=n_graphs)
    count = jax.ops.segment_sum(node_mask.astype(x.dtype), node_graph, num_segments=n_graphs)
    return total / jnp.maximum(count, 1.0).reshape((-1,) + (1,) * (x.ndim - 1))
