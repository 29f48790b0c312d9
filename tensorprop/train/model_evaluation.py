"""A trained model on a split (``tensorprop evaluate``): its structures, metrics, parity plots and report lines.

Each task (:mod:`tensorprop.tasks`) names one of the functions here as its ``evaluate``
(``(model, EvaluationRequest) -> Evaluation``); :func:`evaluate_model` looks it up and writes ``metrics.json``.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..data.molecules import load_molecules
from ..data.registry import load_dataset
from ..errors import TensorpropError
from ..outputs import BORN_CHARGES
from ..plots import charge_parity_plots, parity_plots
from .evaluate import charge_metrics, dipole_rotation_error, field_born_report, field_errors, rotated_copies, \
    tensor_metrics
from .run_folder import read_run_config

__all__ = ["EvaluationRequest", "Evaluation", "evaluate_model", "evaluate_tensors", "evaluate_field",
           "evaluate_charges"]


@dataclasses.dataclass(frozen=True)
class EvaluationRequest:
    """What to evaluate: ``run`` (a run folder, or a model file as named), ``split`` ("train", "valid", "test" or
    "all"), ``data`` (a data set name or file replacing the run's own, or None), ``plot_dir`` (where plots and
    metrics.json go) and whether to show progress."""

    run: Path
    split: str
    data: str | None
    plot_dir: Path
    progress: bool = True


class Evaluation(NamedTuple):
    """``metrics`` (written to metrics.json, printed by ``--json``) and the human-readable report ``lines``."""

    metrics: dict
    lines: list


def evaluate_model(model, request: EvaluationRequest) -> Evaluation:
    """Evaluate ``model`` (any task's model or an ensemble) as its task says; writes ``plot_dir/metrics.json``."""
    evaluation = model.task.evaluate(model, request)
    request.plot_dir.mkdir(parents=True, exist_ok=True)
    (request.plot_dir / "metrics.json").write_text(json.dumps(evaluation.metrics, indent=2))
    return evaluation


def _split_indices(run: Path, split: str) -> list:
    return json.loads((run / "split.json").read_text())[split]


def split_crystals(run: Path, split: str, data: str | None):
    """The crystals to evaluate: the run's own split, or (model file / ``data``) the data set's committed split."""
    if split == "all":
        return load_dataset(data or "phonon-becs")
    if run.is_dir() and (run / "split.json").is_file() and data is None:
        return load_dataset(read_run_config(run).data.dataset).subset(_split_indices(run, split))
    return load_dataset(data or "phonon-becs").split(split)


def evaluate_tensors(model, request: EvaluationRequest) -> Evaluation:
    """A crystal-tensor model (or ensemble): Z*/eps errors, ensemble spread, parity plots."""
    run, split = request.run, request.split
    crystals = split_crystals(run, split, request.data)
    unseen = sum(bool(model.unseen_elements(c)) for c in crystals)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # counted and reported below
        predictions = model.predict_many(crystals, progress=request.progress, unseen_elements="warn")
    metrics = {"run": str(run), "split": split, **tensor_metrics(crystals, predictions),
               "n_structures_with_unseen_elements": unseen}
    metrics["plots"] = [str(p) for p in parity_plots(crystals, predictions, request.plot_dir, title=f"({split})")]
    lines = [f"{run} on {split} ({metrics['n_structures']} structures, {unseen} with elements unseen in training)"]
    for key in ("born_mae", "born_rmse", "epsilon_mae", "epsilon_rmse", "epsilon_mae_diagonal",
                "epsilon_mae_offdiagonal"):
        if key in metrics:
            lines.append(f"  {key:<24} {metrics[key]:.4f}{' e' if key.startswith('born') else ''}")
    if "born_mae_per_element" in metrics:
        worst = sorted(metrics["born_mae_per_element"].items(), key=lambda kv: -kv[1])[:8]
        lines.append("  worst elements (born MAE, e): " + ", ".join(f"{k} {v:.3f}" for k, v in worst))
    for key, unit, items in (("born_spread", " e", "atoms"), ("epsilon_spread", "", "structures")):
        if key in metrics:
            s = metrics[key]
            lines.append(f"  {key:<24} mean {s['mean']:.4f}{unit}; rank correlation with the error "
                         f"{s['spearman_with_error']:.2f}; the {s['flag_fraction']:.0%} of {items} with the largest "
                         f"spread carry {s['error_share_flagged']:.0%} of the error (MAE of the rest "
                         f"{s['mae_unflagged']:.4f}{unit})")
    lines.append(f"  plots: {', '.join(metrics['plots'])}")
    return Evaluation(metrics, lines)


def evaluate_field(model, request: EvaluationRequest) -> Evaluation:
    """A field model E(R, F): energy, force and dipole errors in the structures' own fields, and its Born charges
    (d force / dF at zero field) against the finite-difference references."""
    run, split = request.run, request.split
    if not run.is_dir() or split == "all" and request.data is None:
        raise TensorpropError(f"{run}: evaluate a field model from its run folder (its split), or pass --data FILE "
                              "--split all")
    cfg = read_run_config(run)
    data = load_dataset(request.data or cfg.data.dataset, require_labels=False)
    if split != "all":
        data = data.subset(_split_indices(run, split))
    structures = list(data)
    metrics = {"run": str(run), "split": split, "n_structures": len(structures),
               **field_errors(model, structures, cfg)}
    metrics["plots"] = []
    if any(s.born_charges is not None for s in structures):
        born = field_born_report(model, structures)
        metrics.update({"n_with_reference_born": born["n_molecules"], "born_mae": born["born_mae"],
                        "born_rmse": born["born_rmse"], "born_mae_per_structure_median":
                            float(np.median(born["per_molecule_mae"])),
                        "born_mae_per_structure_max": float(born["per_molecule_mae"].max()),
                        "max_sum_rule_violation": born["max_sum_rule_violation"]})
        metrics["plots"] = [str(p) for p in parity_plots(
            born["molecules"], [{BORN_CHARGES: z} for z in born["predicted_born_charges"]], request.plot_dir,
            title=f"(d force / dF, {split})")]
    units = {"energy": "eV/atom", "forces": "eV/A", "dipole": "D", "born": "e"}
    lines = [f"{run} on {split} ({len(structures)} structures in their fields; Z* at zero field for "
             f"{metrics.get('n_with_reference_born', 0)} with finite-difference references)"]
    for key in ("energy_mae", "forces_mae", "dipole_mae", "born_mae", "born_rmse", "born_mae_per_structure_median",
                "born_mae_per_structure_max", "max_sum_rule_violation"):
        if key in metrics:
            lines.append(f"  {key:<32} {metrics[key]:.4g} {units.get(key.split('_')[0], 'e')}")
    if metrics["plots"]:
        lines.append(f"  plots: {', '.join(metrics['plots'])}")
    return Evaluation(metrics, lines)


def evaluate_charges(model, request: EvaluationRequest) -> Evaluation:
    """A charge model: ESP and dipole errors on the split, and on rotated copies."""
    run, split, data = request.run, request.split, request.data
    has_split = (run / "split.json").is_file()
    if data or not has_split:
        if not data:
            raise TensorpropError(f"{run}: a charge model file needs --data (an ESP .npz or molecule ext-xyz)")
        molecules = load_molecules(data)
    else:
        molecules = load_molecules(read_run_config(run).data.dataset)
    if split != "all" and has_split and not data:
        molecules = [molecules[i] for i in _split_indices(run, split)]
    predictions = model.predict_many(molecules)
    rotated, _ = rotated_copies(molecules, seed=0)
    metrics = {"run": str(run), "split": split, **charge_metrics(molecules, predictions),
               "rotated": charge_metrics(rotated, model.predict_many(rotated)),
               "dipole_rotation_error_debye_max": float(max(dipole_rotation_error(model, m, 8).max()
                                                            for m in molecules[:8]))}
    metrics["plots"] = [str(charge_parity_plots(molecules, predictions, request.plot_dir, f"({split})"))]
    lines = [f"{run} ({model}) on {split}: {metrics['n_molecules']} molecules"]
    for label, m in (("as given", metrics), ("randomly rotated", metrics["rotated"])):
        figures = [f"{k} {m[k]:.4f}" for k in ("esp_rmse", "esp_mae", "dipole_mae") if k in m]
        lines.append(f"  {label:<17} " + ", ".join(figures) + "  (ESP kcal/mol/e, dipole D)")
    lines.append(f"  dipole rotation error (max over 8 molecules x 8 rotations): "
                 f"{metrics['dipole_rotation_error_debye_max']:.2e} D")
    lines.append(f"  plots: {', '.join(metrics['plots'])}")
    return Evaluation(metrics, lines)
