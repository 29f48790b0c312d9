"""Deterministic train/valid/test splits of the registered data sets.

A split is a dict ``{"train": [...], "valid": [...], "test": [...]}`` of sorted 0-based
structure indices into the data file, in file order. The committed copy lives in the
repository's ``datasets/splits/<name>.json``; an installed package without that folder
regenerates the same split from :data:`SPLIT_PARAMETERS`: the seeded random cut of
:func:`make_split`, then the recorded ``moved_to_train`` crystals (duplicates of training
crystals found by :mod:`tensorprop.data.duplicates`) moved from valid/test into train. The
seeded cut alone is the split as first committed (``make_split(n, fractions, seed)``).

``python -m tensorprop.data.splits [NAME ...]`` (re)writes the json files.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from tensorprop.errors import DataError

__all__ = ["SPLIT_PARAMETERS", "SPLITS_DIR", "SPLIT_NAMES", "make_split", "move_to_train", "load_split",
           "write_split"]

#: the three parts of a split, in order
SPLIT_NAMES = ("train", "valid", "test")
#: folder of the committed split files (present in a source checkout, absent in a wheel)
SPLITS_DIR = Path(__file__).resolve().parents[2] / "datasets" / "splits"
#: recorded parameters from which every committed split can be regenerated
SPLIT_PARAMETERS: dict[str, dict] = {
    "phonon-becs": {
        "n": 1520,
        "seed": 20181101,
        "fractions": (0.8, 0.1, 0.1),
        "sha256": "0f3db1972e983ff690586cd87050af2d03edf9c9c16688362198830d65166f54",
        # duplicates of training crystals (tensorprop.data.duplicates, 2026-11-29): (index, from, duplicate_of)
        "moved_to_train": (
            (606, "test", (794,)),     # NaN3: C2/m vs R-3m, Z* within 0.035 e
            (648, "test", (765,)),     # BaTiO3 P4mm: the same entry twice
            (752, "valid", (1467,)),   # SiO2 quartz: the enantiomorph (P3_121 / P3_221), identical labels
            (831, "test", (489,)),     # CaBr2: P4_2/mnm vs Pnnm, Z* within 0.034 e
            (1144, "test", (167,)),    # CaCl2: Pnnm vs P4_2/mnm, Z* within 0.018 e
            (1354, "valid", (689,)),   # CaSnF6: R-3 vs Fm-3m, Z* within 0.030 e
        ),
    },
}


def make_split(n: int, fractions=(0.8, 0.1, 0.1), seed: int = 20181101) -> dict[str, list[int]]:
    """Randomly split ``range(n)`` into train/valid/test.

    Parameters
    ----------
    n : int
        Number of structures.
    fractions : (3,) sequence of float
        Train, valid and test fractions; must be >= 0 and sum to 1. Train and valid sizes
        are ``round(f * n)``; test takes the rest.
    seed : int
        Seed of ``numpy.random.default_rng``; the permutation
        ``default_rng(seed).permutation(n)`` is cut in this order.

    Returns
    -------
    dict
        ``{"train": [...], "valid": [...], "test": [...]}``: disjoint sorted int lists
        covering ``0 .. n-1``.
    """
    n = int(n)
    fr = np.asarray(fractions, dtype=float)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if fr.shape != (3,) or (fr < 0).any() or abs(fr.sum() - 1.0) > 1e-9:
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {tuple(fractions)}")
    perm = np.random.default_rng(int(seed)).permutation(n)
    n_train = int(round(fr[0] * n))
    n_valid = min(int(round(fr[1] * n)), n - n_train)
    parts = (perm[:n_train], perm[n_train:n_train + n_valid], perm[n_train + n_valid:])
    return {k: sorted(int(i) for i in p) for k, p in zip(SPLIT_NAMES, parts)}


def move_to_train(split: dict[str, list[int]], indices) -> dict[str, list[int]]:
    """A copy of ``split`` with ``indices`` taken out of valid/test and added to train (sorted)."""
    moved = {int(i) for i in indices}
    out = {k: [i for i in v if i not in moved] for k, v in split.items()}
    out["train"] = sorted(set(split["train"]) | moved)
    return out


def _split_document(name: str) -> dict:
    params = SPLIT_PARAMETERS[name]
    split = make_split(params["n"], params["fractions"], params["seed"])
    moves = params.get("moved_to_train", ())
    split = move_to_train(split, [m[0] for m in moves])
    record = {}
    if moves:
        record["moved_to_train"] = [{"index": i, "from": part, "duplicate_of": list(dup)} for i, part, dup in moves]
    return {"dataset": name, "sha256": params["sha256"], "n": params["n"], "seed": params["seed"],
            "fractions": list(params["fractions"]), **record, **split}


def _check_split(doc: dict, source: str) -> dict[str, list[int]]:
    try:
        n = int(doc["n"])
        parts = {k: [int(i) for i in doc[k]] for k in SPLIT_NAMES}
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(source, f"not a split file: {type(exc).__name__}: {exc}") from None
    joined = sorted(i for p in parts.values() for i in p)
    if joined != list(range(n)):
        raise DataError(source, f"split parts are not a disjoint cover of 0..{n - 1}")
    return parts


def load_split(name: str, *, directory: str | Path | None = None) -> dict[str, list[int]]:
    """The train/valid/test split of a registered data set.

    Reads ``<directory>/<name>.json`` (default :data:`SPLITS_DIR`) when it exists,
    otherwise regenerates the split from :data:`SPLIT_PARAMETERS`.

    Returns
    -------
    dict
        ``{"train": [...], "valid": [...], "test": [...]}`` sorted index lists.

    Raises
    ------
    DataError
        No split is defined for ``name``, or the split file is malformed.
    """
    path = Path(directory or SPLITS_DIR) / f"{name}.json"
    if path.is_file():
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DataError(str(path), f"cannot read split file: {exc}") from None
        return _check_split(doc, str(path))
    if name not in SPLIT_PARAMETERS:
        raise DataError(str(name), f"no train/valid/test split is defined for data set {name!r}; "
                                   f"splits exist for {sorted(SPLIT_PARAMETERS)} (use .subset(indices) instead)")
    return _check_split(_split_document(name), f"<regenerated split of {name}>")


def write_split(name: str, directory: str | Path | None = None) -> Path:
    """Write ``<directory>/<name>.json`` (default :data:`SPLITS_DIR`) from :data:`SPLIT_PARAMETERS`.

    The file holds the keys dataset, sha256 (of the data file), n, seed, fractions,
    moved_to_train (when crystals were moved: index, part it came from, its duplicates in
    train), train, valid, test; lists are written on one line each.
    """
    if name not in SPLIT_PARAMETERS:
        raise DataError(str(name), f"no split parameters recorded; known: {sorted(SPLIT_PARAMETERS)}")
    doc = _split_document(name)
    directory = Path(directory or SPLITS_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    body = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in doc.items())
    path.write_text("{\n" + body + "\n}\n", encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    """Write the split files named in ``argv`` (default: all) and print their sizes."""
    names = list(argv if argv is not None else sys.argv[1:]) or sorted(SPLIT_PARAMETERS)
    for name in names:
        path = write_split(name)
        parts = load_split(name)
        sizes = ", ".join(f"{k} {len(v)}" for k, v in parts.items())
        print(f"wrote {path}: {sizes}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
