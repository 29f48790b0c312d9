"""Optimiser, training state and the jit-compiled training and evaluation steps."""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from .losses import loss_fn

__all__ = ["TrainState", "make_optimizer", "init_state", "apply_update", "make_train_step", "make_eval_step"]


class TrainState(NamedTuple):
    """step () int32; params, ema_params: haiku dicts; opt_state: optax state;
    skipped () int32: steps not applied because the loss or a gradient was not finite."""

    step: jax.Array
    params: dict
    opt_state: optax.OptState
    ema_params: dict
    skipped: jax.Array


def make_optimizer(cfg) -> optax.GradientTransformation:
    """Warm-up + cosine decay schedule, global-norm clipping, AdamW or AMSGrad (``TrainConfig``)."""
    schedule = optax.warmup_cosine_decay_schedule(
        init_value=0.0, peak_value=cfg.learning_rate, warmup_steps=min(cfg.warmup_steps, cfg.max_steps - 1),
        decay_steps=cfg.max_steps, end_value=cfg.learning_rate * cfg.final_lr_ratio)
    if cfg.optimizer == "amsgrad":
        base = optax.chain(optax.scale_by_amsgrad(), optax.add_decayed_weights(cfg.weight_decay),
                           optax.scale_by_learning_rate(schedule))
    else:
        base = optax.adamw(schedule, weight_decay=cfg.weight_decay)
    return optax.chain(optax.clip_by_global_norm(cfg.grad_clip), base) if cfg.grad_clip > 0 else base


def init_state(params, optimizer) -> TrainState:
    params = jax.tree.map(jnp.asarray, params)
    ema = jax.tree.map(lambda x: jnp.array(x, copy=True), params)  # distinct buffers: the step donates both
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=optimizer.init(params),
                      ema_params=ema, skipped=jnp.zeros((), jnp.int32))


def _all_finite(tree) -> jax.Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))


def apply_update(state: TrainState, value, grads, optimizer, cfg, lr_scale=1.0) -> tuple[TrainState, jax.Array]:
    """One optimiser update with EMA, unless the loss or a gradient is not finite (then the state is
    kept and ``skipped`` counts it). ``lr_scale`` multiplies the update (the learning rate, weight
    decay included: both end in optax's scale-by-learning-rate); the ``rollback`` NaN policy lowers it.
    Returns (new state, whether the update was applied)."""
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    updates = jax.tree.map(lambda u: u * lr_scale, updates)
    params = optax.apply_updates(state.params, updates)
    # EMA with a warm start: the average forgets the random initial weights quickly
    decay = jnp.minimum(cfg.ema_decay, (1.0 + state.step) / (10.0 + state.step))
    ema = jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, state.ema_params, params)
    ok = jnp.isfinite(value) & _all_finite(grads)
    keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(ok, n, o), new, old)  # noqa: E731
    return TrainState(step=state.step + 1, params=keep(params, state.params),
                      opt_state=keep(opt_state, state.opt_state), ema_params=keep(ema, state.ema_params),
                      skipped=state.skipped + (~ok).astype(jnp.int32)), ok


def make_train_step(apply: Callable, optimizer, cfg, loss: Callable = loss_fn) -> Callable:
    """``(state, stats, batch) -> (state, metrics)``, jit-compiled with the state donated.

    ``batch``: a :class:`~tensorprop.data.batching.Batch`; ``apply(params, stats, batch.inputs) -> predictions``
    (see ``Model.apply``: the network sees the inputs only); ``loss(predictions, batch, cfg) -> (scalar, error
    sums)`` reads the labels from ``batch.labels``. A step whose
    loss or gradient is not finite leaves params, optimiser and EMA untouched and counts
    in ``state.skipped`` (``nan_policy="skip"``). ``lr_scale`` (a float32 scalar, default 1)
    multiplies the learning rate.
    """

    def step_fn(state: TrainState, stats, batch, lr_scale=jnp.float32(1.0)):
        def objective(params):
            return loss(apply(params, stats, batch.inputs), batch, cfg)

        (value, errors), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
        new_state, ok = apply_update(state, value, grads, optimizer, cfg, lr_scale)
        return new_state, {"loss": value, "finite": ok, **errors}

    return jax.jit(step_fn, donate_argnums=(0,))


def make_eval_step(apply: Callable, cfg, loss: Callable = loss_fn) -> Callable:
    """``(params, stats, batch) -> (predictions, error sums and loss)``, jit-compiled (``batch``: a Batch, its
    inputs to ``apply``, its labels to ``loss``)."""

    def eval_fn(params, stats, batch):
        pred = apply(params, stats, batch.inputs)
        value, errors = loss(pred, batch, cfg)
        return pred, {"loss": value, **errors}

    return jax.jit(eval_fn)
