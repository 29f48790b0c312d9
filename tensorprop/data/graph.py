"""Periodic neighbour graphs of single structures (host-side, numpy).

The neighbour search is vesin's cell-list algorithm (linear in the number of atoms,
any cell shape, cutoffs larger than the cell). An edge points from a ``sender``
(the neighbour j) to a ``receiver`` (the centre i); its vector is

    r_ij = positions[senders] - positions[receivers] + shifts

with ``shifts = S @ cell`` the Cartesian lattice translation of the periodic image.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..errors import DataError
from .records import Crystal

__all__ = ["Graph", "build_graph", "neighbour_list"]


class Graph(NamedTuple):
    """One structure as a neighbour graph, with its labels (numpy, unpadded).

    Fields: numbers (n,) int; positions (n, 3) Angstrom; cell (3, 3) Angstrom;
    senders, receivers (e,) int; shifts (e, 3) Angstrom; born_charges (n, 3, 3) e or None;
    epsilon (3, 3) or None; label str.
    """

    numbers: np.ndarray
    positions: np.ndarray
    cell: np.ndarray
    senders: np.ndarray
    receivers: np.ndarray
    shifts: np.ndarray
    born_charges: np.ndarray | None
    epsilon: np.ndarray | None
    label: str

    @property
    def n_nodes(self) -> int:
        return len(self.numbers)

    @property
    def n_edges(self) -> int:
        return len(self.senders)


def neighbour_list(positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray, cutoff: float):
    """All ordered pairs (i, j) with |r_j + S cell - r_i| < cutoff, i != j or S != 0.

    Returns
    -------
    receivers (i), senders (j) : (e,) int64
    shifts : (e, 3) float64, Cartesian image translation ``S @ cell`` in Angstrom.
    """
    import vesin

    box = np.where(np.asarray(pbc)[:, None], cell, 0.0) if np.any(pbc) else np.zeros((3, 3))
    calculator = vesin.NeighborList(cutoff=float(cutoff), full_list=True)
    i, j, s = calculator.compute(np.asarray(positions, dtype=np.float64), box, [bool(p) for p in pbc], "ijS")
    return i.astype(np.int64), j.astype(np.int64), s.astype(np.float64) @ np.asarray(cell, dtype=np.float64)


def build_graph(crystal: Crystal, cutoff: float, *, index: int | None = None, allow_isolated: bool = False) -> Graph:
    """Neighbour graph of ``crystal`` within ``cutoff`` Angstrom.

    Raises
    ------
    DataError
        When an atom has no neighbour within the cutoff (its environment is empty, so the
        network cannot say anything about it) unless ``allow_isolated``.
    """
    receivers, senders, shifts = neighbour_list(crystal.positions, crystal.cell, crystal.pbc, cutoff)
    if not allow_isolated and crystal.n_atoms > 0:
        counts = np.bincount(receivers, minlength=crystal.n_atoms)
        lonely = np.flatnonzero(counts == 0)
        if len(lonely):
            from ase.data import chemical_symbols

            a = int(lonely[0])
            raise DataError(
                crystal.label or "<structure>",
                f"atom {a} ({chemical_symbols[crystal.numbers[a]]}) has no neighbour within the cutoff of "
                f"{cutoff} A ({len(lonely)} such atoms); increase the cutoff or check the cell",
                index,
            )
    return Graph(
        numbers=crystal.numbers,
        positions=crystal.positions,
        cell=crystal.cell,
        senders=senders,
        receivers=receivers,
        shifts=shifts,
        born_charges=crystal.born_charges,
        epsilon=crystal.epsilon,
        label=crystal.label,
    )
