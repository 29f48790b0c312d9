"""The project's own typed record of one crystal (or molecule) and its tensor labels.

Readers of foreign formats (ext-xyz, POSCAR, CIF, pymatgen, phonopy) convert into
:class:`Crystal` at once; nothing downstream sees an ``ase.Atoms`` or a pymatgen object.

Conventions (see ``docs/conventions.md``): lengths in Angstrom, charges in e.
``born_charges[i, a, b] = dP_a / du_(i, b)``: first index the polarisation (field)
direction, second the displacement direction of atom ``i`` (phonopy's order).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

__all__ = ["Crystal"]


@dataclasses.dataclass(frozen=True, eq=False)
class Crystal:
    """One structure with optional tensor labels.

    Attributes
    ----------
    numbers : (n_atoms,) int
        Atomic numbers.
    positions : (n_atoms, 3) float
        Cartesian positions, Angstrom.
    cell : (3, 3) float
        Lattice vectors as rows, Angstrom (zeros along non-periodic directions).
    pbc : (3,) bool
        Periodicity along each lattice vector.
    born_charges : (n_atoms, 3, 3) float or None
        Born effective charges Z*[i, a, b] = dP_a/du_(i,b), e.
    epsilon : (3, 3) float or None
        Electronic (high-frequency) dielectric tensor eps_inf, dimensionless.
    label : str
        Where the structure came from, e.g. ``"phonon_becs_epsilon.xyz#12"``.
    info : dict
        Any other per-structure metadata (material id, formula, total dielectric tensor, ...).
    """

    numbers: np.ndarray
    positions: np.ndarray
    cell: np.ndarray
    pbc: np.ndarray
    born_charges: np.ndarray | None = None
    epsilon: np.ndarray | None = None
    label: str = ""
    info: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        # normalise dtypes and shapes once; readers validate values (see data/validate.py)
        object.__setattr__(self, "numbers", np.asarray(self.numbers, dtype=np.int64).reshape(-1))
        n = len(self.numbers)
        object.__setattr__(self, "positions", np.asarray(self.positions, dtype=np.float64).reshape(n, 3))
        object.__setattr__(self, "cell", np.asarray(self.cell, dtype=np.float64).reshape(3, 3))
        object.__setattr__(self, "pbc", np.broadcast_to(np.asarray(self.pbc, dtype=bool), (3,)).copy())
        if self.born_charges is not None:
            object.__setattr__(self, "born_charges", np.asarray(self.born_charges, dtype=np.float64).reshape(n, 3, 3))
        if self.epsilon is not None:
            object.__setattr__(self, "epsilon", np.asarray(self.epsilon, dtype=np.float64).reshape(3, 3))

    @property
    def n_atoms(self) -> int:
        return len(self.numbers)

    @property
    def volume(self) -> float:
        """Cell volume in Angstrom^3 (absolute value of the determinant)."""
        return float(abs(np.linalg.det(self.cell)))

    @property
    def formula(self) -> str:
        """Reduced-order chemical formula, e.g. ``"NaCl"``, ``"Al2O3"``."""
        from ase.formula import Formula
        from ase.data import chemical_symbols

        return Formula("".join(chemical_symbols[z] for z in self.numbers)).reduce()[0].format("metal")

    def replace(self, **changes) -> "Crystal":
        """A copy with some fields replaced (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    # -- conversions to the tools users already hold -------------------------------------
    def to_ase(self):
        """An ``ase.Atoms`` with ``arrays["born_charges"]`` and ``info["epsilon"]`` when labelled."""
        import ase

        atoms = ase.Atoms(numbers=self.numbers, positions=self.positions, cell=self.cell, pbc=self.pbc)
        if self.born_charges is not None:
            atoms.arrays["born_charges"] = self.born_charges.copy()
        if self.epsilon is not None:
            atoms.info["epsilon"] = self.epsilon.copy()
        atoms.info.update({k: v for k, v in self.info.items() if k not in ("epsilon",)})
        return atoms

    def to_pymatgen(self):
        """A ``pymatgen.core.Structure`` (periodic) or ``Molecule`` (no periodicity)."""
        from pymatgen.core import Lattice, Molecule, Structure

        if not self.pbc.any():
            return Molecule(self.numbers.tolist(), self.positions)
        return Structure(Lattice(self.cell, pbc=tuple(bool(p) for p in self.pbc)), self.numbers.tolist(),
                         self.positions, coords_are_cartesian=True)
