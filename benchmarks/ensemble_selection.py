"""Choose ensemble members on the valid split; show every combination's valid and test errors.

    python benchmarks/ensemble_selection.py RUN [RUN ...] [--max-members K] [--cache runs/ensemble_cache]

Each RUN (run folder or model file) predicts the valid and test splits of phonon-becs once (cached
as CACHE/<name>_<split>.npz; delete the cache after retraining a run). Every combination of up to K
runs is then scored with the same means that :class:`tensorprop.EnsembleModel` computes
(:func:`tensorprop.ensemble.ensemble_mean`): Z* over the members with a Z* head, eps_inf over those
with an eps head. The choice, among the combinations that predict every target any run predicts:
the lowest valid score, the sum over targets of (valid MAE / the lowest valid MAE any combination
reaches for that target), so that Z* and eps_inf count alike; then the fewest members. The test
columns are printed for every row, but play no part in the choice.

Per target (``--per-target``, fixed on 2026-12-07 before any per-target figure was computed): the Z* members are
the combination with the lowest valid Z* MAE, the eps_inf members the combination with the lowest valid eps_inf
MAE (each among the combinations of up to K runs that predict that target; ties: the fewest members); the model
is the union of the two sets, each member serving the targets it was chosen for
(``tensorprop ensemble --born-charges ... --epsilon ...``). For the
chosen combination it also reports how well the members' per-atom Z* spread ranks the per-atom errors
(:func:`tensorprop.train.evaluate.spread_metrics`).
Prints a table (the best 15 rows by valid score and every single run) and writes CACHE/selection.json.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import platform
import warnings
from pathlib import Path

import numpy as np

import tensorprop
from tensorprop.ensemble import ensemble_mean
from tensorprop.physics.tensors import log_epsilon
from tensorprop.train.evaluate import spread_metrics

SPLITS = ("valid", "test")


def _name(run: str) -> str:
    return Path(run).name.removesuffix(".npz")


def cached_predictions(run: str, split: str, crystals, cache: Path) -> dict:
    """``born_charges`` (n_atoms_total, 3, 3) and/or ``epsilon``/``epsilon_log`` (n_structures, 3, 3)."""
    path = cache / f"{_name(run)}_{split}.npz"
    if path.is_file():
        return dict(np.load(path))
    model = tensorprop.load_model(run)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pred = model.predict_many(crystals, unseen_elements="warn", progress=True)
    out = {}
    if "born_charges" in model.targets:
        out["born_charges"] = np.concatenate([p["born_charges"] for p in pred])
    if "epsilon" in model.targets:
        out["epsilon"] = np.stack([p["epsilon"] for p in pred])
        out["epsilon_log"] = log_epsilon(out["epsilon"])
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, **out)
    return out


def score(outputs: list[dict], labels: dict) -> dict:
    mean = ensemble_mean(outputs)
    row = {}
    if "born_charges" in mean:
        error = np.abs(np.asarray(mean["born_charges"]) - labels["born_charges"])
        row["born_mae"] = float(error.mean())
        if "born_charges_spread" in mean:  # how well the members' disagreement points at the errors
            row["born_spread"] = spread_metrics(np.asarray(mean["born_charges_spread"]), error.mean(axis=(1, 2)))
    if "epsilon" in mean:
        row["epsilon_mae"] = float(np.abs(np.asarray(mean["epsilon"]) - labels["epsilon"]).mean())
    return row


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--max-members", type=int, default=4)
    ap.add_argument("--cache", default="runs/ensemble_cache")
    ap.add_argument("--per-target", action="store_true",
                    help="also choose the Z* members and the eps_inf members separately (see the docstring)")
    args = ap.parse_args(argv)
    cache = Path(args.cache)
    data = tensorprop.load_dataset("phonon-becs")
    labels, preds = {}, {}
    for split in SPLITS:
        crystals = data.split(split)
        labels[split] = {"born_charges": np.concatenate([c.born_charges for c in crystals]),
                         "epsilon": np.stack([c.epsilon for c in crystals])}
        preds[split] = {run: cached_predictions(run, split, crystals, cache) for run in args.runs}
    rows = []
    for k in range(1, min(args.max_members, len(args.runs)) + 1):
        for combo in itertools.combinations(args.runs, k):
            row = {"members": [_name(r) for r in combo]}
            for split in SPLITS:
                row[split] = score([preds[split][r] for r in combo], labels[split])
            rows.append(row)
    # the choice: among the combinations that predict every target some run has, the lowest sum over the
    # targets of valid MAE / (the best valid MAE any combination reaches for that target); then the fewest members
    targets = sorted({t for r in rows for t in r["valid"] if t.endswith("_mae")})
    best = {t: min(r["valid"][t] for r in rows if t in r["valid"]) for t in targets}
    for r in rows:
        covered = all(t in r["valid"] for t in targets)
        r["valid_score"] = sum(r["valid"][t] / best[t] for t in targets) if covered else None

    def key(r):
        return (r["valid_score"] is None, r["valid_score"] or 0.0, len(r["members"]))

    rows.sort(key=key)
    chosen = rows[0]
    shown = rows[:15] + [r for r in rows[15:] if len(r["members"]) == 1]

    def fmt(x):
        return f"{x:.4f}" if x is not None else ""

    print("| members | valid score | valid Z* MAE (e) | valid eps MAE | test Z* MAE (e) | test eps MAE |")
    print("|---|---|---|---|---|---|")
    for r in shown:
        cells = [fmt(r["valid_score"])] + [fmt(r[s].get(t)) for s in SPLITS for t in ("born_mae", "epsilon_mae")]
        mark = "**" if r is chosen else ""
        print(f"| {mark}{' + '.join(r['members'])}{mark} | " + " | ".join(cells) + " |")
    if args.per_target:
        result_per_target = per_target_choice(rows, args.runs)
    result = {"chosen": chosen, "rows": rows, "date": datetime.date.today().isoformat(),
              "machine": f"{platform.processor() or platform.machine()}, {platform.system()}"}
    if args.per_target:
        result["per_target"] = result_per_target
    (cache / "selection.json").write_text(json.dumps(result, indent=1))
    print(f"chosen on valid: {' + '.join(chosen['members'])}")
    for split in SPLITS:
        if "born_spread" in chosen[split]:
            print(f"its Z* spread on {split}: {json.dumps(chosen[split]['born_spread'])}")
    return result


def per_target_choice(rows: list[dict], runs: list[str]) -> dict:
    """For each target, the combination with the lowest valid MAE for it (ties: the fewest members); prints
    both choices, their valid and test errors for that target, and the ``tensorprop ensemble`` command."""
    chosen = {}
    for target, key in (("born_charges", "born_mae"), ("epsilon", "epsilon_mae")):
        having = [r for r in rows if key in r["valid"]]
        if having:
            chosen[target] = (key, min(having, key=lambda r: (r["valid"][key], len(r["members"]))))
    print("\nchosen per target on valid:")
    print("| target | members | valid MAE | test MAE |")
    print("|---|---|---|---|")
    for target, (key, r) in chosen.items():
        print(f"| {target} | {' + '.join(r['members'])} | {r['valid'][key]:.4f} | {r['test'][key]:.4f} |")
    path = {_name(run): run for run in runs}
    options = " ".join(f"--{t.replace('_', '-')} " + " ".join(path[m] for m in r["members"])
                       for t, (_, r) in chosen.items())
    print(f"tensorprop ensemble {options} --embed-foundation --out per-target.npz")
    return {t: {"members": r["members"], "valid": r["valid"], "test": r["test"]} for t, (_, r) in chosen.items()}


if __name__ == "__main__":
    main()
