"""Byte-level corruption of small valid files (ext-xyz, POSCAR, two-block CIF, BORN, ESP .npz) raises DataError or reads; never another exception."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tensorprop.data.molecules import Molecule, read_molecules, write_esp_dataset
from tensorprop.data.readers import read_born, read_extxyz, read_structure, read_structures, write_extxyz
from tensorprop.data.records import Crystal
from tensorprop.errors import DataError

_CELL = np.array([[4.7155, -1.5230, 0.0], [4.7155, 1.5230, 0.0], [4.2236, 0.0, 2.5917]])
_POS = np.array([[6.8273, 0.0, 1.2959], [4.7155, 1.5230, 0.0], [10.1371, 0.0, 1.9241], [3.5175, 0.0, 0.6676]])
_BORN = np.stack([np.eye(3) * z for z in (1.2, 2.8, -2.0, -2.0)])


def _valid_files(folder: Path) -> dict[str, bytes]:
    c = Crystal(numbers=[3, 45, 8, 8], positions=_POS, cell=_CELL, pbc=True, born_charges=_BORN,
                epsilon=np.diag([4.7, 8.9, 8.7]), info={"mp": "mp-1"})
    xyz = write_extxyz(folder / "valid.xyz", [c, c]).read_bytes()
    poscar = ("LiRhO2\n1.0\n" + "".join(" ".join(f"{x:.6f}" for x in row) + "\n" for row in _CELL)
              + "Li Rh O\n1 1 2\nCartesian\n" + "".join(" ".join(f"{x:.6f}" for x in p) + "\n" for p in _POS))
    from pymatgen.io.cif import CifWriter

    cif = "".join(str(CifWriter(c.to_pymatgen())).replace("data_", f"data_block{k}_", 1) + "\n" for k in range(2))
    born = ("14.4\n" + " ".join(f"{x:.4f}" for x in np.diag([4.7, 8.9, 8.7]).ravel()) + "\n"
            + "".join(" ".join(f"{x:.4f}" for x in z.ravel()) + "\n" for z in _BORN))
    water = Molecule(numbers=np.array([8, 1, 1]), positions=np.array([[0, 0, 0.12], [0, 0.76, -0.47], [0, -0.76, -0.47]]),
                     dipole=np.array([0, 0, 0.39]), esp_points=np.eye(3) * 2.5, esp=np.array([0.01, -0.02, 0.03]))
    esp = write_esp_dataset(folder / "esp.npz", [water, water]).read_bytes()
    return {"set.xyz": xyz, "POSCAR": poscar.encode(), "two.cif": cif.encode(), "BORN": born.encode(), "esp.npz": esp}


_CRYSTAL = Crystal(numbers=[3, 45, 8, 8], positions=_POS, cell=_CELL, pbc=True)


_FILES = _valid_files(Path(tempfile.mkdtemp(prefix="tensorprop-fuzz-")))

edits = st.lists(st.tuples(st.sampled_from(["flip", "delete", "insert", "truncate"]),
                           st.floats(0, 1, exclude_max=True), st.binary(min_size=1, max_size=8)),
                 min_size=1, max_size=4)


def _corrupt(data: bytes, ops) -> bytes:
    for op, where, payload in ops:
        k = int(where * max(len(data), 1))
        if op == "flip":
            data = data[:k] + payload + data[k + len(payload):]
        elif op == "delete":
            data = data[:k] + data[k + len(payload):]
        elif op == "insert":
            data = data[:k] + payload + data[k:]
        else:
            data = data[:k]
    return data


def test_the_uncorrupted_files_read():
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in _FILES.items():
            (Path(tmp) / name).write_bytes(data)
        assert len(read_structures(Path(tmp) / "two.cif")) == 2
        born, eps, _ = read_born(Path(tmp) / "BORN", _CRYSTAL, is_symmetry=False)
        np.testing.assert_allclose(born, _BORN, atol=1e-12)
        np.testing.assert_allclose(np.diag(eps), [4.7, 8.9, 8.7])
        assert len(read_molecules(Path(tmp) / "esp.npz")) == 2


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(_FILES)), ops=edits)
def test_corrupted_files_raise_only_data_error(name, ops):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(_corrupt(_FILES[name], ops))
        try:
            if name.endswith(".xyz"):
                read_extxyz(path, require_labels=False)
            elif name.endswith(".cif"):
                read_structures(path)
            elif name == "BORN":
                read_born(path, _CRYSTAL, is_symmetry=False)
            elif name.endswith(".npz"):
                read_molecules(path)
            else:
                read_structure(path)
        except DataError as exc:
            assert str(exc).startswith(str(path))
