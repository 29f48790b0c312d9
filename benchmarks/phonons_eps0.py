"""Static dielectric constant eps_0 of `tensorprop phonons` against Petousis et al.'s DFPT e_total.

    python benchmarks/phonons_eps0.py [--limit 50] [--potential nequix-mp-1-pft] [--model default]
                                      [--min-length 8] [--out runs/phonons_eps0]

Selection rule, fixed before looking at any result: the crystals of ``dielectric_constant.json.gz``
with at most 10 atoms and a band gap above 1 eV, in the order of their material_id's number
(mp-149 before mp-1000), the first ``--limit`` of them. For each: :func:`tensorprop.phonopy.phonons`
(forces from the foundation potential, diagonal supercell with plane spacing >= ``--min-length``,
NAC from the model), and the isotropic eps_0 = tr/3:

- ``pred``: eps_inf predicted + ionic part (predicted Z*, foundation force constants);
- ``dft_eps_inf``: the DFT eps_inf (``e_electronic``) in place of the predicted one, same ionic part;

both against tr(e_total)/3. Prints MAE and median relative error, over all crystals and over those
without imaginary modes, and writes OUT/phonons_eps0.json. Crystals that fail are listed with the error.
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
    p.add_argument("--min-length", type=float, default=8.0)
    p.add_argument("--max-atoms", type=int, default=250)
    p.add_argument("--out", default="runs/phonons_eps0")
    args = p.parse_args(argv)

    from tensorprop.data.registry import load_dataset
    from tensorprop.foundation import calculator as foundation_calculator
    from tensorprop.phonopy.phonons import phonons
    from tensorprop.phonopy.workflow import resolve_model

    crystals = select(load_dataset("petousis-dielectric"), args.limit)
    calc = foundation_calculator(args.potential)
    model = resolve_model(args.model)
    rows, failed = [], []
    for c in crystals:
        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _, res = phonons(c, calculator=calc, model=model, min_length=args.min_length,
                                 max_atoms=args.max_atoms, progress=False)
        except Exception as exc:  # a benchmark lists failures instead of stopping
            failed.append({"material_id": c.info["material_id"], "error": f"{type(exc).__name__}: {exc}"[:300]})
            print(json.dumps(failed[-1]), flush=True)
            continue
        g = res.gamma
        ionic = float(np.trace(g.eps_ionic) / 3)
        row = {"material_id": c.info["material_id"], "formula": c.info["formula"], "n_atoms": len(c.numbers),
               "ref": float(np.trace(c.info["e_total"]) / 3), "eps_inf_dft": float(np.trace(c.epsilon) / 3),
               "eps_inf_pred": float(np.trace(g.eps_inf) / 3), "ionic": ionic,
               "pred": float(np.trace(g.eps_0) / 3), "dft_eps_inf": float(np.trace(c.epsilon) / 3) + ionic,
               "imaginary": len(res.imaginary), "n_supercell": res.n_supercell,
               "wall_s": time.perf_counter() - t0}
        rows.append(row)
        print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}), flush=True)
    stable = [r for r in rows if not r["imaginary"]]
    summary = {"all": {k: _stats(rows, k) for k in ("pred", "dft_eps_inf")},
               "no_imaginary": {k: _stats(stable, k) for k in ("pred", "dft_eps_inf")},
               "failed": len(failed), "median_wall_s": float(np.median([r["wall_s"] for r in rows])) if rows else None}
    print(json.dumps(summary, indent=1))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "phonons_eps0.json").write_text(json.dumps({"date": datetime.date.today().isoformat(), "args": vars(args),
                                                       "summary": summary, "rows": rows, "failed": failed}, indent=1))


if __name__ == "__main__":
    main()
