"""Reader of the Petousis et al. (2017) dielectric data set (matminer ``dielectric_constant``).

The file is a gzip'd pandas "split" JSON: ``{"index": [...], "columns": [...], "data": [[...], ...]}``.
The ``structure`` column holds a pymatgen ``Structure.as_dict()`` (a dict, or its Python
literal as a string); ``e_electronic`` and ``e_total`` are JSON strings of 3x3 lists.
Read with ``json`` + ``gzip`` only (no pandas).
"""

from __future__ import annotations

import ast
import gzip
import json
import os
import warnings
from pathlib import Path

import numpy as np

from tensorprop.data.convert import from_pymatgen
from tensorprop.data.records import Crystal
from tensorprop.errors import DataError

__all__ = ["read_petousis", "REQUIRED_COLUMNS"]

#: columns the reader needs
REQUIRED_COLUMNS = ("material_id", "formula", "structure", "e_electronic", "e_total", "band_gap", "n")


def _load_table(path: str | os.PathLike) -> dict:
    source = str(path)
    if not Path(path).is_file():
        raise DataError(source, "no such file")
    try:
        opener = gzip.open if str(path).endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as fh:
            table = json.load(fh)
    except Exception as exc:
        raise DataError(source, f"cannot read gzip'd JSON table: {type(exc).__name__}: {exc}") from None
    if not isinstance(table, dict) or not {"columns", "data"} <= set(table):
        raise DataError(source, "not a pandas split-JSON table (needs keys 'columns' and 'data')")
    missing = [c for c in REQUIRED_COLUMNS if c not in table["columns"]]
    if missing:
        raise DataError(source, f"table lacks columns {missing}; it has {list(table['columns'])}")
    return table


def _tensor(value, name: str) -> np.ndarray:
    """A 3x3 tensor from a JSON string or a nested list."""
    if isinstance(value, str):
        value = json.loads(value)
    arr = np.asarray(value, dtype=np.float64)
    if arr.size != 9:
        raise ValueError(f"{name} must be 3x3, has {arr.size} numbers")
    arr = arr.reshape(3, 3)
    if not np.isfinite(arr).all():
        raise ValueError(f"non-finite value (NaN/inf) in {name}")
    return arr


def _row_to_crystal(row: dict, source: str, index: int, basename: str) -> Crystal:
    from pymatgen.core import Structure

    try:
        sdict = row["structure"]
        if isinstance(sdict, str):
            sdict = ast.literal_eval(sdict)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            structure = Structure.from_dict(sdict)
        eps = _tensor(row["e_electronic"], "e_electronic")
        e_total = _tensor(row["e_total"], "e_total")
        band_gap = float(row["band_gap"])
        n = float(row["n"])
    except Exception as exc:
        raise DataError(source, f"bad row: {type(exc).__name__}: {exc}", index) from None
    info = {"material_id": str(row["material_id"]), "formula": str(row["formula"]), "e_total": e_total,
            "band_gap": band_gap, "n": n}
    return from_pymatgen(structure, source=source, index=index, epsilon=eps,
                         label=f"{basename}#{index}", info=info)


def read_petousis(path: str | os.PathLike) -> list[Crystal]:
    """Read the Petousis dielectric data set.

    Parameters
    ----------
    path : str or PathLike
        ``dielectric_constant.json.gz`` (gzip'd pandas split-JSON; plain ``.json`` also works).

    Returns
    -------
    list of Crystal
        One per row, in file order, labelled ``"{basename}#{row}"``: ``epsilon`` (3, 3) is
        the electronic dielectric tensor ``e_electronic``; no Born charges. ``info`` holds
        ``material_id`` (str), ``formula`` (str), ``e_total`` ((3, 3) ndarray, electronic +
        ionic), ``band_gap`` (eV) and ``n`` (refractive index).

    Raises
    ------
    DataError
        Unreadable file, missing columns, or a bad row (named by its 0-based index).
    """
    source = str(path)
    table = _load_table(path)
    columns = list(table["columns"])
    basename = os.path.basename(source)
    crystals = []
    for index, values in enumerate(table["data"]):
        if not isinstance(values, list) or len(values) != len(columns):
            raise DataError(source, f"bad row: expected {len(columns)} values", index)
        crystals.append(_row_to_crystal(dict(zip(columns, values)), source, index, basename))
    if not crystals:
        raise DataError(source, "no structures in file")
    return crystals
