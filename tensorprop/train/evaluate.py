"""Accuracy of predictions against labels: MAE/RMSE, per-element errors (numpy, host side)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from ase.data import chemical_symbols

from ..data.records import Crystal

__all__ = ["tensor_metrics"]


def tensor_metrics(crystals: Sequence[Crystal], predictions: Sequence[dict]) -> dict:
    """Errors of predicted tensors against the crystals' labels.

    Born charges: MAE and RMSE (e) over all 9 components of every labelled atom, and the
    MAE per element. eps_inf: MAE and RMSE over the 9 components, and separately over
    the diagonal and off-diagonal entries. Unlabelled structures are skipped for that target.
    """
    out: dict = {"n_structures": len(crystals)}
    born_err, born_z = [], []
    eps_err = []
    for c, p in zip(crystals, predictions):
        if c.born_charges is not None and "born_charges" in p:
            born_err.append((p["born_charges"] - c.born_charges).reshape(-1, 9))
            born_z.append(c.numbers)
        if c.epsilon is not None and "epsilon" in p:
            eps_err.append(p["epsilon"] - c.epsilon)
    if born_err:
        e = np.concatenate(born_err)
        z = np.concatenate(born_z)
        out["born_mae"] = float(np.abs(e).mean())
        out["born_rmse"] = float(np.sqrt((e**2).mean()))
        out["born_n_atoms"] = int(len(e))
        out["born_mae_per_element"] = {chemical_symbols[k]: float(np.abs(e[z == k]).mean()) for k in np.unique(z)}
    if eps_err:
        e = np.stack(eps_err)
        diag = np.eye(3, dtype=bool)
        out["epsilon_mae"] = float(np.abs(e).mean())
        out["epsilon_rmse"] = float(np.sqrt((e**2).mean()))
        out["epsilon_mae_diagonal"] = float(np.abs(e[:, diag]).mean())
        out["epsilon_mae_offdiagonal"] = float(np.abs(e[:, ~diag]).mean())
        out["epsilon_n_structures"] = int(len(e))
    return out
