"""Static dielectric constant eps_0 of `tensorprop phonons` against Petousis et al.'s DFPT e_total.

    python benchmarks/phonons_eps0.py [--limit 50] [--potential nequix-mp-1-pft] [--model default]
                                      [--min-length 8 | --supercell 1 1 1] [--only mp-ID ...]
                                      [--resume] [--out runs/phonons_eps0]

Selection rule, fixed before looking at any result: the crystals of ``dielectric_constant.json.gz``
with at most 10 atoms and a band gap above 1 eV, in the order of their material_id's number
(mp-149 before mp-1000), the first ``--limit`` of them. For each: :func:`tensorprop.phonopy.phonons`
(forces from the foundation potential, diagonal supercell with plane spacing >= ``--min-length``,
NAC from the model), and the isotropic eps_0 = tr/3:

- ``pred``: eps_inf predicted + ionic part (predicted Z*, foundation force constants);
- ``dft_eps_inf``: the DFT eps_inf (``e_electronic``) in place of the predicted one, same ionic part;

both against tr(e_total)/3; the summary also over the crystals whose structure is not in the bundled
model's training split (:func:`training_parts`) and the error of the predicted eps_inf. Prints MAE and median relative error, over all crystals and over those
without imaginary optical Gamma modes (the modes eps_0 is made of; with ``--supercell 1 1 1`` the
dispersion away from Gamma means nothing, so only Gamma is looked at), and writes
OUT/phonons_eps0.json after every crystal (a partial run is usable; ``--resume`` skips the crystals
already there). Crystals that fail are listed with the error.

``--supercell 1 1 1`` displaces the unit cell with its periodic images (a q = 0 perturbation):
its Gamma dynamical matrix is the large supercell's (the force constants summed over all images)
up to finite-difference error, at a fraction of the cost. ``--only`` restricts the run to the
given material_ids of the selection (e.g. to compare two supercells on a few crystals).
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import time
import warnings
from pathlib import Path

import numpy as np


def select(crystals, limit: int):
    def key(c):
        m = re.search(r"(\d+)$", c.info["material_id"])
        return (int(m.group(1)) if m else 10 ** 12, c.info["material_id"])

    chosen = [c for c in crystals if len(c.numbers) <= 10 and float(c.info.get("band_gap", 0.0)) > 1.0]
    return sorted(chosen, key=key)[:limit]


def training_parts(crystals, dataset: str = "phonon-becs") -> list[list[str]]:
    """Per crystal, the parts (train/valid/test) of ``dataset``'s committed split holding the same structure.

    Structure only (:func:`tensorprop.data.duplicates.find_duplicates` with ``use_labels=False``: same
    reduced formula and pymatgen's StructureMatcher). The bundled model was trained on phonon-becs'
    train split, so a crystal with "train" here is not a held-out test of the predicted Z*/eps_inf.
    """
    from tensorprop.data.duplicates import find_duplicates
    from tensorprop.data.registry import load_dataset

    data = load_dataset(dataset)
    pool = [(part, c) for part in ("train", "valid", "test") for c in data.split(part)]
    n = len(crystals)
    found = [set() for _ in range(n)]
    for group in find_duplicates(list(crystals) + [c for _, c in pool], use_labels=False):
        parts = {pool[i - n][0] for i in group if i >= n}
        for i in group:
            if i < n:
                found[i] |= parts
    return [sorted(f) for f in found]


def _stats(rows, key):
    err = np.array([r[key] - r["ref"] for r in rows])
    rel = np.abs(err) / np.array([r["ref"] for r in rows])
    return {"n": len(rows), "mae": float(np.abs(err).mean()) if len(rows) else None,
            "median_rel": float(np.median(rel)) if len(rows) else None}


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--potential", default="nequix-mp-1-pft")
    p.add_argument("--model", default="default")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--min-length", type=float, default=None, help="plane spacing of the supercell (default 8 A)")
    size.add_argument("--supercell", type=int, nargs=3, default=None, metavar="N")
    p.add_argument("--only", nargs="+", default=None, metavar="MP_ID")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--summary-only", action="store_true",
                   help="no phonons: recompute the summary (with the training overlap) of OUT's results")
    p.add_argument("--max-atoms", type=int, default=250)
    p.add_argument("--out", default="runs/phonons_eps0")
    args = p.parse_args(argv)

    from tensorprop.data.registry import load_dataset
    from tensorprop.foundation import calculator as foundation_calculator
    from tensorprop.phonopy.phonons import IMAGINARY_TOLERANCE_CM, phonons
    from tensorprop.phonopy.workflow import resolve_model

    crystals = select(load_dataset("petousis-dielectric"), args.limit)
    if args.only:
        crystals = [c for c in crystals if c.info["material_id"] in set(args.only)]
    size = {"supercell": args.supercell} if args.supercell else {"min_length": args.min_length or 8.0}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "phonons_eps0.json"
    rows, failed, run_args = [], [], vars(args)
    if (args.resume or args.summary_only) and path.exists():
        previous = json.loads(path.read_text())
        rows, failed = previous["rows"], previous["failed"]
        run_args = previous["args"] if args.summary_only else run_args
    done = {r["material_id"] for r in rows} | {f["material_id"] for f in failed}

    def save():
        stable = [r for r in rows if not r["imaginary"]]
        unseen = [r for r in rows if "train" not in r.get("training_parts", ["train"])]
        summary = {"all": {k: _stats(rows, k) for k in ("pred", "dft_eps_inf")},
                   "no_imaginary": {k: _stats(stable, k) for k in ("pred", "dft_eps_inf")},
                   "not_in_bundled_training": {k: _stats(unseen, k) for k in ("pred", "dft_eps_inf")},
                   "not_in_bundled_training_no_imaginary": {k: _stats([r for r in unseen if not r["imaginary"]], k)
                                                            for k in ("pred", "dft_eps_inf")},
                   "eps_inf_pred": _stats([dict(r, ref=r["eps_inf_dft"]) for r in rows], "eps_inf_pred"),
                   "failed": len(failed),
                   "median_wall_s": float(np.median([r["wall_s"] for r in rows])) if rows else None}
        path.write_text(json.dumps({"date": datetime.date.today().isoformat(), "args": run_args,
                                    "selected": [c.info["material_id"] for c in crystals],
                                    "summary": summary, "rows": rows, "failed": failed}, indent=1))
        return summary

    if args.summary_only:
        parts = dict(zip([c.info["material_id"] for c in crystals], training_parts(crystals)))
        for r in rows:
            r["training_parts"] = parts[r["material_id"]]
        print(json.dumps(save(), indent=1))
        return
    calc = foundation_calculator(args.potential)
    model = resolve_model(args.model)
    for i, c in enumerate(crystals):
        if c.info["material_id"] in done:
            continue
        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                # bands and DOS are not used here: a coarse mesh and path keep them cheap
                _, res = phonons(c, calculator=calc, model=model, max_atoms=args.max_atoms, progress=False,
                                 mesh=[4, 4, 4], npoints=5, **size)
        except Exception as exc:  # a benchmark lists failures instead of stopping
            failed.append({"material_id": c.info["material_id"], "error": f"{type(exc).__name__}: {exc}"[:300]})
            print(json.dumps(failed[-1]), flush=True)
            save()
            continue
        g = res.gamma
        ionic = float(np.trace(g.eps_ionic) / 3)
        optical = g.frequencies_cm[~g.acoustic]
        row = {"material_id": c.info["material_id"], "formula": c.info["formula"], "n_atoms": len(c.numbers),
               "ref": float(np.trace(c.info["e_total"]) / 3), "eps_inf_dft": float(np.trace(c.epsilon) / 3),
               "eps_inf_pred": float(np.trace(g.eps_inf) / 3), "ionic": ionic,
               "pred": float(np.trace(g.eps_0) / 3), "dft_eps_inf": float(np.trace(c.epsilon) / 3) + ionic,
               "imaginary": int((optical < -IMAGINARY_TOLERANCE_CM).sum()),
               "imaginary_off_gamma": len([m for m in res.imaginary if m["where"] != "Gamma (optical)"]),
               "gamma_cm": [round(float(f), 3) for f in g.frequencies_cm],
               "eps_0": np.round(g.eps_0, 4).tolist(),
               "n_supercell": res.n_supercell, "n_displacements": res.n_displacements,
               "wall_s": time.perf_counter() - t0, "timings": res.timings}
        rows.append(row)
        print(f"[{i + 1}/{len(crystals)}] " + json.dumps({k: (round(v, 3) if isinstance(v, float) else v)
                                                         for k, v in row.items() if k not in ("gamma_cm", "eps_0")}),
              flush=True)
        save()
    parts = dict(zip([c.info["material_id"] for c in crystals], training_parts(crystals)))
    for r in rows:
        r["training_parts"] = parts[r["material_id"]]
    print(json.dumps(save(), indent=1))


if __name__ == "__main__":
    main()
