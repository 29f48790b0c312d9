"""Born charges of molecules as derivatives of a field model trained on energies, forces and dipoles only.

    python benchmarks/field_becs_water.py [--molecules water ethanol] [--conformers 60] [--steps 1500]
                                         [--basis def2-svp] [--born-on all|test]

1. PySCF (HF) energies, forces and dipoles of distorted conformers in random uniform fields up to 0.5 V/A,
   and finite-difference reference Z* of every conformer, or (``--born-on test``) of the test conformers only
   (tensorprop.qm.field, via studies.field_dataset).
2. `fit field` on the train split with born_weight = 0: the model never sees a Born charge.
3. Z* = d f / dF of the trained model on every held-out test conformer against its reference
   (studies.field_born_report): MAE over all components, per-conformer MAEs, the sum rule.
Prints JSON (machine, date); data and run go to benchmarks/results/field-<molecules>/.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
from pathlib import Path

import numpy as np

from tensorprop import studies
from tensorprop.train.data import load_training_data


def main(argv=None) -> dict:
    p = argparse.ArgumentParser()
    p.add_argument("--molecules", nargs="+", default=["water"])
    p.add_argument("--conformers", type=int, default=60, help="per molecule")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--basis", default="def2-svp")
    p.add_argument("--born-on", default="all", choices=("all", "test"),
                   help="which conformers get finite-difference reference Z* (six more SCFs each)")
    args = p.parse_args(argv)
    tag = "-".join(args.molecules)
    out = Path(__file__).parent / "results" / f"field-{tag}"
    suffix = "" if args.born_on == "all" else "-born-test"
    data = studies.field_dataset(out / f"{tag}-field-{args.basis}-{args.conformers}{suffix}.xyz", args.molecules,
                                 args.conformers, basis=args.basis, born_on=args.born_on, progress=True)
    cfg = studies.field_fit_config(data, steps=args.steps)
    model, summary = studies.train_run(cfg, out / f"run-{args.steps}", progress=True)
    test = list(load_training_data(cfg.data, 0, require_labels=False).test)
    report = studies.field_born_report(model, test)
    per = report["per_molecule_mae"]
    names = np.array([m.info.get("molecule", "?") for m in test if m.born_charges is not None])
    by_molecule = {name: {"n_conformers": int((names == name).sum()),
                          # every conformer of one molecule has the same number of components
                          "born_mae": float(per[names == name].mean()),
                          "per_conformer_mae_median": float(np.median(per[names == name])),
                          "per_conformer_mae_max": float(per[names == name].max())}
                   for name in dict.fromkeys(names)}
    return {"molecules": args.molecules, "n_train": summary["n_train"], "n_test_conformers": report["n_molecules"],
            "steps": summary["steps"], "n_parameters": model.n_parameters, "best_valid": summary["best"],
            "test_born_mae": report["born_mae"], "test_born_rmse": report["born_rmse"],
            "per_conformer_mae_median": float(np.median(per)), "per_conformer_mae_max": float(per.max()),
            "reference_born_mean_abs": float(np.abs(report["reference"]).mean()),
            "max_sum_rule_violation": report["max_sum_rule_violation"], "by_molecule": by_molecule,
            "basis": args.basis, "born_on": args.born_on,
            "wall_s": summary["wall_s"], "machine": f"{platform.machine()}, {platform.system()}",
            "date": datetime.date.today().isoformat()}


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
