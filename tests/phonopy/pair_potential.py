"""A small ASE calculator for the phonon workflow tests: harmonic springs between atom pairs.

E = sum over pairs i<j within ``cutoff`` of k_(ZiZj)/2 (r_ij - r0_(ZiZj))^2, with one
(k, r0) per pair of species. For rock salt with springs between nearest neighbours (cation-
anion) and second neighbours (like ions) at their rest lengths, every phonon is real: the
two fcc sublattices are each stable with nearest-neighbour central springs.
Energy in eV, forces in eV/Angstrom, stress in eV/Angstrom^3 (ase's convention).
"""

from __future__ import annotations

import numpy as np
from ase.calculators.calculator import Calculator, all_changes
from ase.neighborlist import neighbor_list


class HarmonicPairs(Calculator):
    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, springs: dict, cutoff: float, **kwargs):
        """``springs``: ``{(Z1, Z2): (k eV/A^2, r0 A)}`` (either order); pairs not listed feel nothing."""
        super().__init__(**kwargs)
        self.springs = {}
        for (a, b), value in springs.items():
            self.springs[(a, b)] = self.springs[(b, a)] = tuple(float(x) for x in value)
        self.cutoff = float(cutoff)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        i, j, d = neighbor_list("ijD", self.atoms, self.cutoff)
        z = self.atoms.numbers
        k = np.zeros(len(i))
        r0 = np.zeros(len(i))
        for n, (a, b) in enumerate(zip(z[i], z[j])):
            k[n], r0[n] = self.springs.get((int(a), int(b)), (0.0, 0.0))
        r = np.linalg.norm(d, axis=1)
        energy = 0.25 * np.sum(k * (r - r0) ** 2)  # each pair appears twice
        pull = (k * (r - r0) / r)[:, None] * d  # force on i from the spring to j
        forces = np.zeros((len(self.atoms), 3))
        np.add.at(forces, i, pull)
        virial = -0.5 * np.einsum("na,nb->ab", d, pull)  # sum over pairs of r_ij (x) f_ij
        stress = -virial / self.atoms.get_volume()
        self.results = {"energy": float(energy), "free_energy": float(energy), "forces": forces,
                        "stress": stress.reshape(9)[[0, 4, 8, 5, 2, 1]]}


def rocksalt_springs(a: float, k1: float = 2.0, k2: float = 0.5, cation: int = 11, anion: int = 17) -> HarmonicPairs:
    """Springs at rest in rock salt of lattice constant ``a``: cation-anion at a/2, like ions at a/sqrt(2)."""
    return HarmonicPairs({(cation, anion): (k1, a / 2), (cation, cation): (k2, a / np.sqrt(2)),
                          (anion, anion): (k2, a / np.sqrt(2))}, cutoff=0.78 * a)
