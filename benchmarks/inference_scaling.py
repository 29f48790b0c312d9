"""Inference cost against system size, and throughput on the phonon-becs test split.

    python benchmarks/inference_scaling.py [MODEL] [--max-repeat 6]

Rock-salt NaCl supercells (2 to 1728 atoms): wall time of one prediction after compilation
(median of 3) and XLA's temporary memory of the compiled network for that padded shape; a log-log
plot goes to benchmarks/results/inference_scaling.png. Then structures/s for the test split
(second pass, compiled). Prints JSON with the machine and date.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import time
import warnings
from pathlib import Path

import jax
import numpy as np
from ase.build import bulk

import tensorprop
from tensorprop.config import BatchConfig
from tensorprop.data.batching import make_batches
from tensorprop.data.convert import as_crystal
from tensorprop.data.graph import build_graph


def _cost(model, crystal) -> dict:
    graph = build_graph(crystal, model.config.cutoff)
    budget = BatchConfig(max_nodes=max(graph.n_nodes, 2), max_edges=max(graph.n_edges, 2), max_graphs=1,
                         pad_mode="budget")
    batch = make_batches([graph], budget)[0][1]
    compiled = model._apply.lower(model.params, model.stats, batch).compile()
    memory = compiled.memory_analysis()
    jax.block_until_ready(compiled(model.params, model.stats, batch))
    times = []
    for _ in range(3):
        t = time.perf_counter()
        jax.block_until_ready(compiled(model.params, model.stats, batch))
        times.append(time.perf_counter() - t)
    flops = (compiled.cost_analysis() or {}).get("flops", float("nan"))
    return {"atoms": graph.n_nodes, "edges": graph.n_edges, "seconds": float(np.median(times)),
            "temp_mib": memory.temp_size_in_bytes / 2**20 if memory else float("nan"), "gflops": flops / 1e9}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser()
    p.add_argument("model", nargs="?", default="default")
    p.add_argument("--max-repeat", type=int, default=6)
    args = p.parse_args(argv)
    model = tensorprop.load_model(args.model)
    structures = [bulk("NaCl", "rocksalt", a=5.64)] + [bulk("NaCl", "rocksalt", a=5.64, cubic=True).repeat(n)
                                                       for n in range(1, args.max_repeat + 1)]
    rows = [_cost(model, as_crystal(s)) for s in structures]
    a = np.array([r["atoms"] for r in rows], float)
    t = np.array([r["seconds"] for r in rows])
    slope = float(np.polyfit(np.log(a[2:]), np.log(t[2:]), 1)[0])  # above ~64 atoms, where overheads fade

    test = tensorprop.load_dataset("phonon-becs").split("test")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.predict_many(test, unseen_elements="warn")
        t0 = time.perf_counter()
        model.predict_many(test, unseen_elements="warn")
        test_s = time.perf_counter() - t0

    out_dir = Path(__file__).parent / "results"
    out_dir.mkdir(exist_ok=True)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    ax[0].loglog(a, 1e3 * t, "o-", label="measured")
    ax[0].loglog(a, 1e3 * t[-1] * a / a[-1], "--", color="0.6", label="linear")
    ax[0].set_xlabel("atoms"); ax[0].set_ylabel("prediction time (ms)"); ax[0].legend()
    ax[1].loglog(a, [r["temp_mib"] for r in rows], "o-")
    ax[1].set_xlabel("atoms"); ax[1].set_ylabel("XLA temporary memory (MiB)")
    fig.suptitle(f"{model} on NaCl supercells")
    fig.tight_layout()
    fig.savefig(out_dir / "inference_scaling.png", dpi=120)
    return {"model": args.model, "supercells": rows, "time_vs_atoms_loglog_slope": round(slope, 3),
            "test_split_structures_per_s": round(len(test) / test_s, 1), "device": str(jax.devices()[0]),
            "machine": f"{platform.machine()}, {platform.system()}", "date": datetime.date.today().isoformat(),
            "plot": str(out_dir / "inference_scaling.png")}


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
