"""Training setup of heads on frozen foundation features (``model.foundation.mode: frozen``).

The features of every train/valid structure come from the on-disk cache
(:mod:`tensorprop.data.feature_cache`, keyed by the checkpoint's SHA256 and the structure) or are
computed once and stored; the training batches carry them as one node array
(:class:`~tensorprop.data.feature_batching.FeatureBatch`), so a step costs only the heads.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from ..api import init_params
from ..config import FitConfig
from ..data.batching import graph_part
from ..data.feature_batching import feature_stream, make_feature_batches
from ..data.feature_cache import FeatureCache, cached_features
from ..errors import ConfigError
from ..feature_source import open_source, select_layers
from ..foundation_model import FoundationTensorModel
from .data import build_graphs, load_training_data
from .losses import loss_fn

__all__ = ["prepare_foundation", "resolve_foundation", "feature_loss_fn"]


def feature_loss_fn(pred: dict, batch, cfg):
    """:func:`~tensorprop.train.losses.loss_fn` on the graph part of a FeatureBatch."""
    return loss_fn(pred, graph_part(batch), cfg)


def resolve_foundation(cfg: FitConfig, source) -> FitConfig:
    """``cfg`` with ``model.foundation`` naming the source's SHA256 and the irreps of the selected layers.

    A config that already names a SHA256 must match the checkpoint found (else CheckpointError)."""
    fc = cfg.model.foundation
    _, irreps = select_layers(source.layer_irreps, fc.layers)
    fc = dataclasses.replace(fc, sha256=source.sha256, feature_irreps=irreps)
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, foundation=fc))


def prepare_foundation(cfg: FitConfig, adapt_model: bool, dtype, progress: bool):
    """The :class:`~tensorprop.train.loop.TrainingSetup` of a frozen-feature model."""
    from .setup import TrainingSetup, _adapt
    from .state import init_state, make_optimizer

    tc, fc = cfg.train, cfg.model.foundation
    if fc.mode != "frozen":
        raise ConfigError("model.foundation.mode: finetune is not available yet; use mode: frozen")
    if tc.augment_rotations or tc.position_noise or cfg.data.extra_train:
        raise ConfigError("model.foundation (frozen features) does not combine with train.augment_rotations, "
                          "train.position_noise or data.extra_train (the cached features are of the structures as read)")
    source = open_source(fc.name, fc.sha256)
    cfg = resolve_foundation(cfg, source)
    data = load_training_data(cfg.data, tc.seed)
    train_graphs = build_graphs(data.train, cfg.model.cutoff, progress=progress, desc="train graphs")
    valid_graphs = build_graphs(data.valid, cfg.model.cutoff, progress=progress, desc="valid graphs")
    cfg, stats = _adapt(cfg, train_graphs, adapt_model)
    model = FoundationTensorModel(cfg.model, jax.tree.map(lambda x: np.asarray(x, dtype), init_params(cfg.model, tc.seed)),
                                  stats, elements=data.train.elements, source=source,
                                  metadata={"dataset": cfg.data.dataset, "n_train": len(data.train),
                                            "foundation": {"name": source.name, "sha256": source.sha256}})
    cache = FeatureCache(source.sha256, "+".join(source.layer_irreps))
    columns, _ = select_layers(source.layer_irreps, cfg.model.foundation.layers)
    train_features, valid_features = ([f[:, columns] for f in cached_features(list(part), source, cache,
                                                                               progress=progress)]
                                      for part in (data.train, data.valid))
    optimizer = make_optimizer(tc)

    def stream(start):
        return feature_stream(train_graphs, train_features, cfg.batch, tc.seed, start_step=start, dtype=dtype)

    return TrainingSetup(cfg, data, train_graphs, valid_graphs, model, optimizer, init_state(model.params, optimizer),
                         feature_loss_fn, stream, make_feature_batches(valid_graphs, valid_features, cfg.batch, dtype))
