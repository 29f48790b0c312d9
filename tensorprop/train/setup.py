"""What a training run starts from (:class:`TrainingSetup`) and the model's adaptation to the training graphs."""

from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple

import optax

from ..config import FitConfig
from .state import TrainState
from .statistics import training_statistics

__all__ = ["TrainingSetup", "adapt"]


class TrainingSetup(NamedTuple):
    cfg: FitConfig  # with avg_num_neighbors filled in from the training graphs
    data: object  # SplitData
    train_graphs: list
    valid_graphs: list
    model: object  # a tensorprop.api.Model: initial weights, training statistics, elements seen
    optimizer: optax.GradientTransformation
    state: TrainState
    loss: Callable  # (predictions, batch, TrainConfig) -> (scalar, error sums)
    stream: Callable  # start_step -> iterator of (epoch, padded batch)
    valid_batches: list  # [(indices, padded batch)]


def adapt(cfg: FitConfig, train_graphs, adapt_model: bool):
    """-> (cfg with ``model.avg_num_neighbors`` from the training graphs when ``adapt_model``, the graphs' statistics)."""
    stats, avg_neighbors = training_statistics(train_graphs)
    if adapt_model:
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, avg_num_neighbors=round(avg_neighbors, 4)))
    return cfg, stats


_adapt = adapt  # the name train/foundation.py imports
