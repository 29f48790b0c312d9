"""An ase Calculator for a Nequix foundation potential: ``tensorprop.foundation.calculator(name)``.

Follows ase's ``Calculator.calculate(atoms, properties, system_changes)`` contract: ase's base class
keeps the results until the positions, cell, numbers or pbc change, then the next request recomputes
all of energy, free_energy, forces and (for 3D-periodic cells) stress in one jitted call. Graphs are
padded to buckets, and a calculator keeps its padded sizes while a new structure fits them without
much waste, so a series of same-size structures (phonopy's displaced supercells, an MD run) reuses one
compiled function.
"""

from __future__ import annotations

import os

import numpy as np
from ase.calculators.calculator import Calculator, all_changes
from ase.stress import full_3x3_to_voigt_6_stress

from ..data.batching import collate
from .model import FoundationModel, load_foundation_model, padded_size

__all__ = ["NequixCalculator", "calculator"]


class NequixCalculator(Calculator):
    """ase Calculator of a :class:`~tensorprop.foundation.model.FoundationModel` (eV, eV/A, eV/A^3)."""

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, model: FoundationModel, **kwargs):
        super().__init__(**kwargs)
        self.model = model
        self.sizes: tuple[int, int, int] | None = None  # padded (nodes, edges, graphs) of the last call
        self.n_evaluations = 0  # how many times the network ran (results served from ase's cache do not count)

    def _sizes(self, n_nodes: int, n_edges: int) -> tuple[int, int, int]:
        """Keep the previous padded sizes if the structure fits them with at most 1.5x too many slots."""
        if self.sizes is not None:
            pn, pe, _ = self.sizes
            if n_nodes < pn <= 1.5 * (n_nodes + 1) and n_edges < pe <= 1.5 * (n_edges + 1):
                return self.sizes
        self.sizes = (padded_size(n_nodes), padded_size(int(1.05 * n_edges) + 1), 2)
        return self.sizes

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        (graph,) = self.model.graphs([self.atoms])
        batch = collate([graph], *self._sizes(graph.n_nodes, graph.n_edges))
        energies, forces, stresses = self.model.energy_forces_stress(batch)
        self.n_evaluations += 1
        energy = float(energies[0])
        self.results = {"energy": energy, "free_energy": energy,
                        "forces": np.asarray(forces[:graph.n_nodes], dtype=float)}
        if self.atoms.pbc.all():
            self.results["stress"] = full_3x3_to_voigt_6_stress(np.asarray(stresses[0], dtype=float))


def calculator(name_or_path: str | os.PathLike = "nequix-mp-1-pft", **kwargs) -> NequixCalculator:
    """An ase Calculator of a Nequix foundation potential (as ``mace_mp()`` is for MACE).

    Parameters
    ----------
    name_or_path : str or PathLike
        A published name (``"nequix-mp-1-pft"``, ``"nequix-mp-1"``, ``"nequix-oam-1-pft"``), found as
        :func:`~tensorprop.foundation.lookup.resolve_foundation_model` says, or a ``.nqx`` file.
    **kwargs
        Passed to ``ase.calculators.calculator.Calculator``.

    Example (``tensorprop.foundation.calculator`` finds the weights as described above)::

        from ase.build import bulk
        atoms = bulk("NaCl", "rocksalt", a=5.64)
        atoms.calc = tensorprop.foundation.calculator("nequix-mp-1")
        atoms.get_potential_energy()   # -6.7659 eV
    """
    return NequixCalculator(load_foundation_model(name_or_path), **kwargs)
