"""Padded batches that carry precomputed per-atom features (frozen foundation features) with the graph.

A :class:`FeatureBatch` is a :class:`~tensorprop.data.batching.GraphBatch` plus one node array
``features`` (N, F) in the batch's node order (padded rows zero).
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

from ..config import BatchConfig
from .batching import GraphBatch, collate_in_budget, pack, training_stream
from .graph import Graph

__all__ = ["FeatureBatch", "collate_features", "make_feature_batches", "feature_stream"]


class FeatureBatch(NamedTuple):
    """graph: GraphBatch; features (N, F) per-atom features of the real atoms, zero on padding."""

    graph: GraphBatch
    features: np.ndarray


def collate_features(graphs: Sequence[Graph], features: Sequence[np.ndarray], budget: BatchConfig,
                     dtype=np.float32) -> FeatureBatch:
    """Pad structures (already packed within ``budget``) and their features ((n_atoms, F) each)."""
    graph = collate_in_budget(graphs, budget, dtype)
    width = features[0].shape[1] if len(features) else 0
    out = np.zeros((graph.node_mask.shape[0], width), dtype)
    if len(features):
        rows = np.concatenate(features)
        out[:len(rows)] = rows
    return FeatureBatch(graph, out)


def make_feature_batches(graphs: Sequence[Graph], features: Sequence[np.ndarray], budget: BatchConfig,
                         dtype=np.float32) -> list[tuple[np.ndarray, FeatureBatch]]:
    """Pack and collate: a list of (graph indices, FeatureBatch)."""
    return [(idx, collate_features([graphs[i] for i in idx], [features[i] for i in idx], budget, dtype))
            for idx in pack(graphs, budget)]


def feature_stream(graphs: Sequence[Graph], features: Sequence[np.ndarray], budget: BatchConfig, seed: int,
                   start_step: int = 0, dtype=np.float32):
    """(epoch, FeatureBatch) from ``start_step`` on: :func:`~tensorprop.data.batching.training_stream` of feature
    batches."""
    return training_stream(graphs, budget, seed, lambda idx, _: collate_features(
        [graphs[i] for i in idx], [features[i] for i in idx], budget, dtype), start_step)
