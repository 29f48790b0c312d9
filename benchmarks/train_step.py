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

import jax

from tensorprop.config import FitConfig, load_yaml_config
from tensorprop.train.loop import prepare_training
from tensorprop.train.profile import measure_train_step


def main(argv=None) -> dict:
    p = argparse.ArgumentParser()
    p.add_argument("--config", default="configs/becs-eps.yaml")
    p.add_argument("--steps", type=int, default=50)
    args = p.parse_args(argv)
    result = measure_train_step(prepare_training(load_yaml_config(args.config, FitConfig)), args.steps)
    return {
        "config": args.config, **result,
        "machine": f"{platform.machine()}, {platform.system()}, {jax.device_count()} jax device(s)",
        "date": datetime.date.today().isoformat(),
    }


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
