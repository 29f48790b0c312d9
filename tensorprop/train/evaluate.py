"""Accuracy of predictions against labels: MAE/RMSE, per-element errors (numpy, host side), and the error sums of
the training stage's eval step over a set of batches (validation, and a field model on any split)."""

from __future__ import annotations

from typing import Sequence

import jax
import numpy as np
from ase.data import chemical_symbols

from ..config import BatchConfig
from ..data.batching import make_batches, node_slices, random_rotations
from ..data.field_batching import make_field_batches
from ..data.graph import build_graph
from ..data.records import Crystal
from ..outputs import BORN_CHARGES, BORN_CHARGES_SPREAD, CHARGES, DIPOLE, EPSILON, EPSILON_SPREAD, SITES
from ..physics.electrostatics import EANG_DEBYE, HARTREE_KCALMOL, esp
from .data import build_graphs
from .field_losses import field_loss_fn
from .state import make_eval_step

__all__ = ["summarize_errors", "validation_errors", "field_errors", "tensor_metrics", "coverage_metrics",
           "spread_metrics", "charge_metrics", "rotated_copies", "dipole_rotation_error", "field_born_report"]


def summarize_errors(sums: dict, prefix: str) -> dict:
    """Error sums ``{t}_abs``, ``{t}_sq``, ``{t}_count`` (see losses.tensor_errors, charge_losses.charge_errors)
    -> ``{prefix}_{t}_mae`` and ``{prefix}_{t}_rmse`` for every target ``t`` with a non-zero count."""
    out = {}
    for target in [k[:-len("_count")] for k in sums if k.endswith("_count")]:
        n = float(sums[f"{target}_count"])
        if n > 0:
            out[f"{prefix}_{target}_mae"] = float(sums[f"{target}_abs"]) / n
            out[f"{prefix}_{target}_rmse"] = float(np.sqrt(float(sums[f"{target}_sq"]) / n))
    return out


def validation_errors(eval_step, params, stats, batches) -> dict:
    """Mean loss over real structures (``valid_loss``) and the error metrics that ``eval_step`` sums over
    ``batches`` ((epoch, padded batch) pairs, as the batch iterators yield them), as MAE/RMSE keys prefixed
    ``valid_``. Serves the training loop's validation and ``tensorprop evaluate`` alike."""
    sums: dict = {}
    loss, n = 0.0, 0
    for _, b in batches:
        _, m = eval_step(params, stats, b)
        m = jax.device_get(m)
        real = int(b.graph.graph_mask.sum())
        loss += float(m.pop("loss")) * real
        n += real
        for k, v in m.items():
            sums[k] = sums.get(k, 0.0) + float(v)
    return {"valid_loss": loss / max(n, 1), **summarize_errors(sums, "valid")}


def field_errors(model, structures: Sequence[Crystal], cfg) -> dict:
    """Energy (eV/atom), force (eV/A) and dipole (D) MAE/RMSE of a field model E(R, F) on ``structures`` in their own
    fields, as the training stage's eval step sums them (``cfg``: the run's FitConfig, for its loss weights and
    batch budget). Keys ``energy_mae``, ``forces_rmse``, ...; Born-charge errors are left to
    :func:`field_born_report` (exact derivatives against finite-difference references)."""
    graphs = build_graphs(structures, model.config.cutoff)
    eval_step = make_eval_step(model.apply, cfg.train, field_loss_fn)
    errors = validation_errors(eval_step, model.params, model.stats, make_field_batches(structures, graphs, cfg.batch))
    return {k.replace("valid_", "", 1): v for k, v in errors.items() if k != "valid_loss" and "born" not in k}


def tensor_metrics(crystals: Sequence[Crystal], predictions: Sequence[dict]) -> dict:
    """Errors of predicted tensors against the crystals' labels.

    Born charges: MAE and RMSE (e) over all 9 components of every labelled atom, and the
    MAE per element. eps_inf: MAE and RMSE over the 9 components, and separately over
    the diagonal and off-diagonal entries. Unlabelled structures are skipped for that target.
    Predictions with an ensemble's spread (``born_charges_spread``, ``epsilon_spread``) add
    :func:`spread_metrics` under ``born_spread`` / ``epsilon_spread``.
    """
    out: dict = {"n_structures": len(crystals)}
    born_err, born_z, born_spread = [], [], []
    eps_err, eps_spread = [], []
    for c, p in zip(crystals, predictions):
        if c.born_charges is not None and BORN_CHARGES in p:
            born_err.append((p[BORN_CHARGES] - c.born_charges).reshape(-1, 9))
            born_z.append(c.numbers)
            born_spread.append(p.get(BORN_CHARGES_SPREAD))
        if c.epsilon is not None and EPSILON in p:
            eps_err.append(p[EPSILON] - c.epsilon)
            eps_spread.append(p.get(EPSILON_SPREAD))
    if born_err:
        e = np.concatenate(born_err)
        z = np.concatenate(born_z)
        out["born_mae"] = float(np.abs(e).mean())
        out["born_rmse"] = float(np.sqrt((e**2).mean()))
        out["born_n_atoms"] = int(len(e))
        out["born_mae_per_element"] = {chemical_symbols[k]: float(np.abs(e[z == k]).mean()) for k in np.unique(z)}
        if all(s is not None for s in born_spread):
            out["born_spread"] = spread_metrics(np.concatenate(born_spread), np.abs(e).mean(axis=1))
    if eps_err:
        e = np.stack(eps_err)
        diag = np.eye(3, dtype=bool)
        out["epsilon_mae"] = float(np.abs(e).mean())
        out["epsilon_rmse"] = float(np.sqrt((e**2).mean()))
        out["epsilon_mae_diagonal"] = float(np.abs(e[:, diag]).mean())
        out["epsilon_mae_offdiagonal"] = float(np.abs(e[:, ~diag]).mean())
        out["epsilon_n_structures"] = int(len(e))
        if all(s is not None for s in eps_spread):
            out["epsilon_spread"] = spread_metrics(np.asarray(eps_spread, float), np.abs(e).mean(axis=(1, 2)))
    return out


def coverage_metrics(train: Sequence[Crystal], crystals: Sequence[Crystal], predictions: Sequence[dict],
                     thresholds: Sequence[int] = (5, 10, 20, 40)) -> dict:
    """Z* MAE (e, 9 components of every atom) split by how well the training data covers each structure.

    For each threshold k: the structures whose every element occurs in at least k training
    structures ("covered") and the others, with their counts and Z* MAE. It separates the error
    a model makes on familiar chemistry from the error on elements it has seen a few times at most.
    """
    from collections import Counter

    count = Counter(int(z) for c in train for z in set(np.asarray(c.numbers).tolist()))
    labelled = [(c, p) for c, p in zip(crystals, predictions) if c.born_charges is not None and BORN_CHARGES in p]
    out = {}
    for k in thresholds:
        groups: dict = {"covered": [], "rest": []}
        for c, p in labelled:
            key = "covered" if min(count[int(z)] for z in set(np.asarray(c.numbers).tolist())) >= k else "rest"
            groups[key].append(np.abs(p[BORN_CHARGES] - c.born_charges).ravel())
        out[str(k)] = {f"{key}_{what}": value for key, errors in groups.items()
                       for what, value in (("n_structures", len(errors)),
                                           ("born_mae", float(np.concatenate(errors).mean()) if errors else None))}
    return out


def spread_metrics(spread: np.ndarray, error: np.ndarray, flag_fraction: float = 0.1) -> dict:
    """How well an ensemble's spread tells large errors from small ones.

    ``spread``, ``error``: one value per item (atom or structure), e.g. the members' RMS deviation
    and the MAE over the item's 9 components. Returns the mean spread, the Spearman rank correlation
    of spread and error, the share of the summed error carried by the ``flag_fraction`` of items
    with the largest spread, and the MAE of the other items (what remains once those are flagged).
    """
    from scipy.stats import spearmanr

    spread, error = np.asarray(spread, float), np.asarray(error, float)
    rho = float(spearmanr(spread, error).statistic) if len(spread) > 2 else float("nan")
    n_flag = int(np.ceil(flag_fraction * len(spread)))
    flagged = np.argsort(-spread, kind="stable")[:n_flag]
    rest = np.setdiff1d(np.arange(len(spread)), flagged)
    return {"mean": float(spread.mean()), "spearman_with_error": rho,
            "flag_fraction": flag_fraction, "error_share_flagged": float(error[flagged].sum() / error.sum()),
            "mae_unflagged": float(error[rest].mean()) if len(rest) else float("nan")}


def charge_metrics(molecules: Sequence, predictions: Sequence[dict]) -> dict:
    """ESP errors (kcal/mol/e, over every ESP point) and dipole errors (Debye; ``dipole_mae`` is the mean
    length of the error vector, rotation-invariant; ``dipole_component_mae`` over the 3 components)
    of charge-model predictions (``charges``/``sites``/``dipole``) against the molecules' labels."""
    out: dict = {"n_molecules": len(molecules)}
    esp_err, dip_err = [], []
    for m, p in zip(molecules, predictions):
        if m.esp is not None:
            v = np.asarray(esp(p[SITES].reshape(-1, 3), p[CHARGES].reshape(-1), m.esp_points))
            esp_err.append((v - m.esp) * HARTREE_KCALMOL)
        if m.dipole is not None:
            dip_err.append((p[DIPOLE] - m.dipole) * EANG_DEBYE)
    if esp_err:
        e = np.concatenate(esp_err)
        out.update(esp_rmse=float(np.sqrt((e**2).mean())), esp_mae=float(np.abs(e).mean()), esp_n_points=int(e.size))
    if dip_err:
        e = np.stack(dip_err)
        n = np.linalg.norm(e, axis=1)
        out.update(dipole_mae=float(n.mean()), dipole_rmse=float(np.sqrt((n**2).mean())),
                   dipole_component_mae=float(np.abs(e).mean()), dipole_n_molecules=int(len(e)))
    return out


def rotated_copies(molecules: Sequence, seed: int = 0) -> tuple[list, np.ndarray]:
    """Each molecule (with its labels) under its own uniformly random rotation; (molecules, rotations)."""
    rot = random_rotations(np.random.default_rng(seed), len(molecules))
    return [m.rotated(r) for m, r in zip(molecules, rot)], rot


def dipole_rotation_error(model, molecule, n_rotations: int = 16, seed: int = 0) -> np.ndarray:
    """|R^T d(R x) - d(x)| in Debye for ``n_rotations`` random rotations R: zero (to float precision)
    for an equivariant model, the spread of a non-equivariant one."""
    rot = random_rotations(np.random.default_rng(seed), n_rotations)
    preds = model.predict_many([molecule] + [molecule.rotated(r) for r in rot])
    d0 = preds[0][DIPOLE]
    return np.array([np.linalg.norm(r.T @ p[DIPOLE] - d0) * EANG_DEBYE for r, p in zip(rot, preds[1:])])


def field_born_report(model, molecules) -> dict:
    """Born charges of a field model (autodiff, zero field) against the reference Z* of each molecule.

    Returns ``per_molecule_mae`` (one MAE per molecule, e, over its 9 x n_atoms components),
    ``born_mae``/``born_rmse`` over all components, ``max_sum_rule_violation`` (e), the stacked
    ``predicted``/``reference`` components for parity plots, the labelled ``molecules`` and their
    ``predicted_born_charges`` ((n_atoms, 3, 3) each).
    """
    molecules = [m for m in molecules if m.born_charges is not None]
    graphs = [build_graph(m, model.config.cutoff) for m in molecules]
    size = max(g.n_nodes for g in graphs)
    budget = BatchConfig(max_nodes=max(64, 16 * size), max_edges=max(512, 16 * size * size), max_graphs=16)
    predicted = [None] * len(molecules)
    for idx, batch in make_batches(graphs, budget):
        field = np.zeros((batch.graph_mask.shape[0], 3), np.float32)  # the references are at zero field
        z = np.asarray(jax.device_get(model.response(model.params, model.stats, batch, field,
                                                     want=(BORN_CHARGES,))[BORN_CHARGES]))
        for i, atoms in zip(idx, node_slices(graphs, idx)):
            predicted[i] = z[atoms]
    errors = [p - m.born_charges for p, m in zip(predicted, molecules)]
    every = np.concatenate([e.ravel() for e in errors])
    return {"per_molecule_mae": np.array([np.abs(e).mean() for e in errors]),
            "born_mae": float(np.abs(every).mean()), "born_rmse": float(np.sqrt((every ** 2).mean())),
            "max_sum_rule_violation": float(max(np.abs(p.sum(0)).max() for p in predicted)),
            "predicted": np.concatenate([p.ravel() for p in predicted]),
            "reference": np.concatenate([m.born_charges.ravel() for m in molecules]),
            "n_molecules": len(molecules), "molecules": molecules, "predicted_born_charges": predicted}
