"""The whole NAC workflow on a phonopy calculation: predict, compare with DFT, plot, summarise.

``run_nac`` loads a phonopy calculation (``phonopy_disp.yaml`` + ``FORCE_SETS``) with NAC
off, predicts the NAC parameters with a tensorprop model, optionally reads DFT ones from
a BORN file, and compares the Gamma-point frequencies (q along x, y, z) and the band
structures without NAC, with the predicted NAC and with the DFT NAC.

Files written to ``out_dir``: ``BORN`` (predicted, phonopy's format), ``bands.png`` and
``nac_summary.json`` (see :func:`run_nac` for its keys).
"""

from __future__ import annotations

import json
import os
import warnings
from collections import Counter
from pathlib import Path
from typing import Sequence

import numpy as np

from tensorprop.data.readers import read_born
from tensorprop.data.validate import acoustic_sum_rule_violation
from tensorprop.errors import DataError
from tensorprop.loading import load_model
from tensorprop.phonopy.bands import band_structure, direction_label, gamma_modes, plot_bands
from tensorprop.phonopy.born_file import write_born
from tensorprop.phonopy.nac import default_nac_factor, predict_nac, spread_text

__all__ = ["resolve_model", "load_phonopy", "run_nac", "format_gamma_table"]


def resolve_model(model=None):
    """A model object from None / ``"default"`` (the bundled model), a path, or a model itself.

    Anything with a ``predict`` method is returned unchanged; a string or path goes to
    :func:`tensorprop.load_model` (a ``.npz`` model file or a run folder).
    """
    if model is not None and hasattr(model, "predict"):
        return model

    return load_model(None if model is None else model)


def load_phonopy(phonopy_yaml: str | os.PathLike, force_sets: str | os.PathLike | None = None,
                 produce_fc: bool = True, **kwargs):
    """``phonopy.load`` with NAC switched off.

    ``is_nac=False`` keeps phonopy from taking NAC parameters from the yaml's own ``nac:``
    block or from a ``BORN`` file in the working directory; this module sets them explicitly.

    Parameters
    ----------
    phonopy_yaml : path
        ``phonopy_disp.yaml`` / ``phonopy.yaml``.
    force_sets : path, optional
        ``FORCE_SETS``; needed unless the yaml holds forces or force constants.
    produce_fc : bool
        Compute force constants.
    **kwargs
        Other arguments of ``phonopy.load`` (``primitive_matrix``, ``symprec``, ...).

    Returns
    -------
    phonopy.Phonopy
        With ``nac_params`` None.
    """
    import phonopy

    for what, path in (("phonopy yaml", phonopy_yaml), ("FORCE_SETS", force_sets)):
        if path is not None and not Path(path).is_file():
            raise DataError(str(path), f"no such file ({what})")
    try:
        phonon = phonopy.load(phonopy_yaml, force_sets_filename=None if force_sets is None else str(force_sets),
                              produce_fc=produce_fc, is_nac=False, log_level=0, **kwargs)
    except (RuntimeError, ValueError, KeyError, TypeError) as exc:
        raise DataError(str(phonopy_yaml), f"phonopy cannot load it: {type(exc).__name__}: {exc}") from None
    if produce_fc and phonon.force_constants is None:
        raise DataError(str(phonopy_yaml), "no force constants: give FORCE_SETS (or a yaml with forces)")
    phonon.nac_params = None
    return phonon


#: a reference BORN file whose tensors the crystal's symmetry changes by more than this (eps_inf: relative
#: to its largest element; Z*: e) or whose Z* break the acoustic sum rule by more (e) is of another crystal
REFERENCE_SYMMETRY_TOLERANCE = {"dielectric": 0.02, "born": 0.05, "sum_rule": 0.1}


def _reference_nac(path, phonon) -> dict:
    """phonopy nac_params of a DFT BORN file, read with phonopy's parser onto ``phonon.primitive``.

    phonopy checks the number of symmetry-independent atoms; a BORN file has no species, so a file of
    another crystal with as many independent atoms (ZnO's for MgO) is caught here by its symmetry and sum
    rule instead: its tensors must already obey this crystal's site symmetry (symmetrising them changes
    little) and its Z* the acoustic sum rule, within ``REFERENCE_SYMMETRY_TOLERANCE``.
    """
    from phonopy.structure.symmetry import symmetrize_borns_and_epsilon

    born, eps, factor = read_born(path, phonon.primitive, symprec=phonon.symmetry.tolerance)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # phonopy's own "symmetry largely broken" warning: measured below
        sym_born, sym_eps = symmetrize_borns_and_epsilon(born, eps, phonon.primitive,
                                                         symprec=phonon.symmetry.tolerance)
    tol = REFERENCE_SYMMETRY_TOLERANCE
    d_eps = float(np.abs(sym_eps - eps).max() / max(np.abs(eps).max(), 1.0))
    d_born = float(np.abs(sym_born - born).max())
    asr = float(acoustic_sum_rule_violation(born))
    if d_eps > tol["dielectric"] or d_born > tol["born"] or asr > tol["sum_rule"]:
        formula = "".join(f"{el}{n if n > 1 else ''}" for el, n in
                          sorted(Counter(phonon.primitive.symbols).items()))
        raise DataError(str(path), f"does not fit the crystal {formula} ({len(phonon.primitive)} atoms): the "
                        f"crystal's symmetry changes its eps_inf by {d_eps:.1%} and its Z* by {d_born:.3f} e, and its "
                        f"Z* break the acoustic sum rule by {asr:.3f} e (limits {tol['dielectric']:.0%}, "
                        f"{tol['born']} e, {tol['sum_rule']} e); is it the BORN file of another crystal?")
    return {"born": born, "dielectric": eps,
            "factor": default_nac_factor(phonon.calculator) if factor is None else float(factor)}


def _gamma_block(modes: dict, names: list[str]) -> dict:
    return {name: m.to_dict() for name, m in zip(names, modes.values())}


def run_nac(phonopy_yaml: str | os.PathLike, force_sets: str | os.PathLike | None = None, model=None,
            reference_born: str | os.PathLike | None = None, out_dir: str | os.PathLike = "nac",
            symmetrize: bool = True, directions: Sequence = ((1, 0, 0), (0, 1, 0), (0, 0, 1)),
            reduced: bool = False, npoints: int = 51, plot: bool = True, phonon=None) -> dict:
    """Predict NAC for a phonopy calculation and compare with no NAC and with DFT NAC.

    Parameters
    ----------
    phonopy_yaml : path
        ``phonopy_disp.yaml`` or ``phonopy.yaml`` (its own ``nac:`` block is ignored).
    force_sets : path, optional
        ``FORCE_SETS``.
    model : model object, path or None
        None or ``"default"``: the bundled model (:func:`tensorprop.load_model`).
    reference_born : path, optional
        DFT BORN file for the comparison (no factor on line 1: phonopy's default is used).
    out_dir : path
        Folder for ``BORN``, ``bands.png`` and ``nac_summary.json`` (created).
    symmetrize : bool
        Symmetrise the prediction (see :func:`~tensorprop.phonopy.nac.predict_nac`).
    directions : sequence of (3,)
        q directions at Gamma; Cartesian unless ``reduced``.
    reduced : bool
        Directions in reduced reciprocal coordinates (phonopy's ``nac_q_direction``).
    npoints : int
        q-points on the longest band segment.
    plot : bool
        Compute the bands and write ``bands.png``.
    phonon : phonopy.Phonopy, optional
        Use this (with force constants) instead of loading ``phonopy_yaml``; its
        ``nac_params`` is left as it was.

    Returns
    -------
    dict
        JSON-able summary (also written to ``nac_summary.json``): ``formula``, ``symbols``,
        ``n_primitive``, ``primitive_matrix``, ``factor``, ``model``, ``predicted``
        (:meth:`NacResult.to_dict`), ``reference`` (born, dielectric, factor, file; or None),
        ``errors`` (prediction - reference: ``born_mae``, ``born_max``, ``dielectric_mae``,
        ``dielectric_max``; or None), ``gamma`` with ``no_nac``, ``predicted``, ``reference``
        (each ``{direction name: {"frequencies", "lo", "lo_max"}}``, cm^-1) and
        ``lo_max_rel_error`` (predicted vs reference, per direction), and ``files``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    phonon, model = _load_nac_inputs(phonopy_yaml, force_sets, model, phonon)
    saved = phonon.nac_params
    try:
        result, reference, gamma, files = _predict_nac_and_gamma(
            phonon, model, reference_born, out, directions, reduced, plot, npoints, symmetrize)
    finally:
        phonon.nac_params = saved
    return _nac_report(phonon, model, result, reference, gamma, files, out, phonopy_yaml, force_sets, reference_born)


def _load_nac_inputs(phonopy_yaml, force_sets, model, phonon):
    """run_nac's inputs: the Phonopy object (loaded unless given) and the model (resolved from a name or path)."""
    if phonon is None:
        from phonopy.structure.cells import PrimitiveMatrixAutoDefaultWarning

        with warnings.catch_warnings():
            # phonopy 4 resolves primitive_matrix="auto"; the matrix used is recorded in the summary
            warnings.simplefilter("ignore", PrimitiveMatrixAutoDefaultWarning)
            phonon = load_phonopy(phonopy_yaml, force_sets)
    return phonon, resolve_model(model)


def _predict_nac_and_gamma(phonon, model, reference_born, out: Path, directions, reduced, plot, npoints, symmetrize):
    """run_nac's predictions: the NAC parameters (written as ``out/BORN``), the reference ones (or None), the
    Gamma-point modes without, with predicted and with reference NAC, and the band plot. Sets
    ``phonon.nac_params`` as it goes (the caller restores it). -> (NacResult, reference, gamma, files)."""

    result = predict_nac(model, phonon, symmetrize=symmetrize)
    predicted = result.as_nac_params()
    reference = None if reference_born is None else _reference_nac(reference_born, phonon)
    names = [direction_label(d, reduced) for d in directions]
    gamma = {"coordinates": "reduced" if reduced else "cartesian",
             "directions": {n: [float(x) for x in d] for n, d in zip(names, directions)}}
    no_nac = next(iter(gamma_modes(phonon, None, directions[:1], reduced).values()))
    gamma["no_nac"] = {"frequencies": [round(float(f), 4) for f in no_nac.frequencies],
                       "max": float(no_nac.frequencies.max())}
    gamma["predicted"] = _gamma_block(gamma_modes(phonon, predicted, directions, reduced), names)
    if reference is not None:
        gamma["reference"] = _gamma_block(gamma_modes(phonon, reference, directions, reduced), names)
        gamma["lo_max_rel_error"] = {
            n: (gamma["predicted"][n]["lo_max"] / gamma["reference"][n]["lo_max"] - 1.0)
            if gamma["predicted"][n]["lo_max"] and gamma["reference"][n]["lo_max"] else None for n in names}
    else:
        gamma["reference"] = None

    files = {"born": str(out / "BORN")}
    write_born(out / "BORN", result)
    if plot:
        bands = {"no NAC": band_structure(phonon, None, npoints),
                 "predicted NAC": band_structure(phonon, predicted, npoints)}
        if reference is not None:
            bands["DFT NAC"] = band_structure(phonon, reference, npoints)
        files["bands_png"] = str(plot_bands(bands, out / "bands.png", title=_formula(phonon.primitive)))
    return result, reference, gamma, files


def _nac_report(phonon, model, result, reference, gamma, files, out: Path, phonopy_yaml, force_sets,
                reference_born) -> dict:
    """run_nac's summary: errors against the reference, the Gamma table data, files; written to
    ``out/nac_summary.json``."""
    errors = None
    if reference is not None:
        db = result.born - reference["born"]
        de = result.dielectric - reference["dielectric"]
        errors = {"born_mae": float(np.abs(db).mean()), "born_max": float(np.abs(db).max()),
                  "dielectric_mae": float(np.abs(de).mean()), "dielectric_max": float(np.abs(de).max())}
    pmat = phonon.primitive_matrix
    summary = {
        "phonopy_yaml": None if phonopy_yaml is None else str(phonopy_yaml),
        "force_sets": None if force_sets is None else str(force_sets),
        "formula": _formula(phonon.primitive),
        "symbols": list(phonon.primitive.symbols),
        "n_primitive": len(phonon.primitive),
        "primitive_matrix": None if pmat is None else np.asarray(pmat, dtype=float).tolist(),
        "calculator": phonon.calculator,
        "factor": result.factor,
        "model": repr(model),
        "predicted": result.to_dict(),
        "reference": None if reference is None else {
            "file": str(reference_born), "born": np.asarray(reference["born"]).tolist(),
            "dielectric": np.asarray(reference["dielectric"]).tolist(), "factor": float(reference["factor"])},
        "errors": errors,
        "gamma": gamma,
        "files": files,
    }
    files["summary"] = str(out / "nac_summary.json")
    (out / "nac_summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def _formula(atoms) -> str:
    from ase.formula import Formula

    return Formula("".join(atoms.symbols)).reduce()[0].format("metal")


def _fmt_list(values, width: int) -> str:
    if not values:
        return "-".center(width)
    return ", ".join(f"{v:.1f}" for v in values).rjust(width)


def format_gamma_table(summary: dict) -> str:
    """The Gamma-point comparison of a :func:`run_nac` summary as a text table.

    One row per q direction: the LO frequencies (cm^-1) with predicted and with reference
    NAC and the relative error of the highest one; above it, the optical frequencies
    without NAC (where LO and TO are not split).
    """
    g = summary["gamma"]
    pred = g["predicted"]
    ref = g.get("reference")
    no_nac = sorted(set(round(f, 1) for f in g["no_nac"]["frequencies"] if f > 1.0))
    lines = [f"{summary['formula']}: Gamma-point phonons (cm^-1), {summary['n_primitive']}-atom primitive cell, "
             f"NAC factor {summary['factor']:.5f}",
             f"  without NAC (TO = LO): {', '.join(f'{f:.1f}' for f in no_nac)}"]
    p = summary["predicted"]
    lines.append(f"  symmetrisation correction of the prediction: Born {p['born_correction_max']:.2e} e, "
                 f"eps {p['dielectric_correction_max']:.2e}")
    if p.get("born_spread") is not None:
        lines.append("  " + spread_text(p["born_spread"], p.get("dielectric_spread"), p["symbols"]))
    if summary.get("errors"):
        e = summary["errors"]
        lines.append(f"  prediction - reference: Born MAE {e['born_mae']:.3f} e (max {e['born_max']:.3f}), "
                     f"eps MAE {e['dielectric_mae']:.3f} (max {e['dielectric_max']:.3f})")
    width = max([24] + [len(_fmt_list(m["lo"], 0)) for m in pred.values()]
                + ([len(_fmt_list(m["lo"], 0)) for m in ref.values()] if ref else []))
    head = f"  {'q':<8} {'LO, predicted NAC':>{width}}"
    if ref:
        head += f"   {'LO, reference NAC':>{width}}   {'max LO err':>10}"
    lines.append(head)
    for name, m in pred.items():
        row = f"  {name:<8} {_fmt_list(m['lo'], width)}"
        if ref:
            rel = g.get("lo_max_rel_error", {}).get(name)
            row += f"   {_fmt_list(ref[name]['lo'], width)}   " + ("-".rjust(10) if rel is None
                                                                   else f"{round(100 * rel, 2) + 0.0:+9.2f}%")
        lines.append(row)
    if g.get("coordinates") == "reduced":
        lines.append("  (* q directions in reduced reciprocal coordinates)")
    return "\n".join(lines)
