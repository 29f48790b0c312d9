"""Losses and error sums of the charge heads on padded ``Batch(ChargeInputs, ChargeLabels)``
(:mod:`tensorprop.data.molecule_batching`).

Losses are computed in the units people report (ESP in kcal/mol/e, dipoles in Debye) so
that both terms are of order one with unit weights.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ..outputs import CHARGES, DIPOLE, SITES
from ..physics.electrostatics import EANG_DEBYE, HARTREE_KCALMOL, batched_esp

__all__ = ["charge_errors", "charge_loss_fn"]


def charge_errors(pred: dict, batch) -> dict:
    """Sums of absolute/squared errors and counts: ``esp_*`` in kcal/mol/e over real ESP points,
    ``dipole_*`` in Debye of the error vector's length |d_pred - d_ref| of labelled molecules (a
    rotation-invariant figure, unlike per-component errors)."""
    g, y = batch.graph, batch.labels
    v = batched_esp(pred[SITES], pred[CHARGES], g.node_graph, g.node_mask, y.esp_points)  # [G, P]
    m = y.esp_mask.astype(v.dtype)
    de = (v - y.esp) * HARTREE_KCALMOL * m
    md = (y.dipole_mask & g.graph_mask).astype(v.dtype)[:, None]
    dd = (pred[DIPOLE] - y.dipole) * EANG_DEBYE * md
    sq = jnp.sum(dd * dd, axis=-1)
    return {"esp_abs": jnp.abs(de).sum(), "esp_sq": (de * de).sum(), "esp_count": m.sum(),
            "dipole_abs": jnp.sqrt(sq + 1e-30).sum(), "dipole_sq": sq.sum(), "dipole_count": md.sum()}


def charge_loss_fn(pred: dict, batch, cfg) -> tuple[jax.Array, dict]:
    """``esp_weight * mean(ESP error^2) + dipole_weight * mean(|dipole error|^2)`` in kcal/mol/e and Debye
    (``cfg``: TrainConfig)."""
    e = charge_errors(pred, batch)
    loss = (cfg.esp_weight * e["esp_sq"] / jnp.maximum(e["esp_count"], 1.0)
            + cfg.dipole_weight * e["dipole_sq"] / jnp.maximum(e["dipole_count"], 1.0))
    return loss, e
