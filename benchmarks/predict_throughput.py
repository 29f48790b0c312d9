"""Inference throughput on the phonon-becs test split (152 structures), batched within a budget.

    python benchmarks/predict_throughput.py [--model MODEL | --config configs/reference-size.yaml] [--passes 3]
                                            [--network-only]

With --config, a model of that config's hyperparameters with random weights (speed does not depend
on the weights) is batched with the config's batch budget; with --model, a trained model with its
default prediction batching. The first pass compiles; the median of the next --passes is reported
as structures/s and ms per structure. A pass of ``predict_many`` includes the input checks, the
neighbour lists and the batching; with --network-only (needs --config) the graphs and padded
batches are built once beforehand and only the compiled network is timed, as a loop over a
prepared data loader would. Prints JSON with the machine and date.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import time
import warnings

import jax
import numpy as np

import tensorprop
from tensorprop.config import FitConfig, load_yaml_config
from tensorprop.data.batching import make_batches
from tensorprop.data.graph import build_graph


def main(argv=None) -> dict:
    p = argparse.ArgumentParser()
    g = p.add_mutually_exclusive_group()
    g.add_argument("--model", default=None)
    g.add_argument("--config", default=None)
    p.add_argument("--passes", type=int, default=3)
    p.add_argument("--network-only", action="store_true")
    args = p.parse_args(argv)
    if args.network_only and not args.config:
        p.error("--network-only needs --config (its batch budget)")
    batch = None
    if args.config:
        cfg = load_yaml_config(args.config, FitConfig)
        model, batch = tensorprop.build_model(cfg.model), cfg.batch
    else:
        model = tensorprop.load_model(args.model or None)
    test = list(tensorprop.load_dataset("phonon-becs").split("test"))
    if args.network_only:
        batches = [b for _, b in make_batches([build_graph(c, model.config.cutoff) for c in test], batch)]

        def one_pass():
            jax.block_until_ready([model._apply(model.params, model.stats, b) for b in batches])
    else:
        def one_pass():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a random-weight model has seen no elements
                model.predict_many(test, batch=batch, unseen_elements="warn")  # returns numpy arrays
    times = []
    for _ in range(args.passes + 1):
        t0 = time.perf_counter()
        one_pass()
        times.append(time.perf_counter() - t0)
    median = float(np.median(times[1:]))
    return {"model": args.model or "default" if not args.config else f"random weights, {args.config}",
            "timed": "compiled network on prepared batches" if args.network_only else "predict_many",
            "n_parameters": model.n_parameters, "structures": len(test), "first_pass_s": round(times[0], 2),
            "median_pass_s": round(median, 3), "structures_per_s": round(len(test) / median, 1),
            "ms_per_structure": round(1e3 * median / len(test), 2),
            "device": str(jax.devices()[0]), "machine": f"{platform.machine()}, {platform.system()}",
            "date": datetime.date.today().isoformat()}


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
