"""Training setup of heads on foundation features (``model.foundation``).

``mode: frozen``: the features of every train/valid structure come from the on-disk cache
(:mod:`tensorprop.data.feature_cache`, keyed by the checkpoint's SHA256 and the structure) or are
computed once and stored; the training batches carry them as one node array
(:class:`~tensorprop.data.feature_batching.FeatureBatch`, beside the crystals' labels), so a step costs only the
heads.

``mode: finetune``: the last ``finetune_layers`` interaction layers train with the heads, at
``backbone_lr_scale`` times the learning rate (:func:`finetune_optimizer`). The output of the frozen
layers below them does not change, so it is cached as in frozen mode (the same cache entries: all
layers' features are stored) and the batches carry it; the trained layers are recomputed on every
step from it over the batch's neighbour graph (at ``model.cutoff``, which must reach the
checkpoint's cutoff). With ``finetune_layers: all`` nothing is cached: the whole network runs from
the species on every step.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import optax

from ..api import init_params
from ..config import FitConfig
from ..data.batching import training_stream
from ..data.feature_batching import feature_collate, make_feature_batches
from ..errors import ConfigError
from ..foundation.finetune import is_backbone_module
from ..foundation.sources import batch_columns, first_trained_layer, open_source, select_layers
from ..foundation_model import FoundationTensorModel
from .data import build_graphs, load_training_data
from .losses import loss_fn
from .setup import TrainingSetup, _adapt
from .state import init_state, make_optimizer

__all__ = ["prepare_foundation", "resolve_foundation", "finetune_optimizer"]


def resolve_foundation(cfg: FitConfig, source) -> FitConfig:
    """``cfg`` with ``model.foundation`` naming the source's SHA256 and the irreps of the features its batches
    carry (:func:`~tensorprop.foundation.sources.batch_columns`); ConfigError for a layer out of range.

    A config that already names a SHA256 must match the checkpoint found (else CheckpointError)."""
    fc = cfg.model.foundation
    select_layers(source.layer_irreps, fc.layers)  # the heads' layers exist
    _, irreps = batch_columns(fc, source.layer_irreps)
    fc = dataclasses.replace(fc, sha256=source.sha256, feature_irreps=irreps)
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, foundation=fc))


def finetune_optimizer(tc, backbone_lr_scale: float) -> optax.GradientTransformation:
    """:func:`~tensorprop.train.state.make_optimizer` of ``tc`` for the heads and, at ``backbone_lr_scale``
    times the learning rate (same schedule), for the fine-tuned Nequix layers (parameter modules
    ``nequix_layer_<i>``). Each group clips its own gradient norm at ``train.grad_clip``."""

    def labels(params):
        return {m: jax.tree.map(lambda _, m=m: "backbone" if is_backbone_module(m) else "heads", d)
                for m, d in params.items()}

    slow = dataclasses.replace(tc, learning_rate=tc.learning_rate * backbone_lr_scale)
    return optax.multi_transform({"heads": make_optimizer(tc), "backbone": make_optimizer(slow)}, labels)


def _check_finetune(cfg: FitConfig, source) -> None:
    """ConfigError unless ``cfg`` can fine-tune ``source``: a Nequix checkpoint, graphs reaching its cutoff,
    no more trained layers than it has."""
    fc = cfg.model.foundation
    if getattr(source, "model", None) is None:
        raise ConfigError(f"model.foundation.mode: finetune needs a Nequix checkpoint; {fc.name!r} has no layers "
                          "to fine-tune")
    if cfg.model.cutoff < source.cutoff:
        raise ConfigError(f"model.cutoff {cfg.model.cutoff} A is below the cutoff of {fc.name} ({source.cutoff} A): "
                          f"mode: finetune runs its layers on the model's neighbour graph; set model.cutoff: "
                          f"{source.cutoff}")
    first_trained_layer(fc, len(source.layer_irreps))


def prepare_foundation(cfg: FitConfig, adapt_model: bool, dtype, progress: bool):
    """The :class:`~tensorprop.train.loop.TrainingSetup` of a foundation-feature model (frozen or fine-tuned)."""

    tc, fc = cfg.train, cfg.model.foundation
    if tc.augment_rotations or tc.position_noise or cfg.data.extra_train:
        raise ConfigError("model.foundation does not combine with train.augment_rotations, train.position_noise or "
                          "data.extra_train (the cached frozen features are of the structures as read)")
    source = open_source(fc.name, fc.sha256)
    if fc.mode == "finetune":
        _check_finetune(cfg, source)
    cfg = resolve_foundation(cfg, source)
    data = load_training_data(cfg.data, tc.seed)
    train_graphs = build_graphs(data.train, cfg.model.cutoff, progress=progress, desc="train graphs")
    valid_graphs = build_graphs(data.valid, cfg.model.cutoff, progress=progress, desc="valid graphs")
    cfg, stats = _adapt(cfg, train_graphs, adapt_model)
    params = jax.tree.map(lambda x: np.asarray(x, dtype), init_params(cfg.model, tc.seed))
    model = FoundationTensorModel(cfg.model, params,
                                  stats, elements=data.train.elements, source=source,
                                  metadata={"dataset": cfg.data.dataset, "n_train": len(data.train),
                                            "foundation": {"name": source.name, "sha256": source.sha256,
                                                           "mode": fc.mode}})
    model.use_feature_cache()  # the frozen features of train and valid: from disk, computed once where missing
    train_features, valid_features = [model.features(list(part), progress=progress)
                                      for part in (data.train, data.valid)]
    model.feature_cache = None
    optimizer = make_optimizer(tc) if fc.mode == "frozen" else finetune_optimizer(tc, fc.backbone_lr_scale)

    collate = feature_collate(train_graphs, train_features, cfg.batch, dtype)

    def stream(start):
        return training_stream(train_graphs, cfg.batch, tc.seed, collate, start)

    return TrainingSetup(cfg, data, train_graphs, valid_graphs, model, optimizer, init_state(model.params, optimizer),
                         loss_fn, stream, make_feature_batches(valid_graphs, valid_features, cfg.batch, dtype))

