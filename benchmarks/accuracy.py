"""Test-split accuracy of a model on phonon-becs (the figures quoted in BENCHMARKS.md).

    python benchmarks/accuracy.py [MODEL]      # MODEL: run folder, .npz, or 'default' (bundled)

Prints one JSON document: MAE/RMSE of Z* (e, 9 components of every atom) and of eps_inf
(9 components), per-element Z* MAE, the number of test structures with elements unseen in
training, the Z* MAE split by how many training structures hold each element, the machine and
the date. Parity plots go to benchmarks/results/.
"""

from __future__ import annotations

import datetime
import json
import platform
import sys
import time
import warnings
from pathlib import Path

import tensorprop
from tensorprop.plots import parity_plots
from tensorprop.train.evaluate import coverage_metrics, tensor_metrics


def main(model_path: str = "default") -> dict:
    model = tensorprop.load_model(model_path)
    data = tensorprop.load_dataset("phonon-becs")
    test = data.split("test")
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pred = model.predict_many(test, unseen_elements="warn")
    elapsed = time.perf_counter() - t0
    out = {
        "model": model_path, "n_parameters": model.n_parameters, "split": "phonon-becs test",
        **tensor_metrics(test, pred),
        "n_structures_with_unseen_elements": sum(bool(model.unseen_elements(c)) for c in test),
        # Z* MAE of the structures whose every element occurs in >= k training structures, and of the rest
        "born_by_training_coverage": coverage_metrics(data.split("train"), test, pred),
        "predict_wall_s_including_compile": round(elapsed, 2),
        "machine": f"{platform.processor() or platform.machine()}, {platform.system()}",
        "date": datetime.date.today().isoformat(),
    }
    out["plots"] = [str(p) for p in parity_plots(test, pred, Path(__file__).parent / "results", "(test split)")]
    return out


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:2]), indent=2))
