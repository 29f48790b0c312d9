"""Pure checks of a :class:`~tensorprop.data.records.Crystal` and its labels.

Every hard problem raises :class:`~tensorprop.errors.DataError` whose one-line message
names the source, the structure index and the problem (which field, which atom).
Soft problems of the labels (acoustic sum rule, asymmetric dielectric tensor) are
returned as warning strings by :func:`check_labels` instead.

Units: lengths in Angstrom, volumes in Angstrom^3, Born charges in e.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from tensorprop.errors import DataError

__all__ = [
    "MIN_VOLUME",
    "MIN_VECTOR_LENGTH",
    "check_crystal",
    "check_graph_distances",
    "check_labels",
    "acoustic_sum_rule_violation",
    "LABEL_POLICIES",
    "LabelScreen",
    "enforce_label_rules",
    "screen_labels",
]

#: smallest accepted interatomic distance (periodic images included) by default, Angstrom
MIN_DISTANCE = 0.5
#: smallest accepted cell volume of a 3-D periodic cell, Angstrom^3
MIN_VOLUME = 1e-3
#: smallest accepted length of a lattice vector along a periodic direction, Angstrom
MIN_VECTOR_LENGTH = 1e-6
#: largest atomic number accepted
MAX_Z = 118
#: largest accepted coordinate or lattice-vector component, Angstrom (1 micron). Beyond it the
#: neighbour search of vesin 0.6 can crash the process (SIGFPE) for cutoffs of a few Angstrom.
MAX_COORDINATE = 1e4
#: structures with more atoms than this (3-D periodic, sane cell) use vesin for the overlap check
VESIN_MIN_ATOMS = 256


def _first_bad(mask: np.ndarray) -> tuple[int, ...]:
    """Index tuple of the first ``True`` entry of ``mask``."""
    return tuple(int(i) for i in np.argwhere(mask)[0])


def _check_finite(name: str, value: np.ndarray, source: str, index: int | None, what: str) -> None:
    bad = ~np.isfinite(value)
    if bad.any():
        where = _first_bad(bad)
        kind = "NaN" if np.isnan(value[where]) else "inf"
        raise DataError(source, f"non-finite value ({kind}) in {name}{what.format(*where)}", index)


def _check_cell(cell: np.ndarray, pbc: np.ndarray, source: str, index: int | None,
                allow_left_handed: bool = False) -> None:
    """Reject degenerate lattices along periodic directions."""
    periodic = np.flatnonzero(pbc)
    lengths = np.linalg.norm(cell, axis=1)
    for k in periodic:
        if lengths[k] < MIN_VECTOR_LENGTH:
            raise DataError(source, f"degenerate cell: lattice vector {k} is zero (length {lengths[k]:.3g} A) "
                                    f"but the cell is periodic along it", index)
    if len(periodic) == 3:
        det = float(np.linalg.det(cell))
        if abs(det) < MIN_VOLUME:
            raise DataError(source, f"degenerate cell: volume {det:.3g} A^3 < {MIN_VOLUME} A^3 "
                                    f"(lattice vectors are (nearly) linearly dependent)", index)
        if det < 0 and not allow_left_handed:
            raise DataError(source, f"left-handed cell: negative volume {det:.6g} A^3 "
                                    f"(swap two lattice vectors)", index)
    elif len(periodic) == 2:
        area = float(np.linalg.norm(np.cross(cell[periodic[0]], cell[periodic[1]])))
        if area < MIN_VOLUME:
            raise DataError(source, f"degenerate cell: periodic lattice vectors {periodic[0]} and {periodic[1]} "
                                    f"are parallel (area {area:.3g} A^2)", index)


def _heights(cell: np.ndarray) -> np.ndarray:
    """Distances between opposite faces of a full-rank cell, Angstrom, shape (3,)."""
    volume = abs(np.linalg.det(cell))
    return np.array([volume / np.linalg.norm(np.cross(cell[(k + 1) % 3], cell[(k + 2) % 3])) for k in range(3)])


def _orthonormal_completion(cell: np.ndarray, pbc: np.ndarray) -> np.ndarray:
    """``cell`` with its non-periodic rows replaced by unit vectors orthogonal to the periodic ones."""
    full = cell.copy()
    periodic = cell[pbc]
    if len(periodic) == 2:
        normal = np.cross(periodic[0], periodic[1])
        full[~pbc] = normal / np.linalg.norm(normal)
    elif len(periodic) == 1:
        u = periodic[0] / np.linalg.norm(periodic[0])
        v = np.cross(u, np.eye(3)[int(np.argmin(np.abs(u)))])
        v /= np.linalg.norm(v)
        full[~pbc] = np.stack([v, np.cross(u, v)])
    return full


def _closest_pair(positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray, cutoff: float):
    """``(i, j, d)`` of the closest pair closer than ``cutoff`` (``i == j``: an atom and its own image), or None.

    Periodic directions are Minkowski-reduced first so that few images are needed; small
    structures use an exact numpy search, large 3-D periodic ones vesin.
    """
    from ase.geometry import minkowski_reduce, wrap_positions

    n = len(positions)
    shifts = np.zeros((1, 3))
    heights = None
    if pbc.any():
        rcell = np.array(minkowski_reduce(cell, pbc)[0], dtype=np.float64)
        lengths = np.where(pbc, np.linalg.norm(rcell, axis=1), np.inf)
        if lengths.min() < cutoff:  # the shortest lattice vector is a self-image distance
            return 0, 0, float(lengths.min())
        full = _orthonormal_completion(rcell, pbc)
        positions = wrap_positions(positions, full, pbc, eps=0.0)
        heights = _heights(full)
        counts = np.where(pbc, np.ceil(cutoff / heights), 0).astype(int)
        if np.prod(2 * counts + 1) > 10_000:
            raise ValueError(f"lattice too skewed even after reduction (face distances {heights} A)")
        ranges = [np.arange(-m, m + 1) for m in counts]
        grid = np.stack(np.meshgrid(*ranges, indexing="ij"), axis=-1).reshape(-1, 3)
        shifts = grid @ rcell
        cell = rcell
    if n > VESIN_MIN_ATOMS and pbc.all() and heights.max() / heights.min() < 100:
        # vesin 0.6 crashes the process (SIGFPE) on very anisotropic boxes or far-away atoms,
        # hence the reduced cell, the wrapped positions and the aspect-ratio guard
        import vesin

        i, j, d = vesin.NeighborList(cutoff=float(cutoff), full_list=False).compute(
            np.ascontiguousarray(positions), np.ascontiguousarray(cell), True, "ijd")
        if len(d) == 0:
            return None
        k = int(np.argmin(d))
        return int(i[k]), int(j[k]), float(d[k])
    zero = int(np.flatnonzero(~shifts.any(axis=1))[0])
    best = None
    for a in range(n):
        dist = np.linalg.norm(positions[a:, None, :] + shifts[None, :, :] - positions[a], axis=-1)
        dist[0, zero] = np.inf
        j, s = np.unravel_index(int(np.argmin(dist)), dist.shape)
        if dist[j, s] < cutoff and (best is None or dist[j, s] < best[2]):
            best = (a, a + int(j), float(dist[j, s]))
    return best


def _check_distances(positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray, min_distance: float,
                     source: str, index: int | None) -> None:
    """Reject two atoms (or an atom and its own image) closer than ``min_distance``."""
    if len(positions) == 0 or min_distance <= 0:
        return
    try:
        pair = _closest_pair(positions, cell, pbc, float(min_distance))
    except Exception as exc:  # e.g. a lattice that cannot be reduced
        raise DataError(source, f"cannot compute interatomic distances: {type(exc).__name__}: {exc}",
                        index) from None
    _raise_overlap(pair, positions, pbc, min_distance, source, index)


def check_graph_distances(graph, min_distance: float, source: str, index: int | None = None) -> None:
    """The overlap check of :func:`check_crystal` from a neighbour graph already built (its edges are
    every pair within the cutoff, periodic images included, so ``min_distance`` must not exceed it):
    the same :class:`DataError` as ``check_crystal`` raises, without a second neighbour search."""
    if graph.n_edges == 0 or min_distance <= 0:
        return
    lengths = np.linalg.norm(graph.positions[graph.senders] + graph.shifts - graph.positions[graph.receivers], axis=1)
    shortest = lengths.min()
    if shortest < min_distance:  # of equally short pairs, the first atoms (as check_crystal reports them)
        ties = np.flatnonzero(lengths <= shortest + 1e-9)
        pairs = np.sort(np.stack([graph.receivers[ties], graph.senders[ties]], axis=1), axis=1)
        k = int(ties[np.lexsort((pairs[:, 1], pairs[:, 0]))[0]])
        a, b = sorted((int(graph.receivers[k]), int(graph.senders[k])))
        across = np.array([bool(np.any(graph.shifts[k]))])  # the closest pair is a periodic image
        _raise_overlap((a, b, float(lengths[k])), np.asarray(graph.positions, float), across, min_distance,
                       source, index)


def _raise_overlap(pair, positions: np.ndarray, pbc: np.ndarray, min_distance: float, source: str,
                   index: int | None) -> None:
    """DataError for the closest pair ``(a, b, distance)`` (``None``: nothing to report)."""
    if pair is None:
        return
    a, b, dist = pair
    if a == b:
        raise DataError(source, f"atom {a} is {dist:.4g} A from its own periodic image "
                                f"(< min_distance {min_distance} A): lattice vector too short", index)
    image = ""
    if pbc.any() and np.linalg.norm(positions[a] - positions[b]) > dist + 1e-8:
        image = " (across a periodic boundary)"
    raise DataError(source, f"atoms {a} and {b} overlap: distance {dist:.4g} A < min_distance "
                            f"{min_distance} A{image}", index)


def check_crystal(crystal, source: str, index: int | None = None, *, min_distance: float = MIN_DISTANCE,
                  allow_left_handed: bool = False) -> None:
    """Raise :class:`DataError` if ``crystal`` cannot be used as it is.

    Parameters
    ----------
    crystal : Crystal
        The structure to check.
    source : str
        File (or other origin) named in the error message.
    index : int, optional
        0-based structure index within ``source``, named in the error message.
    min_distance : float
        Smallest accepted interatomic distance, Angstrom, periodic images included.
    allow_left_handed : bool
        Accept a negative cell determinant. Files are held to VASP's rule (a left-handed
        POSCAR is an error there too); structures built in memory, e.g. by a
        rotoinversion of a crystal, are valid lattices and are accepted by ``predict``.

    Raises
    ------
    DataError
        On an invalid atomic number, a NaN/inf in positions, cell, born_charges or
        epsilon, a degenerate periodic cell (zero lattice vector, volume < 1e-3 A^3,
        negative determinant), overlapping atoms, or label arrays of the wrong shape
        (born_charges must be (n_atoms, 3, 3), epsilon (3, 3)).
    """
    numbers = np.asarray(crystal.numbers)
    n = len(numbers)
    if n == 0:
        raise DataError(source, "structure has no atoms", index)
    bad = (numbers < 1) | (numbers > MAX_Z)
    if bad.any():
        a = _first_bad(bad)[0]
        raise DataError(source, f"invalid atomic number {int(numbers[a])} for atom {a} (must be 1..{MAX_Z})",
                        index)
    positions = np.asarray(crystal.positions, dtype=float)
    cell = np.asarray(crystal.cell, dtype=float)
    pbc = np.asarray(crystal.pbc, dtype=bool)
    if positions.shape != (n, 3):
        raise DataError(source, f"positions have shape {positions.shape}, expected ({n}, 3)", index)
    if cell.shape != (3, 3):
        raise DataError(source, f"cell has shape {cell.shape}, expected (3, 3)", index)
    _check_finite("positions", positions, source, index, " of atom {0}")
    _check_finite("cell", cell, source, index, " (lattice vector {0})")
    for name, arr, what in (("positions", positions, "atom"), ("cell", cell, "lattice vector")):
        big = np.abs(arr) > MAX_COORDINATE
        if big.any():
            k = _first_bad(big)[0]
            raise DataError(source, f"unphysical {name}: {what} {k} has a component of "
                                    f"{float(np.abs(arr[k]).max()):.3g} A (> {MAX_COORDINATE:g} A; wrap positions "
                                    f"into the cell)", index)
    if crystal.born_charges is not None:
        born = np.asarray(crystal.born_charges, dtype=float)
        if born.shape != (n, 3, 3):
            raise DataError(source, f"born_charges have shape {born.shape}, expected ({n}, 3, 3)", index)
        _check_finite("born_charges", born, source, index, " of atom {0}")
    if crystal.epsilon is not None:
        eps = np.asarray(crystal.epsilon, dtype=float)
        if eps.shape != (3, 3):
            raise DataError(source, f"epsilon has shape {eps.shape}, expected (3, 3)", index)
        _check_finite("epsilon", eps, source, index, " (element [{0}, {1}])")
    _check_cell(cell, pbc, source, index, allow_left_handed)
    _check_distances(positions, cell, pbc, min_distance, source, index)


def acoustic_sum_rule_violation(born_charges) -> float:
    """Largest violation of the acoustic sum rule, e.

    Parameters
    ----------
    born_charges : (n_atoms, 3, 3) array_like
        Born effective charges, e.

    Returns
    -------
    float
        ``max_ab |sum_i Z[i, a, b]|`` (0 for a charge-neutral set).
    """
    born = np.asarray(born_charges, dtype=float).reshape(-1, 3, 3)
    if len(born) == 0:
        return 0.0
    return float(np.abs(born.sum(axis=0)).max())


def check_labels(crystal, source: str, index: int | None = None, *, asr_tol: float = 0.1,
                 symmetry_tol: float = 1e-3) -> list[str]:
    """Soft checks of the tensor labels; returns warnings instead of raising.

    Parameters
    ----------
    crystal : Crystal
        Structure whose ``born_charges`` and ``epsilon`` are checked (absent ones are skipped).
    source : str
        File (or other origin) named in the warnings.
    index : int, optional
        0-based structure index named in the warnings.
    asr_tol : float
        Largest accepted acoustic-sum-rule violation, e.
    symmetry_tol : float
        Largest accepted ``|eps - eps.T|`` element.

    Returns
    -------
    list of str
        One line per problem, e.g. ``"file, structure 3: Born charges violate the acoustic
        sum rule by 0.25 e (tolerance 0.1 e)"``; empty when the labels look fine.
    """
    where = str(source) if index is None else f"{source}, structure {index}"
    return [f"{where}: {problem}" for _, _, problem in _label_problems(crystal, asr_tol, symmetry_tol)]


def _label_problems(crystal, asr_tol: float, symmetry_tol: float) -> list[tuple[str, float, str]]:
    """(rule, size, problem) of each rule the labels break: ``"asr"`` (largest sum-rule violation, e)
    and ``"symmetry"`` (largest ``|eps - eps.T|`` element)."""
    problems = []
    if crystal.born_charges is not None:
        asr = acoustic_sum_rule_violation(crystal.born_charges)
        if not asr <= asr_tol:
            problems.append(("asr", asr, f"Born charges violate the acoustic sum rule by {asr:.4g} e "
                                         f"(tolerance {asr_tol} e)"))
    if crystal.epsilon is not None:
        eps = np.asarray(crystal.epsilon, dtype=float)
        asym = float(np.abs(eps - eps.T).max())
        if not asym <= symmetry_tol:
            problems.append(("symmetry", asym, f"dielectric tensor is not symmetric: max |eps - eps.T| = {asym:.4g} "
                                               f"(tolerance {symmetry_tol})"))
    return problems


LABEL_POLICIES = ("warn", "error", "filter", "symmetrize")


def enforce_label_rules(crystal):
    """A copy whose labels obey the rules exactly: Z* minus its mean over atoms (the acoustic
    sum rule, as phonopy's simple ASR correction does) and eps_inf -> (eps + eps.T) / 2."""
    changes = {}
    if crystal.born_charges is not None:
        born = np.asarray(crystal.born_charges, dtype=float)
        changes["born_charges"] = born - born.mean(axis=0, keepdims=True)
    if crystal.epsilon is not None:
        eps = np.asarray(crystal.epsilon, dtype=float)
        changes["epsilon"] = 0.5 * (eps + eps.T)
    return crystal.replace(**changes)


class LabelScreen(NamedTuple):
    """What :func:`screen_labels` found and did.

    flagged: dataset indices of the structures whose labels break a rule; worst: the warning
    line of the largest sum-rule violation and of the most asymmetric eps_inf (empty when none);
    kept: positions (0..n-1) of the structures to keep; crystals: the crystals to keep, with
    labels made exact under ``symmetrize``.
    """
    flagged: tuple
    worst: tuple
    kept: tuple
    crystals: tuple


def screen_labels(crystals, source: str, indices=None, *, policy: str = "warn", asr_tol: float = 0.1,
                  symmetry_tol: float = 1e-3) -> LabelScreen:
    """Check the tensor labels of many structures and act on the ones that break a rule.

    Parameters
    ----------
    crystals : sequence of Crystal
    source : str
        File named in the messages.
    indices : sequence of int, optional
        Index of each crystal in ``source`` (default 0..n-1), named in the messages.
    policy : {"warn", "error", "filter", "symmetrize"}
        ``warn``: keep everything (the caller reports); ``error``: raise :class:`DataError` for the
        worst structure; ``filter``: drop the flagged structures; ``symmetrize``: keep them with
        labels made exact by :func:`enforce_label_rules`.
    asr_tol, symmetry_tol : float
        As in :func:`check_labels` (e, and eps_inf units).
    """
    if policy not in LABEL_POLICIES:
        raise ValueError(f"label policy must be one of {LABEL_POLICIES}, got {policy!r}")
    crystals = list(crystals)
    indices = list(range(len(crystals))) if indices is None else [int(i) for i in indices]
    flagged = []
    worst = {"asr": (asr_tol, None, None), "symmetry": (symmetry_tol, None, None)}  # (size, index, problem)
    for k, (c, i) in enumerate(zip(crystals, indices)):
        problems = _label_problems(c, asr_tol, symmetry_tol)
        if problems:
            flagged.append(k)
        for rule, size, problem in problems:
            if not size <= worst[rule][0]:  # NaN-safe "greater than"
                worst[rule] = (size, i, problem)
    found = [(i, problem) for _, i, problem in worst.values() if problem is not None]
    if flagged and policy == "error":
        index, problem = found[0]
        raise DataError(source, problem + " (data.label_check: error)", index)
    worst = tuple(f"{source}, structure {i}: {problem}" for i, problem in found)
    bad = set(flagged)
    if policy == "filter":
        kept = tuple(k for k in range(len(crystals)) if k not in bad)
        out = tuple(crystals[k] for k in kept)
    else:
        kept = tuple(range(len(crystals)))
        out = tuple(enforce_label_rules(c) if (policy == "symmetrize" and k in bad) else c
                    for k, c in enumerate(crystals))
    return LabelScreen(tuple(indices[k] for k in flagged), worst, kept, out)
