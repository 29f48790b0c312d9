"""Losses of a field model trained on energies, forces and dipoles under fields (and Z* where labelled)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ..outputs import BORN_CHARGES, DIPOLE, ENERGY, FORCES
from ..physics.electrostatics import EANG_DEBYE

__all__ = ["field_errors", "field_loss_fn"]


def field_errors(pred: dict, batch) -> dict:
    """Sums of absolute/squared errors and counts: ``energy`` per atom (eV/atom), ``forces`` (eV/A,
    components), ``dipole`` (Debye, components; labels are e*A), ``born`` (e, 9 components of labelled atoms)."""
    g, y = batch.graph, batch.labels  # Batch(FieldInputs, FieldLabels)
    dt = g.positions.dtype
    n_atoms = jnp.maximum(g.n_atoms.astype(dt), 1.0)
    me = (y.energy_mask & g.graph_mask).astype(dt)
    de = (pred[ENERGY] - y.energy) / n_atoms * me
    mf = (y.forces_mask & g.node_mask).astype(dt)[:, None]
    df = (pred[FORCES] - y.forces) * mf
    md = (y.dipole_mask & g.graph_mask).astype(dt)[:, None]
    dd = (pred[DIPOLE] - y.dipole) * EANG_DEBYE * md
    mb = (g.node_mask & y.born_mask[g.node_graph]).astype(dt)[:, None, None]
    db = (pred[BORN_CHARGES] - y.born_charges) * mb
    out = {}
    for name, d, count in ((ENERGY, de, me.sum()), (FORCES, df, 3.0 * mf.sum()), (DIPOLE, dd, 3.0 * md.sum()),
                           ("born", db, 9.0 * mb.sum())):
        out.update({f"{name}_abs": jnp.abs(d).sum(), f"{name}_sq": (d * d).sum(), f"{name}_count": count})
    return out


def field_loss_fn(pred: dict, batch, cfg) -> tuple[jax.Array, dict]:
    """Weighted mean squared errors: ``energy_weight`` (eV/atom), ``forces_weight`` (eV/A),
    ``dipole_weight`` (Debye), ``born_weight`` (e)."""
    e = field_errors(pred, batch)
    mse = {k: e[f"{k}_sq"] / jnp.maximum(e[f"{k}_count"], 1.0) for k in (ENERGY, FORCES, DIPOLE, "born")}
    loss = (cfg.energy_weight * mse[ENERGY] + cfg.forces_weight * mse[FORCES] + cfg.dipole_weight * mse[DIPOLE]
            + cfg.born_weight * mse["born"])
    return loss, e
