"""Learning curve: test-split errors against the number of training structures, equal step budget.

    python benchmarks/learning_curve.py [--sizes 100 300 1000 0] [--steps 2000] [--config configs/becs-eps.yaml]
                                        [--set SECTION.FIELD=YAML ...] [--out runs/learning_curve]

Each size N trains the config on a seeded subset of N structures of the committed train split
(0 = all 1216) for --steps steps with the same schedule, validates on the full valid split,
and evaluates the best (EMA) model on the full test split. Prints and writes
OUT/learning_curve.json and OUT/learning_curve.png. ``--set`` overrides config fields as the
``tensorprop fit`` flags do (e.g. ``--set 'model.foundation={name: nequix-mp-1-pft, channels: 64}'``).
A foundation-feature model (``configs/foundation-frozen.yaml``) reads the test structures' features from
the on-disk cache that training fills, so every size after the first extracts nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import platform
import warnings
from pathlib import Path

import tensorprop
import yaml

from tensorprop.config import FitConfig, config_from_dict, config_to_dict, load_yaml_config
from tensorprop.train.evaluate import tensor_metrics
from tensorprop.train.loop import fit


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    n = [r["n_train"] for r in rows]
    for ax, key, label in ((axes[0], "born_mae", "Z* test MAE (e)"), (axes[1], "epsilon_mae", "eps_inf test MAE")):
        ax.loglog(n, [r[key] for r in rows], "o-")
        ax.set_xlabel("training structures")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def with_overrides(cfg: FitConfig, overrides) -> FitConfig:
    """``cfg`` with ``SECTION.FIELD=YAML`` items applied (the value replaces the field, as the CLI flags do)."""
    d = config_to_dict(cfg)
    for item in overrides:
        key, sep, text = item.partition("=")
        section, dot, field = key.partition(".")
        if not sep or not dot or section not in d:
            raise SystemExit(f"--set {item!r}: expected SECTION.FIELD=YAML")
        d[section][field] = yaml.safe_load(text)
    return config_from_dict(FitConfig, d)


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", type=int, nargs="+", default=[100, 300, 1000, 0])
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--config", default="configs/becs-eps.yaml")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=YAML")
    p.add_argument("--out", default="runs/learning_curve")
    args = p.parse_args(argv)
    base = with_overrides(load_yaml_config(args.config, FitConfig), args.set)
    out = Path(args.out)
    test = tensorprop.load_dataset(base.data.dataset).split("test")
    rows = []
    for size in args.sizes:
        cfg = dataclasses.replace(base, data=dataclasses.replace(base.data, max_train=size),
                                  train=dataclasses.replace(base.train, max_steps=args.steps,
                                                            warmup_steps=min(base.train.warmup_steps, args.steps // 10)))
        run = out / f"n{size or 'all'}"
        summary = fit(cfg, run, progress=False)
        model = tensorprop.load_model(run)
        if hasattr(model, "use_feature_cache"):  # a foundation-feature model: test features once, from disk after
            model.use_feature_cache()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            metrics = tensor_metrics(test, model.predict_many(test, unseen_elements="warn"))
        best = summary["best"]
        rows.append({"n_train": summary["n_train"], "steps": summary["steps"], "wall_s": summary["wall_s"],
                     "best_step": best.get("best_step"), "valid_born_mae": best.get("valid_born_mae"),
                     "valid_epsilon_mae": best.get("valid_epsilon_mae"),
                     "born_mae": metrics["born_mae"], "epsilon_mae": metrics["epsilon_mae"],
                     "n_test_with_unseen_elements": sum(bool(model.unseen_elements(c)) for c in test)})
        print(json.dumps(rows[-1]), flush=True)
    result = {"config": args.config, "overrides": args.set, "steps": args.steps, "rows": rows,
              "date": datetime.date.today().isoformat(),
              "machine": f"{platform.machine()}, {platform.system()}"}
    (out / "learning_curve.json").write_text(json.dumps(result, indent=2))
    plot(rows, out / "learning_curve.png")
    return result


if __name__ == "__main__":
    main()
