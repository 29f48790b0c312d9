"""Training-step throughput of a config on phonon-becs (CPU or GPU, whatever jax sees).

    python benchmarks/train_step.py [--config configs/becs-eps.yaml] [--steps 50]

Prints JSON: compile time of the first step, median steady-state step time over --steps
steps after 3 warm-up steps, structures/s and atoms/s, padding efficiency, parameter count,
the jax device and the date.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import time

import jax
import numpy as np

from tensorprop.config import FitConfig, load_yaml_config
from tensorprop.data.batching import padding_efficiency
from tensorprop.train.data import batch_stream
from tensorprop.train.loop import prepare_training
from tensorprop.train.state import make_train_step


def main(argv=None) -> dict:
    p = argparse.ArgumentParser()
    p.add_argument("--config", default="configs/becs-eps.yaml")
    p.add_argument("--steps", type=int, default=50)
    args = p.parse_args(argv)
    setup = prepare_training(load_yaml_config(args.config, FitConfig))
    cfg, graphs, model, state = setup.cfg, setup.train_graphs, setup.model, setup.state
    step = make_train_step(model.apply, setup.optimizer, cfg.train)
    stream = batch_stream(graphs, cfg.batch, seed=0)
    batches = [next(stream)[1] for _ in range(args.steps + 4)]

    t0 = time.perf_counter()
    state, m = step(state, model.stats, batches[0])
    jax.block_until_ready(m)
    compile_s = time.perf_counter() - t0
    for b in batches[1:4]:
        state, m = step(state, model.stats, b)
    jax.block_until_ready(m)
    times = []
    for b in batches[4:]:
        t = time.perf_counter()
        state, m = step(state, model.stats, b)
        jax.block_until_ready(m)
        times.append(time.perf_counter() - t)
    median = float(np.median(times))
    structs = np.mean([b.graph_mask.sum() for b in batches[4:]])
    atoms = np.mean([b.node_mask.sum() for b in batches[4:]])
    return {
        "config": args.config, "n_parameters": model.n_parameters, "device": str(jax.devices()[0]),
        "compile_s": round(compile_s, 2), "median_step_s": round(median, 4),
        "structures_per_step": float(structs), "structures_per_s": round(structs / median, 1),
        "atoms_per_s": round(atoms / median, 1), "padding_efficiency": padding_efficiency(batches),
        "machine": f"{platform.machine()}, {platform.system()}, {jax.device_count()} jax device(s)",
        "date": datetime.date.today().isoformat(),
    }


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
