"""Masked losses and error metrics on padded batches: ``Batch(inputs, TensorLabels)`` (labels from ``batch.labels``,
masks from the inputs' GraphBatch, ``batch.graph``).

Born charges: every one of the 9 components of every labelled atom counts equally.
Dielectric tensor: by default a log-eigenvalue loss, |logm(eps_pred - I) - logm(eps_true - I)|^2,
so that relative, not absolute, errors count and the few eps_inf > 50 in phonon-becs do
not dominate the gradient.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from ..outputs import BORN_CHARGES, EPSILON, EPSILON_LOG

__all__ = ["log_epsilon_target", "tensor_errors", "loss_fn"]


def _huber(x, delta):
    a = jnp.abs(x)
    return jnp.where(a <= delta, 0.5 * x * x, delta * (a - 0.5 * delta))


def _pointwise(err, kind: str, delta: float):
    if kind == "mse":
        return err * err
    if kind == "mae":
        return jnp.abs(err)
    return _huber(err, delta)


def log_epsilon_target(eps):
    """logm(eps - I) of label tensors (G, 3, 3), eigenvalues clipped at 1e-3 (no gradient)."""
    eps = jax.lax.stop_gradient(0.5 * (eps + jnp.swapaxes(eps, -1, -2)))
    w, v = jnp.linalg.eigh(eps - jnp.eye(3, dtype=eps.dtype))
    return jnp.einsum("gik,gk,gjk->gij", v, jnp.log(jnp.maximum(w, 1e-3)), v)


def _atom_mask(graph, labels):
    """(N,) float: real atoms of structures that carry Born labels."""
    return (graph.node_mask & labels.born_mask[graph.node_graph]).astype(graph.positions.dtype)


def tensor_errors(pred: dict, batch) -> dict:
    """Sums of absolute and squared errors, and counts, for metrics (masked, per batch).

    Keys: born_abs, born_sq, born_count (number of components), epsilon_abs, epsilon_sq,
    epsilon_count; only for targets present in ``pred``.
    """
    graph, labels = batch.graph, batch.labels
    out = {}
    if BORN_CHARGES in pred:
        m = _atom_mask(graph, labels)[:, None, None]
        d = (pred[BORN_CHARGES] - labels.born_charges) * m
        out.update(born_abs=jnp.abs(d).sum(), born_sq=(d * d).sum(), born_count=9.0 * m.sum())
    if EPSILON in pred:
        m = (labels.epsilon_mask & graph.graph_mask).astype(graph.positions.dtype)[:, None, None]
        d = (pred[EPSILON] - labels.epsilon) * m
        out.update(epsilon_abs=jnp.abs(d).sum(), epsilon_sq=(d * d).sum(), epsilon_count=9.0 * m.sum())
    return out


def loss_fn(pred: dict, batch, cfg) -> tuple[jax.Array, dict]:
    """Weighted training loss (scalar) and the error sums of :func:`tensor_errors`.

    ``batch``: Batch(inputs, TensorLabels); ``cfg`` is a :class:`~tensorprop.config.TrainConfig`.
    """
    graph, labels = batch.graph, batch.labels
    total = jnp.zeros((), graph.positions.dtype)
    if BORN_CHARGES in pred:
        m = _atom_mask(graph, labels)[:, None, None]
        per = _pointwise(pred[BORN_CHARGES] - labels.born_charges, cfg.born_loss, cfg.huber_delta) * m
        total = total + cfg.born_weight * per.sum() / jnp.maximum(9.0 * m.sum(), 1.0)
    if EPSILON in pred:
        m = (labels.epsilon_mask & graph.graph_mask).astype(graph.positions.dtype)[:, None, None]
        if cfg.epsilon_loss == "log":
            err = pred[EPSILON_LOG] - log_epsilon_target(labels.epsilon)
            per = err * err * m
        else:
            per = _huber(pred[EPSILON] - labels.epsilon, cfg.huber_delta) * m
        total = total + cfg.epsilon_weight * per.sum() / jnp.maximum(9.0 * m.sum(), 1.0)
    return total, tensor_errors(pred, batch)
