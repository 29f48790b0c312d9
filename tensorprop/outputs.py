"""The output keys: one registry of what a model can return, per atom or per structure.

Every key a model's ``apply``/``predict`` returns, a loss reads or a writer writes is named here
once, with where it lives (one entry per atom, per structure, ...), its shape after that leading
axis, its index symmetry and its unit. ``"ij"``: a general 3x3 tensor (Z*: first index the field
or polarisation, second the displacement); ``"ij=ji"``: symmetric (eps_inf, polarisability);
``""``: no tensor symmetry to speak of (vectors, scalars). Code names the keys through the
constants below, not through string literals, so that a key is renamed in one place.

>>> OUTPUTS[BORN_CHARGES].per, OUTPUTS[BORN_CHARGES].shape, OUTPUTS[EPSILON].symmetry
('atom', (3, 3), 'ij=ji')
"""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["OutputKey", "OUTPUTS", "BORN_CHARGES", "BORN_CHARGES_SPREAD", "EPSILON", "EPSILON_SPREAD", "EPSILON_LOG",
           "CHARGES", "SITES", "DIPOLE", "ENERGY", "FORCES", "POLARISABILITY", "per_atom", "per_structure",
           "split_structures"]

BORN_CHARGES = "born_charges"
BORN_CHARGES_SPREAD = "born_charges_spread"
EPSILON = "epsilon"
EPSILON_SPREAD = "epsilon_spread"
EPSILON_LOG = "epsilon_log"
CHARGES = "charges"
SITES = "sites"
DIPOLE = "dipole"
ENERGY = "energy"
FORCES = "forces"
POLARISABILITY = "polarisability"


@dataclasses.dataclass(frozen=True)
class OutputKey:
    """One output: ``per`` is ``"atom"`` (leading axis: the atoms) or ``"structure"`` (one per structure);
    ``shape`` the shape after that axis (``None`` for a size set by the model, e.g. charges per atom);
    ``symmetry`` ``"ij"``, ``"ij=ji"`` or ``""``; ``unit`` in words (docs/conventions.md)."""

    name: str
    per: str
    shape: tuple | None
    symmetry: str
    unit: str
    doc: str


OUTPUTS: dict[str, OutputKey] = {o.name: o for o in (
    OutputKey(BORN_CHARGES, "atom", (3, 3), "ij", "e", "Born effective charges Z*[i, a, b] = dP_a/du_(i,b)"),
    OutputKey(BORN_CHARGES_SPREAD, "atom", (), "", "e", "ensemble members' RMS deviation of Z* per atom"),
    OutputKey(EPSILON, "structure", (3, 3), "ij=ji", "", "electronic dielectric tensor eps_inf"),
    OutputKey(EPSILON_SPREAD, "structure", (), "", "", "ensemble members' RMS deviation of eps_inf"),
    OutputKey(EPSILON_LOG, "structure", (3, 3), "ij=ji", "", "logm(eps_inf - I), the network's eps output"),
    OutputKey(CHARGES, "atom", None, "", "e", "distributed charges, n_dcm per atom"),
    OutputKey(SITES, "atom", None, "", "Angstrom", "positions of the distributed charges (n_dcm, 3) per atom"),
    OutputKey(DIPOLE, "structure", (3,), "", "e*Angstrom", "dipole moment"),
    OutputKey(ENERGY, "structure", (), "", "eV", "energy (field model, at the structure's field)"),
    OutputKey(FORCES, "atom", (3,), "", "eV/Angstrom", "forces -dE/dR"),
    OutputKey(POLARISABILITY, "structure", (3, 3), "ij=ji", "e*Angstrom^2/V", "polarisability -d2E/dF2"),
)}


def per_atom(keys) -> tuple[str, ...]:
    """The keys among ``keys`` with one entry per atom."""
    return tuple(k for k in keys if OUTPUTS[k].per == "atom")


def per_structure(keys) -> tuple[str, ...]:
    """The keys among ``keys`` with one entry per structure."""
    return tuple(k for k in keys if OUTPUTS[k].per == "structure")


def split_structures(out: dict, keys, atom_slices) -> list[dict[str, np.ndarray]]:
    """One padded batch's outputs -> one dict per structure (float64 numpy), for the ``keys`` present in ``out``.

    ``atom_slices[k]`` selects the atoms of the batch's k-th structure; per-structure outputs are indexed by k.
    """
    present = [key for key in keys if key in out]
    return [{key: np.asarray(out[key][atoms] if OUTPUTS[key].per == "atom" else out[key][k], np.float64)
             for key in present} for k, atoms in enumerate(atom_slices)]
