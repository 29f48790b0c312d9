"""Test-split accuracy of a foundation-feature model against the bundled one (issue 20, BENCHMARKS.md).

    python benchmarks/foundation_heads.py RUN [REFERENCE]     # REFERENCE: default 'default' (the bundled model);
                                                              # 'none': RUN alone

Prints one JSON document: for both models the test Z*/eps_inf MAE and RMSE (as benchmarks/accuracy.py),
the coverage table, the isotropic Z* error over the test atoms of the rare elements (in fewer than 10
training structures) and, structure by structure, the test structures that hold a rare element: Z* MAE
(9 components), isotropic Z* of each rare-element atom (predicted, DFPT) and eps_inf MAE.
"""

from __future__ import annotations

import datetime
import json
import platform
import sys
import time
import warnings
from collections import Counter

import numpy as np
from ase.data import chemical_symbols

import tensorprop
from tensorprop.train.evaluate import coverage_metrics, tensor_metrics

RARE_BELOW = 10  # an element in fewer training structures than this is rare


def isotropic(z: np.ndarray) -> np.ndarray:
    """tr(Z*)/3 of each atom, (n,) e."""
    return np.trace(z, axis1=-2, axis2=-1) / 3.0


def rare_report(train, test, pred) -> dict:
    counts = Counter(int(z) for c in train for z in set(c.numbers.tolist()))
    rare = sorted({int(z) for c in test for z in c.numbers if counts[int(z)] < RARE_BELOW})
    rows, iso_err = [], []
    for c, p in zip(test, pred):
        mask = np.isin(c.numbers, rare)
        if c.born_charges is None or not mask.any():
            continue
        iso_p, iso_t = isotropic(p["born_charges"]), isotropic(c.born_charges)
        iso_err += list(np.abs(iso_p - iso_t)[mask])
        rows.append({"formula": c.formula, "label": c.label,
                     "born_mae": float(np.abs(p["born_charges"] - c.born_charges).mean()),
                     "epsilon_mae": None if c.epsilon is None else float(np.abs(p["epsilon"] - c.epsilon).mean()),
                     "rare_atoms": [{"element": chemical_symbols[int(c.numbers[i])], "iso_pred": round(float(iso_p[i]), 3),
                                     "iso_dfpt": round(float(iso_t[i]), 3)} for i in np.flatnonzero(mask)]})
    return {"rare_elements": {chemical_symbols[z]: counts[z] for z in rare},
            "rare_atoms_iso_mae": float(np.mean(iso_err)) if iso_err else None, "n_rare_atoms": len(iso_err),
            "structures": rows}


def evaluate(model_path: str, data) -> dict:
    model = tensorprop.load_model(model_path)
    test, train = data.split("test"), data.split("train")
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pred = model.predict_many(test, unseen_elements="warn")
    metrics = tensor_metrics(test, pred)
    metrics.pop("born_mae_per_element", None)
    iso = np.concatenate([np.abs(isotropic(p["born_charges"]) - isotropic(c.born_charges))
                          for c, p in zip(test, pred) if c.born_charges is not None])
    return {"model": model_path, "n_parameters": model.n_parameters, **metrics, "born_iso_mae": float(iso.mean()),
            "born_by_training_coverage": coverage_metrics(train, test, pred), **rare_report(train, test, pred),
            "predict_wall_s_including_compile": round(time.perf_counter() - t0, 2)}


def main(run: str, reference: str = "default") -> dict:
    data = tensorprop.load_dataset("phonon-becs")
    models = [evaluate(run, data)] + ([] if reference == "none" else [evaluate(reference, data)])
    return {"split": "phonon-becs test", "models": models,
            "machine": f"{platform.processor() or platform.machine()}, {platform.system()}",
            "date": datetime.date.today().isoformat()}


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:3]), indent=2))
