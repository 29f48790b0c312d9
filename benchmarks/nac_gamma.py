"""Gamma-point LO frequencies from predicted NAC against phonopy with the DFT BORN files.

    python benchmarks/nac_gamma.py [MODEL ...] [--examples ../shared/phonopy] [--out runs/nac_gamma]

For each of phonopy's examples (NaCl, MgO, ZnO, SnO2, SiO2-HP, Al2O3) and each model
(run folder, .npz, or 'default'), runs the `tensorprop nac` workflow and reports the highest
LO frequency for q along x, y, z (Al2O3: also phonopy's reduced [1,0,0]) with predicted and
with DFT NAC, and the relative error. Prints a table and writes OUT/nac_gamma.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import warnings
from pathlib import Path

from tensorprop.phonopy.workflow import resolve_model, run_nac

MATERIALS = ("NaCl", "MgO", "ZnO", "SnO2", "SiO2-HP", "Al2O3")


def main(argv=None):
    here = Path(__file__).resolve().parents[1]
    p = argparse.ArgumentParser()
    p.add_argument("models", nargs="*", default=["default"])
    p.add_argument("--examples", default=str(here.parent / "shared" / "phonopy"))
    p.add_argument("--out", default="runs/nac_gamma")
    args = p.parse_args(argv)
    rows = []
    for name in args.models:
        model = resolve_model(name)
        for material in MATERIALS:
            folder = Path(args.examples) / material
            for reduced in ((False, True) if material == "Al2O3" else (False,)):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    s = run_nac(folder / "phonopy_disp.yaml", folder / "FORCE_SETS", model=model,
                                reference_born=folder / "BORN", out_dir=Path(args.out) / Path(name).stem / material,
                                reduced=reduced, plot=not reduced, directions=((1, 0, 0),) if reduced else
                                ((1, 0, 0), (0, 1, 0), (0, 0, 1)))
                g = s["gamma"]
                for label in g["directions"]:
                    pred, ref = g["predicted"][label]["lo_max"], g["reference"][label]["lo_max"]
                    rows.append({"model": name, "material": material, "q": label + (" (reduced)" if reduced else ""),
                                 "lo_predicted": round(pred, 1), "lo_dft": round(ref, 1),
                                 "rel_error": round(pred / ref - 1.0, 4), "born_mae": round(s["errors"]["born_mae"], 3),
                                 "eps_mae": round(s["errors"]["dielectric_mae"], 3)})
                    print(f"{name:>24} {material:>8} q={rows[-1]['q']:<12} LO {pred:8.1f} vs DFT {ref:8.1f} cm^-1 "
                          f"({100 * rows[-1]['rel_error']:+.1f}%)", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "nac_gamma.json").write_text(json.dumps({"rows": rows, "date": datetime.date.today().isoformat()}, indent=1))
    return rows


if __name__ == "__main__":
    main()
