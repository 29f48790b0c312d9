"""`tensorprop phonons` against phonopy's DFT examples: Gamma TO and LO from a structure alone.

    python benchmarks/phonons.py [--potentials nequix-mp-1-pft ...] [--relax | --relax-only] [--model default]
                                 [--examples ../shared/phonopy] [--materials MgO ...] [--out runs/phonons_bench]

For each of the six examples (NaCl, MgO, ZnO, SnO2, SiO2-HP, Al2O3) runs
:func:`tensorprop.phonopy.phonons` on ``POSCAR-unitcell`` with the example's own supercell
matrix, forces from the foundation potential and NAC from the tensorprop model, and compares
with phonopy on the example's DFT ``FORCE_SETS`` + ``BORN``:

- TO: highest Gamma frequency without NAC (cm^-1);
- LO: highest Gamma mode of LO character (GammaModes.lo_max) for q along x and z, with the *predicted* NAC and, on
  the same foundation force constants, with the *DFT* BORN (so the force-constant and the
  Z*/eps_inf errors are separate);
- every Gamma mode: mean and largest absolute difference of the sorted no-NAC optical frequencies
  (cm^-1), and every frequency of both sides in the JSON;
- eps_0 (isotropic) with the predicted NAC and with DFT (the DFT force constants + BORN);
- wall time of the ``phonons`` call (forces, NAC, analysis).

Prints a markdown table and writes OUT/phonons_bench.json, after every row (a partial run is usable).
"""

from __future__ import annotations

import argparse
import datetime
import json
import time
import warnings
from pathlib import Path

import numpy as np

MATERIALS = ("MgO", "NaCl", "ZnO", "SnO2", "Al2O3", "SiO2-HP")


def _reference(folder):
    import phonopy

    from tensorprop.phonopy.gamma_table import gamma_analysis

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ph = phonopy.load(folder / "phonopy_disp.yaml", force_sets_filename=folder / "FORCE_SETS",
                          born_filename=folder / "BORN", log_level=0)
    nac = ph.nac_params
    return ph, nac, gamma_analysis(ph, nac)


def main(argv=None):
    here = Path(__file__).resolve().parents[1]
    p = argparse.ArgumentParser()
    p.add_argument("--potentials", nargs="+", default=["nequix-mp-1-pft"])
    p.add_argument("--model", default="default")
    relax = p.add_mutually_exclusive_group()
    relax.add_argument("--relax", action="store_true", help="also run with --relax (positions)")
    relax.add_argument("--relax-only", action="store_true", help="run with --relax (positions) only")
    p.add_argument("--examples", default=str(here.parent / "shared" / "phonopy"))
    p.add_argument("--materials", nargs="+", default=list(MATERIALS))
    p.add_argument("--out", default="runs/phonons_bench")
    args = p.parse_args(argv)

    from tensorprop.foundation import calculator as foundation_calculator
    from tensorprop.phonopy.gamma_table import gamma_analysis
    from tensorprop.phonopy.phonons import phonons
    from tensorprop.phonopy.workflow import resolve_model

    model = resolve_model(args.model)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    def save(rows):
        (out / "phonons_bench.json").write_text(json.dumps({"date": datetime.date.today().isoformat(),
                                                            "argv": argv, "args": vars(args), "rows": rows},
                                                           indent=1))

    rows = []
    for material in args.materials:
        folder = Path(args.examples) / material
        ref_ph, ref_nac, ref = _reference(folder)
        smat = np.asarray(ref_ph.supercell_matrix, dtype=int)
        for potential in args.potentials:
            calc = foundation_calculator(potential)
            for relax in ((False, True) if args.relax else (True,) if args.relax_only else (False,)):
                t0 = time.perf_counter()
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    ph, res = phonons(folder / "POSCAR-unitcell", calculator=calc, model=model, supercell=smat,
                                      relax=relax, progress=False)
                wall = time.perf_counter() - t0
                g = res.gamma
                # DFT BORN on the foundation force constants (same primitive cell, same atom order)
                with_dft = gamma_analysis(ph, ref_nac)
                to_all = np.sort(g.frequencies_cm[~g.acoustic])
                to_ref = np.sort(ref.frequencies_cm[~ref.acoustic])
                row = {"material": material, "potential": potential, "relax": relax,
                       "to": float(g.frequencies_cm.max()), "to_ref": float(ref.frequencies_cm.max()),
                       "lo_x": g.lo_max_cm["x"], "lo_z": g.lo_max_cm["z"],
                       "lo_x_dft_born": with_dft.lo_max_cm["x"],
                       "lo_z_dft_born": with_dft.lo_max_cm["z"],
                       "lo_x_ref": ref.lo_max_cm["x"], "lo_z_ref": ref.lo_max_cm["z"],
                       "gamma_mae": float(np.abs(to_all - to_ref).mean()),
                       "gamma_max_abs": float(np.abs(to_all - to_ref).max()),
                       "gamma_cm": to_all.round(2).tolist(), "gamma_ref_cm": to_ref.round(2).tolist(),
                       "relax_report": res.relax,
                       "eps0": float(np.trace(g.eps_0) / 3), "eps0_ref": float(np.trace(ref.eps_0) / 3),
                       "eps0_dft_born": float(np.trace(with_dft.eps_0) / 3),
                       "wall_s": wall, "timings": res.timings, "n_supercell": res.n_supercell,
                       "warnings": [str(w.message)[:200] for w in caught]}
                rows.append(row)
                print(json.dumps({k: (round(v, 2) if isinstance(v, float) else v) for k, v in row.items()
                                  if k not in ("warnings", "timings", "gamma_cm", "gamma_ref_cm", "relax_report")}),
                      flush=True)
                save(rows)

    def pct(a, b):
        return f"{100 * (a / b - 1):+.1f}%"

    print("\n| crystal | potential | relax | TO max (ref) | LO x pred NAC / DFT BORN (ref) | LO z pred NAC / DFT BORN (ref) "
          "| Gamma MAE / max | eps_0 pred (ref) | wall |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['material']} | {r['potential']} | {'yes' if r['relax'] else 'no'} | {r['to']:.1f} ({r['to_ref']:.1f}, "
              f"{pct(r['to'], r['to_ref'])}) | {r['lo_x']:.1f} {pct(r['lo_x'], r['lo_x_ref'])} / {r['lo_x_dft_born']:.1f} "
              f"{pct(r['lo_x_dft_born'], r['lo_x_ref'])} ({r['lo_x_ref']:.1f}) | {r['lo_z']:.1f} "
              f"{pct(r['lo_z'], r['lo_z_ref'])} / {r['lo_z_dft_born']:.1f} {pct(r['lo_z_dft_born'], r['lo_z_ref'])} "
              f"({r['lo_z_ref']:.1f}) | {r['gamma_mae']:.1f} / {r['gamma_max_abs']:.1f} | {r['eps0']:.2f} ({r['eps0_ref']:.2f}) | "
              f"{r['wall_s']:.0f} s |")
    save(rows)


if __name__ == "__main__":
    main()
