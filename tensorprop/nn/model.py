"""The full network as a haiku function: padded batch -> irreps of each requested tensor."""

from __future__ import annotations

import haiku as hk
import jax
import jax.numpy as jnp

from ..outputs import BORN_CHARGES, EPSILON
from ..physics.tensors import BORN_IRREPS, EPSILON_IRREPS, cartesian_to_irreps
from .backbone import Backbone
from .heads import CartesianReadout, IrrepsReadout, graph_mean

__all__ = ["edge_vectors", "network_fn", "sum_rule_weights", "tensor_heads", "transformed_network"]


def edge_vectors(positions, senders, receivers, shifts):
    """r_ij = positions[senders] - positions[receivers] + shifts, (E, 3) Angstrom."""
    return positions[senders] - positions[receivers] + shifts


def network_fn(config):
    """A function ``batch -> {"born_irreps": (N, 9), "epsilon_irreps": (G, 6)}`` (only requested heads),
    plus ``"born_sum_rule_weights"`` (N,) > 0 with ``config.sum_rule == "weighted"``.

    Outputs are raw irreps; :func:`tensorprop.physics.assemble.assemble_tensors` turns them
    into Cartesian Z* (with the sum rule) and eps_inf (positive definite, >= 1). The equivariant and
    Cartesian readouts of tensorprop's backbone; the field-energy and foundation-feature networks are
    chosen by their tasks (:mod:`tensorprop.tasks`).
    """

    weighted = config.sum_rule == "weighted"

    def forward(batch):
        vectors = edge_vectors(batch.positions, batch.senders, batch.receivers, batch.shifts)  # [E, 3]
        shared = {}

        def backbone_for(target):
            """Per-atom features [N, hidden] that feed ``target``'s head: one backbone for all targets,
            or one each with ``config.backbone_per_target`` (no gradient of one target reaches another's)."""
            name = f"backbone_{target}" if config.backbone_per_target else "backbone"
            if name not in shared:
                shared[name] = Backbone(config, name=name)(
                    vectors, batch.numbers, batch.senders, batch.receivers, batch.edge_mask)
            return shared[name]

        out = {}
        if config.head == "cartesian":  # lab-frame components from invariants, mapped to the same irreps layout
            if BORN_CHARGES in config.targets:
                features = backbone_for(BORN_CHARGES)
                raw = CartesianReadout(9 + weighted, name="born_head")(features, batch.numbers)
                out["born_irreps"] = cartesian_to_irreps(raw[:, :9].reshape(-1, 3, 3)).array
                if weighted:
                    out["born_sum_rule_weights"] = sum_rule_weights(raw[:, 9])
            if EPSILON in config.targets:
                features = backbone_for(EPSILON)
                six = CartesianReadout(6, name="epsilon_head")(features, batch.numbers)  # xx yy zz yz xz xy
                i, j = jnp.array([0, 1, 2, 1, 0, 0]), jnp.array([0, 1, 2, 2, 2, 1])
                s = jnp.zeros((six.shape[0], 3, 3), six.dtype).at[:, i, j].set(six).at[:, j, i].set(six)
                per_atom = cartesian_to_irreps(s, symmetric=True).array
                out["epsilon_irreps"] = graph_mean(per_atom, batch.node_graph, batch.node_mask, batch.n_graphs)
            return out
        return tensor_heads(config, backbone_for, batch.node_graph, batch.node_mask, batch.n_graphs)

    return forward


def tensor_heads(config, features_for, node_graph, node_mask, n_graphs: int) -> dict:
    """The equivariant Z* and eps_inf heads (haiku modules ``born_head``, ``epsilon_head``) of every network
    that ends in per-atom irreps features: tensorprop's backbone and the foundation-feature readouts.

    ``features_for(target)`` -> the (N, irreps) :class:`e3nn.IrrepsArray` that feeds ``target``'s head (called
    only for the requested targets). Returns ``{"born_irreps": (N, 9), "epsilon_irreps": (G, 6)}`` (raw irreps,
    eps averaged over each graph's real atoms), plus ``"born_sum_rule_weights"`` (N,) with ``config.sum_rule ==
    "weighted"``.
    """
    weighted = config.sum_rule == "weighted"
    out = {}
    if BORN_CHARGES in config.targets:
        raw = IrrepsReadout(config.head_irreps, BORN_IRREPS + (" + 0e" if weighted else ""), name="born_head")(
            features_for(BORN_CHARGES)).array
        out["born_irreps"] = raw[:, :9]
        if weighted:
            out["born_sum_rule_weights"] = sum_rule_weights(raw[:, 9])
    if EPSILON in config.targets:
        per_atom = IrrepsReadout(config.head_irreps, EPSILON_IRREPS, name="epsilon_head")(features_for(EPSILON)).array
        out["epsilon_irreps"] = graph_mean(per_atom, node_graph, node_mask, n_graphs)
    return out


def sum_rule_weights(x):
    """Positive share weights (N,) of the acoustic-sum-rule correction from raw invariant scalars (N,)."""
    return jax.nn.softplus(x) + 1e-3


def transformed_network(config) -> hk.Transformed:
    """``hk.without_apply_rng(hk.transform(network_fn(config)))``: init(rng, batch), apply(params, batch)."""
    return hk.without_apply_rng(hk.transform(network_fn(config)))
