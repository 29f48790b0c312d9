"""Writer of ext-xyz files in the layout of the phonon-becs data set.

Per-atom ``becs`` (9 numbers, row-major Z[i, a, b] = dP_a/du_(i,b), e), per-frame ``eps``
(9 numbers, row-major), positions and ``Lattice`` (rows) in Angstrom, floats written with
``repr`` so that :func:`tensorprop.data.readers.read_extxyz` reads back identical numbers.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import numpy as np

from tensorprop.data.convert import as_crystal
from tensorprop.errors import DataError
from tensorprop.outputs import BORN_CHARGES_SPREAD, CHARGES, FORCES

__all__ = ["write_extxyz"]

#: info keys written as per-atom columns: the registry's per-atom outputs that fit a column, and ase's names
_PER_ATOM_INFO = (FORCES, "force", CHARGES, "initial_charges", "magmoms", BORN_CHARGES_SPREAD)
_RESERVED = {"lattice", "properties", "pbc", "becs", "eps", "species", "pos"}
_SPECIAL_3_3 = ("stress", "virial")  # ase reads these 9-vectors in Fortran order


def _fmt_value(key: str, value, source: str, index: int) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "T" if value else "F"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, str):
        if "\n" in value:
            raise DataError(source, f"cannot write info key {key!r}: string contains a newline", index)
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    try:
        arr = np.asarray(value)
    except Exception:
        arr = np.asarray(None)
    if arr.dtype.kind not in "biuf" or arr.size == 0:
        raise DataError(source, f"cannot write info key {key!r} of type {type(value).__name__} to ext-xyz",
                        index)
    order = "F" if key in _SPECIAL_3_3 and arr.shape == (3, 3) else "C"
    flat = arr.reshape(-1, order=order)
    if arr.dtype.kind == "b":
        return '"' + " ".join("T" if x else "F" for x in flat) + '"'
    if arr.dtype.kind in "iu":
        return '"' + " ".join(str(int(x)) for x in flat) + '"'
    return '"' + " ".join(repr(float(x)) for x in flat) + '"'


def write_extxyz(path: str | os.PathLike, crystals: Iterable) -> Path:
    """Write crystals to an ext-xyz file that :func:`read_extxyz` reads back.

    Born charges go to the per-atom property ``becs`` (9 numbers, row-major), the
    dielectric tensor to the per-frame ``eps`` (9 numbers, row-major), as in the
    phonon-becs data set; floats are written to full precision. ``info`` entries that
    are numbers, strings, booleans or numeric arrays (written flattened, row-major)
    follow; per-atom ``forces``/``charges``/... become columns. ext-xyz has no string
    type: a string that looks like a number or T/F is read back as one.

    Parameters
    ----------
    path : str or PathLike
    crystals : iterable of Crystal (or anything :func:`as_crystal` accepts)

    Returns
    -------
    Path
        ``path``.
    """
    from ase.data import chemical_symbols

    source = str(path)
    chunks: list[str] = []
    for index, obj in enumerate(crystals):
        c = as_crystal(obj)
        n = len(c.numbers)
        columns = [np.array([chemical_symbols[z] for z in c.numbers], dtype=object)[:, None], c.positions]
        props = ["species:S:1", "pos:R:3"]
        if c.born_charges is not None:
            columns.append(c.born_charges.reshape(n, 9))
            props.append("becs:R:9")
        header = []
        if c.pbc.any() or np.any(c.cell):
            header.append('Lattice="' + " ".join(repr(float(x)) for x in c.cell.reshape(9)) + '"')
        extra = []
        for key, value in c.info.items():
            if key.lower() in _RESERVED or not key or any(ch in key for ch in ' ="\'\n:'):
                raise DataError(source, f"cannot write info key {key!r} to ext-xyz (reserved or invalid name)",
                                index)
            arr = np.asarray(value) if isinstance(value, (np.ndarray, list, tuple)) else None
            if key in _PER_ATOM_INFO and arr is not None and arr.ndim >= 1 and arr.shape[0] == n \
                    and arr.dtype.kind in "iuf":
                arr = arr.reshape(n, -1)
                columns.append(arr)
                props.append(f"{key}:{'I' if arr.dtype.kind in 'iu' else 'R'}:{arr.shape[1]}")
            elif value is not None:
                extra.append(f"{key}={_fmt_value(key, value, source, index)}")
        header.append("Properties=" + ":".join(props))
        if c.epsilon is not None:
            header.append('eps="' + " ".join(repr(float(x)) for x in c.epsilon.reshape(9)) + '"')
        header.extend(extra)
        header.append('pbc="' + " ".join("T" if p else "F" for p in c.pbc) + '"')
        rows = []
        for i in range(n):
            fields = [str(columns[0][i, 0])]
            for col in columns[1:]:
                fields.extend(str(int(x)) if col.dtype.kind in "iu" else repr(float(x)) for x in col[i])
            rows.append(" ".join(fields))
        chunks.append(f"{n}\n{' '.join(header)}\n" + "".join(r + "\n" for r in rows))
    try:
        Path(path).write_text("".join(chunks), encoding="utf-8")
    except OSError as exc:
        raise DataError(source, f"cannot write file: {exc}") from None
    return Path(path)
