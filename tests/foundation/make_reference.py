"""Reference energies, forces and stresses of the published Nequix potentials, computed with the
``nequix`` package itself, for testing tensorprop's port (``tensorprop/foundation``).

Not part of the test suite and not importable by it: it needs a scratch venv with the nequix
package (which tensorprop does not depend on). Made with (2026-11-29, 2-core CPU, float32; nequix-oam-1-pft added
2026-12-07 with the same commands, the other two models' numbers reproduced exactly):

    python -m venv /tmp/nequix-venv
    /tmp/nequix-venv/bin/pip install --no-deps nequix==0.4.5
    /tmp/nequix-venv/bin/pip install jax==0.10.2 jaxlib==0.10.2 e3nn-jax==0.21.0 equinox==0.13.8 \
        jraph==0.0.6.dev0 matscipy==1.3.1 ase==3.29.0 numpy scipy pyyaml tqdm h5py cloudpickle optax
    /tmp/nequix-venv/bin/python tests/foundation/make_reference.py ../shared/models \
        tests/foundation/data/nequix_reference.json

The structures (positions, cell, numbers) are stored in the JSON next to the results, so the tests
do not depend on ase's random rattle. Stress: ase's sign and Voigt order (xx, yy, zz, yz, xz, xy),
eV/A^3; forces eV/A; energy eV.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from ase.build import bulk

MODELS = ("nequix-mp-1", "nequix-mp-1-pft", "nequix-oam-1-pft")


def structures():
    """name -> ase.Atoms: two primitive cells at rest, a rattled non-orthogonal cell, a rattled supercell."""
    nacl = bulk("NaCl", "rocksalt", a=5.64)
    si = bulk("Si", "diamond", a=5.43)
    zno = bulk("ZnO", "wurtzite", a=3.25, c=5.21)
    zno.rattle(stdev=0.05, seed=0)
    zno.set_cell(zno.cell[:] @ np.array([[1.0, 0.02, 0.0], [0.0, 1.0, -0.03], [0.01, 0.0, 1.01]]),
                 scale_atoms=True)
    mgo = bulk("MgO", "rocksalt", a=4.21) * (2, 1, 1)
    mgo.rattle(stdev=0.04, seed=1)
    return {"NaCl": nacl, "Si": si, "ZnO-rattled": zno, "MgO-2x1x1-rattled": mgo}


def main(models_dir: str, out: str) -> None:
    from nequix.calculator import NequixCalculator

    doc = {"made_with": "nequix 0.4.5 (jax backend, use_kernel=False), float32; "
                        "tests/foundation/make_reference.py",
           "structures": {}, "results": {}}
    for name, atoms in structures().items():
        doc["structures"][name] = {"numbers": atoms.numbers.tolist(), "positions": atoms.positions.tolist(),
                                   "cell": atoms.cell[:].tolist(), "pbc": atoms.pbc.tolist()}
    for model in MODELS:
        calc = NequixCalculator(model_path=str(Path(models_dir) / f"{model}.nqx"), use_kernel=False)
        doc["results"][model] = {}
        for name, atoms in structures().items():
            atoms.calc = calc
            doc["results"][model][name] = {
                "energy": float(atoms.get_potential_energy()),
                "forces": np.asarray(atoms.get_forces(), float).tolist(),
                "stress": np.asarray(atoms.get_stress(), float).tolist(),
            }
            print(model, name, doc["results"][model][name]["energy"])
    Path(out).write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:3])
