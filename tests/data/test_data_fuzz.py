"""Byte-level corruption of small valid files raises DataError or reads; never another exception."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tensorprop.data.readers import read_extxyz, read_structure, write_extxyz
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
    return {"set.xyz": xyz, "POSCAR": poscar.encode()}


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


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(_FILES)), ops=edits)
def test_corrupted_files_raise_only_data_error(name, ops):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(_corrupt(_FILES[name], ops))
        try:
            if name.endswith(".xyz"):
                read_extxyz(path, require_labels=False)
            else:
                read_structure(path)
        except DataError as exc:
            assert str(exc).startswith(str(path))
