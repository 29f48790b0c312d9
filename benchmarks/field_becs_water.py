"""Born charges of water as derivatives of a field model trained on energies, forces and dipoles only.

    python benchmarks/field_becs_water.py [--conformers 60] [--steps 1500] [--basis def2-svp]

1. PySCF (HF) energies, forces and dipoles of distorted water conformers in random uniform fields up
   to 0.5 V/A, and finite-difference reference Z* of every conformer (tensorprop.qm.field).
2. `fit field` on the train split with born_weight = 0: the model never sees a Born charge.
3. Z* = d f / dF of the trained model on the held-out test conformers against the reference: MAE over all
   9 components of all atoms of all test conformers, and the sum rule of the predictions.
Prints JSON (machine, date); data and run go to benchmarks/results/field-water/.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
from pathlib import Path

import jax
import numpy as np

import tensorprop
from tensorprop.config import BatchConfig, DataConfig, FitConfig, ModelConfig, TrainConfig
from tensorprop.data.batching import make_batches
from tensorprop.data.graph import build_graph
from tensorprop.data.writers import write_extxyz
from tensorprop.qm.field import generate_field_dataset
from tensorprop.train.data import load_training_data
from tensorprop.train.loop import fit


def main(argv=None) -> dict:
    p = argparse.ArgumentParser()
    p.add_argument("--conformers", type=int, default=60)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--basis", default="def2-svp")
    args = p.parse_args(argv)
    out = Path(__file__).parent / "results" / "field-water"
    out.mkdir(parents=True, exist_ok=True)
    data = out / f"water-field-{args.basis}-{args.conformers}.xyz"
    if not data.is_file():
        write_extxyz(data, generate_field_dataset(["water"], args.conformers, max_field=0.5, basis=args.basis,
                                                  n_born=args.conformers, progress=True))
    cfg = FitConfig(
        model=ModelConfig(cutoff=4.0, hidden_irreps="32x0e + 8x0o + 16x1o + 8x1e + 8x2e + 4x2o",
                          head_irreps="16x0e + 8x1o + 8x2e", num_layers=2, radial_hidden=(32,), head="field",
                          targets=("field",)),
        batch=BatchConfig(max_nodes=48, max_edges=256, max_graphs=16),
        train=TrainConfig(max_steps=args.steps, learning_rate=3e-3, warmup_steps=100, eval_every=max(args.steps // 6, 1),
                          checkpoint_every=args.steps, born_weight=0.0, energy_weight=1.0, forces_weight=1.0,
                          dipole_weight=1.0),
        data=DataConfig(dataset=str(data), split="random"))
    run = out / f"run-{args.steps}"
    summary = json.loads((run / "summary.json").read_text()) if (run / "summary.json").is_file() else fit(cfg, run)
    model = tensorprop.load_model(run)
    test = list(load_training_data(cfg.data, 0, require_labels=False).test)
    graphs = [build_graph(c, cfg.model.cutoff) for c in test]
    errors, sums = [], []
    for idx, batch in make_batches(graphs, BatchConfig(max_nodes=64, max_edges=512, max_graphs=16)):
        field = np.zeros((batch.graph_mask.shape[0], 3), np.float32)  # reference Z* are at zero field
        res = jax.device_get(model.response(model.params, model.stats, batch, field, want=("born_charges",)))
        off = 0
        for k, i in enumerate(idx):
            n = test[i].n_atoms
            z = np.asarray(res["born_charges"][off:off + n])
            errors.append(z - test[i].born_charges)
            sums.append(np.abs(z.sum(0)).max())
            off += n
    e = np.concatenate(errors)
    ref = np.concatenate([c.born_charges for c in test])
    return {"n_train": summary["n_train"], "n_test_conformers": len(test), "steps": summary["steps"],
            "n_parameters": model.n_parameters, "best_valid": summary["best"],
            "test_born_mae": float(np.abs(e).mean()), "test_born_rmse": float(np.sqrt((e**2).mean())),
            "reference_born_mean_abs": float(np.abs(ref).mean()), "max_sum_rule_violation": float(max(sums)),
            "basis": args.basis, "machine": f"{platform.machine()}, {platform.system()}",
            "date": datetime.date.today().isoformat()}


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
