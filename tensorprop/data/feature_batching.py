"""Padded batches that carry precomputed per-atom features (frozen foundation features) with the graph.

A :class:`FeatureBatch` is the network input of the heads on foundation features: a
:class:`~tensorprop.data.batching.GraphBatch` plus one node array ``features`` (N, F) in the batch's node
order (padded rows zero). Training batches pair it with the crystals' :class:`~tensorprop.data.batching.TensorLabels`
in a :class:`~tensorprop.data.batching.Batch`.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

from ..config import BatchConfig
from .batching import Batch, GraphBatch, budget_sizes, collate, pack, tensor_labels
from .graph import Graph

__all__ = ["FeatureBatch", "with_features", "collate_features", "make_feature_batches", "feature_collate"]


class FeatureBatch(NamedTuple):
    """graph: GraphBatch; features (N, F) per-atom features of the real atoms, zero on padding."""

    graph: GraphBatch
    features: np.ndarray


def with_features(graph: GraphBatch, features: Sequence[np.ndarray], dtype=np.float32) -> FeatureBatch:
    """The FeatureBatch of a padded ``graph`` and its structures' features ((n_atoms, F) each, in batch order)."""
    width = features[0].shape[1] if len(features) else 0
    out = np.zeros((graph.node_mask.shape[0], width), dtype)
    if len(features):
        rows = np.concatenate(features)
        out[:len(rows)] = rows
    return FeatureBatch(graph, out)


def collate_features(graphs: Sequence[Graph], features: Sequence[np.ndarray], budget: BatchConfig,
                     dtype=np.float32) -> Batch:
    """Pad structures (already packed within ``budget``), their features ((n_atoms, F) each) and their Z*/eps_inf
    labels: Batch(FeatureBatch, TensorLabels)."""
    n, _, g = sizes = budget_sizes(graphs, budget)
    return Batch(with_features(collate(graphs, *sizes, dtype=dtype), features, dtype),
                 tensor_labels(graphs, n, g, dtype))


def make_feature_batches(graphs: Sequence[Graph], features: Sequence[np.ndarray], budget: BatchConfig,
                         dtype=np.float32) -> list[tuple[np.ndarray, Batch]]:
    """Pack and collate: a list of (graph indices, Batch(FeatureBatch, TensorLabels))."""
    return [(idx, collate_features([graphs[i] for i in idx], [features[i] for i in idx], budget, dtype))
            for idx in pack(graphs, budget)]


def feature_collate(graphs: Sequence[Graph], features: Sequence[np.ndarray], budget: BatchConfig, dtype=np.float32):
    """The collate of feature training batches for :func:`~tensorprop.data.batching.training_stream`:
    ``(graph indices, step) -> Batch(FeatureBatch, TensorLabels)`` (no augmentation: the step is not used)."""
    return lambda idx, _: collate_features([graphs[i] for i in idx], [features[i] for i in idx], budget, dtype)
