"""Duplicate crystals in a data set, and duplicates that leak across the parts of a split.

Two crystals are duplicates when they have the same reduced formula, pymatgen's
``StructureMatcher`` (tolerances :data:`STRUCTURE_TOLERANCES`) maps one onto the other, and,
when both carry labels, their Born charges and eps_inf agree within :data:`BORN_TOLERANCE`
and :data:`EPSILON_TOLERANCE` (compared through rotation invariants, so a rotated or mirrored
copy counts). The label test is needed because structure alone cannot separate the cases on
phonon-becs: R3m and P4mm BaTiO3 or KNbO3 (different ferroelectric distortions, Z* differing by
0.5-0.8 e) match even at ``stol=0.05``, while rutile-type and CaCl2-type CaCl2 (Z* within 0.02 e)
need ``stol`` ~0.1. See ``datasets/phonon-becs.md``.

``python -m tensorprop.data.duplicates [NAME]`` prints the cross-part duplicates of the committed
split and of the seeded split before duplicates were moved.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from tensorprop.data.records import Crystal
from tensorprop.data.registry import load_dataset
from tensorprop.data.splits import SPLIT_PARAMETERS, load_split, make_split

__all__ = ["STRUCTURE_TOLERANCES", "BORN_TOLERANCE", "EPSILON_TOLERANCE", "label_distance",
           "find_duplicates", "split_duplicates", "deduplicate_split"]

#: pymatgen's StructureMatcher defaults (lattice 20%, sites 0.3 of (V/n)^(1/3), angles 5 degrees)
STRUCTURE_TOLERANCES = {"ltol": 0.2, "stol": 0.3, "angle_tol": 5.0}
#: largest difference of per-atom Z* singular values (e) between duplicates; phonon-becs: matched pairs
#: are either <= 0.08 e apart or >= 0.2 e (distinct distortions); the bundled model's test MAE is 0.089 e
BORN_TOLERANCE = 0.1
#: largest relative difference of the eps_inf eigenvalues between duplicates (matched pairs: <= 0.03
#: for those within BORN_TOLERANCE)
EPSILON_TOLERANCE = 0.05


def _born_invariants(c: Crystal) -> dict[int, np.ndarray]:
    """Per element, the singular values of each atom's Z* (n_atoms_of_element, 3), e."""
    sv = np.linalg.svd(c.born_charges, compute_uv=False)  # [n_atoms, 3], rotation and mirror invariant
    return {int(z): sv[c.numbers == z] for z in np.unique(c.numbers)}


def label_distance(a: Crystal, b: Crystal) -> tuple[float, float]:
    """How far apart the labels of two crystals of the same elements are, independent of orientation.

    Returns
    -------
    (born, epsilon) : (float, float)
        ``born``: symmetric nearest-neighbour (Hausdorff) distance, per element, between the
        per-atom Z* singular values (e; cells of different size compare their distinct atoms).
        ``epsilon``: largest relative difference of the sorted eps_inf eigenvalues.
        NaN where either crystal lacks that label.
    """
    born = epsilon = float("nan")
    if a.born_charges is not None and b.born_charges is not None:
        ia, ib = _born_invariants(a), _born_invariants(b)
        if set(ia) != set(ib):
            born = float("inf")
        else:
            d = [np.abs(ia[z][:, None, :] - ib[z][None, :, :]).max(-1) for z in ia]  # [n_a_z, n_b_z]
            born = float(max(max(x.min(1).max(), x.min(0).max()) for x in d))
    if a.epsilon is not None and b.epsilon is not None:
        ea = np.linalg.eigvalsh(0.5 * (a.epsilon + a.epsilon.T))
        eb = np.linalg.eigvalsh(0.5 * (b.epsilon + b.epsilon.T))
        epsilon = float((np.abs(ea - eb) / np.maximum(np.abs(ea), np.abs(eb))).max())
    return born, epsilon


def _labels_agree(a: Crystal, b: Crystal, born_tol: float, epsilon_tol: float) -> bool:
    born, epsilon = label_distance(a, b)
    return not (born > born_tol or epsilon > epsilon_tol)  # NaN (no label) does not separate


def find_duplicates(crystals: Sequence[Crystal], *, use_labels: bool = True,
                    born_tol: float = BORN_TOLERANCE, epsilon_tol: float = EPSILON_TOLERANCE,
                    **matcher_kwargs) -> list[list[int]]:
    """Groups of duplicate crystals (see the module docstring).

    Parameters
    ----------
    crystals : sequence of Crystal
        Periodic crystals.
    use_labels : bool
        Also require the Born charges and eps_inf to agree (when both crystals have them).
    born_tol, epsilon_tol : float
        Label tolerances (e; relative), see :data:`BORN_TOLERANCE`, :data:`EPSILON_TOLERANCE`.
    **matcher_kwargs
        Override :data:`STRUCTURE_TOLERANCES` or other ``StructureMatcher`` arguments.

    Returns
    -------
    list of list of int
        Positions in ``crystals`` of each group of two or more duplicates (connected through
        pairwise matches), each sorted, groups ordered by their first member.
    """
    from pymatgen.analysis.structure_matcher import StructureMatcher

    matcher = StructureMatcher(**{**STRUCTURE_TOLERANCES, **matcher_kwargs})
    structures = [c.to_pymatgen() for c in crystals]
    by_formula = defaultdict(list)
    for i, s in enumerate(structures):
        by_formula[s.composition.reduced_formula].append(i)
    parent = list(range(len(crystals)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for members in by_formula.values():
        for k, i in enumerate(members):
            for j in members[k + 1:]:
                if root(i) == root(j):
                    continue
                if use_labels and not _labels_agree(crystals[i], crystals[j], born_tol, epsilon_tol):
                    continue
                if matcher.fit(structures[i], structures[j]):
                    parent[root(j)] = root(i)
    groups = defaultdict(list)
    for i in range(len(crystals)):
        groups[root(i)].append(i)
    return sorted((g for g in groups.values() if len(g) > 1), key=lambda g: g[0])


def split_duplicates(crystals: Sequence[Crystal], split: dict[str, Sequence[int]],
                     **kwargs) -> list[dict[str, list[int]]]:
    """Duplicate groups that span more than one part of ``split``.

    Parameters
    ----------
    crystals : sequence of Crystal
        The full data set (``split`` indexes into it).
    split : dict
        ``{"train": [...], "valid": [...], "test": [...]}``.
    **kwargs
        Passed to :func:`find_duplicates`.

    Returns
    -------
    list of dict
        Per leaking group, ``{part: [indices of the group in that part]}`` for the parts it touches.
    """
    part_of = {int(i): part for part, idx in split.items() for i in idx}
    members = sorted(part_of)
    out = []
    for group in find_duplicates([crystals[i] for i in members], **kwargs):
        parts = defaultdict(list)
        for k in group:
            parts[part_of[members[k]]].append(members[k])
        if len(parts) > 1:
            out.append({p: parts[p] for p in split if p in parts})
    return out


def deduplicate_split(crystals: Sequence[Crystal], split: dict[str, Sequence[int]],
                      keep: str = "train", **kwargs) -> tuple[dict[str, list[int]], list[dict]]:
    """Move every member of a cross-part duplicate group that is not in ``keep`` into ``keep``.

    Returns
    -------
    (split, moves)
        The new split (sorted index lists) and one record per moved crystal:
        ``{"index", "from", "duplicate_of"}`` (``duplicate_of``: the group's members in ``keep``,
        or the rest of the group when none is there).
    """
    new = {p: set(int(i) for i in idx) for p, idx in split.items()}
    moves = []
    for group in split_duplicates(crystals, split, **kwargs):
        kept = group.get(keep, [])
        for part, idx in group.items():
            if part == keep:
                continue
            for i in idx:
                others = kept or sorted(j for g in group.values() for j in g if j != i)
                moves.append({"index": i, "from": part, "duplicate_of": others})
                new[part].discard(i)
                new[keep].add(i)
    return {p: sorted(v) for p, v in new.items()}, sorted(moves, key=lambda m: m["index"])


def main(argv: list[str] | None = None) -> int:
    """Print the cross-part duplicates of the committed split and of the original seeded split."""

    names = list(argv if argv is not None else sys.argv[1:]) or sorted(SPLIT_PARAMETERS)
    for name in names:
        data = load_dataset(name)
        p = SPLIT_PARAMETERS[name]
        for what, split in (("committed", load_split(name)), ("seeded", make_split(p["n"], p["fractions"], p["seed"]))):
            groups = split_duplicates(data, split)
            print(f"{name} {what} split: {len(groups)} duplicate group(s) across parts")
            for g in groups:
                print("  " + "; ".join(f"{part} {idx}" for part, idx in g.items()), data[next(iter(g.values()))[0]].formula)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
