"""Predicted non-analytic-correction (NAC) parameters for phonopy.

phonopy adds the long-range dipole-dipole term (LO-TO splitting) to its dynamical
matrix from three numbers per crystal: the Born effective charges Z* of the atoms of
its *primitive* cell, the electronic dielectric tensor eps_inf and a unit conversion
factor. This module predicts the first two with a tensorprop model and returns them
in phonopy's ``nac_params`` layout::

    {"born": (n_prim, 3, 3) e, "dielectric": (3, 3), "factor": float}

``born[i, a, b] = dP_a / du_(i, b)`` (first index: field/polarisation direction, second:
displacement of atom ``i``), which is phonopy's order (see ``docs/conventions.md``), in
the atom order of phonopy's primitive cell.

The predictions are symmetrised with phonopy's own
:func:`phonopy.structure.symmetry.symmetrize_borns_and_epsilon` (site symmetry of each
atom, point group of the crystal for eps_inf, acoustic sum rule) and the size of that
correction is reported. For an exactly equivariant model on an exactly symmetric
structure it is float32 noise; a large one means that the structure is only
approximately symmetric (within ``symprec``) or that the model is broken. Note that
phonopy itself symmetrises ``nac_params`` again whenever its ``is_symmetry`` is on.
"""

from __future__ import annotations

import dataclasses
import os
import types
import warnings
from typing import Any

import numpy as np

from tensorprop.data.convert import as_crystal, from_phonopy_atoms, to_phonopy_atoms
from tensorprop.data.readers import read_structure
from tensorprop.errors import TensorpropError

__all__ = [
    "NacError",
    "NacResult",
    "BORN_WARN_THRESHOLD",
    "EPSILON_WARN_THRESHOLD",
    "default_nac_factor",
    "primitive_cell",
    "predict_nac",
    "nac_params",
    "attach_nac",
    "spread_text",
]

#: warn when symmetrisation moves any Born-charge component by more than this (e)
BORN_WARN_THRESHOLD = 0.1
#: warn when symmetrisation moves any eps_inf component by more than this fraction of mean(diag(eps))
EPSILON_WARN_THRESHOLD = 0.05

# phonopy's own message when it finds strongly asymmetric Born charges; we report our own
_PHONOPY_BORN_WARNING = "Symmetry of Born effective charge is largely broken"


class NacError(TensorpropError, ValueError):
    """NAC parameters that cannot be made (a model without a Born or eps head, bad shapes, ...)."""


@dataclasses.dataclass(frozen=True, eq=False)
class NacResult:
    """Predicted NAC parameters of phonopy's primitive cell and their symmetrisation.

    Attributes
    ----------
    born : (n_prim, 3, 3) ndarray
        Born effective charges, e, Z[i, a, b] = dP_a/du_(i,b), phonopy's primitive atom
        order; symmetrised when ``symmetrized``.
    dielectric : (3, 3) ndarray
        Electronic dielectric tensor eps_inf (dimensionless); symmetrised when ``symmetrized``.
    factor : float
        phonopy's NAC unit conversion factor (e^2/(4 pi eps_0) in the calculator's
        force-constant x length^3 units; 14.3996... eV Angstrom for VASP-like units).
    born_raw, dielectric_raw : ndarray
        The model's predictions before symmetrisation, same shapes.
    born_correction_max : float
        max |born - born_raw|, e (0 when not symmetrised).
    dielectric_correction_max : float
        max |dielectric - dielectric_raw| (dimensionless).
    born_sum_rule_max : float
        max |sum_i born_raw[i]| over the 9 components, e: the acoustic-sum-rule violation
        of the raw prediction.
    primitive : phonopy.structure.atoms.PhonopyAtoms
        The primitive cell the arrays refer to (phonopy's units of length).
    primitive_source : str
        How that primitive cell was obtained, in words.
    symprec : float
        Symmetry tolerance used (phonopy's length unit).
    symmetrized : bool
        Whether ``born``/``dielectric`` were symmetrised.
    born_spread : (n_prim,) ndarray or None
        An ensemble model's spread of each atom's Z* (the members' RMS deviation from their
        mean, e; see :mod:`tensorprop.ensemble`); None for a single model.
    dielectric_spread : float or None
        An ensemble model's spread of eps_inf; None when fewer than two members predict it.
    """

    born: np.ndarray
    dielectric: np.ndarray
    factor: float
    born_raw: np.ndarray
    dielectric_raw: np.ndarray
    born_correction_max: float
    dielectric_correction_max: float
    born_sum_rule_max: float
    primitive: Any
    primitive_source: str
    symprec: float
    symmetrized: bool
    born_spread: np.ndarray | None = None
    dielectric_spread: float | None = None

    @property
    def dielectric_correction_rel(self) -> float:
        """``dielectric_correction_max`` relative to the mean diagonal of eps_inf."""
        return float(self.dielectric_correction_max / max(abs(np.trace(self.dielectric_raw)) / 3.0, 1e-12))

    @property
    def symbols(self) -> list[str]:
        """Chemical symbols of the primitive cell, in order."""
        return list(self.primitive.symbols)

    def as_nac_params(self) -> dict:
        """phonopy's ``nac_params`` dict: ``{"born": (n,3,3), "dielectric": (3,3), "factor": float}`` (copies)."""
        return {"born": np.array(self.born, dtype="double", order="C"),
                "dielectric": np.array(self.dielectric, dtype="double", order="C"),
                "factor": float(self.factor)}

    def to_dict(self) -> dict:
        """JSON-able summary (lists of floats)."""
        return {"symbols": self.symbols, "born": self.born.tolist(), "dielectric": self.dielectric.tolist(),
                "factor": float(self.factor), "symmetrized": bool(self.symmetrized), "symprec": float(self.symprec),
                "born_correction_max": float(self.born_correction_max),
                "dielectric_correction_max": float(self.dielectric_correction_max),
                "dielectric_correction_rel": self.dielectric_correction_rel,
                "born_sum_rule_max": float(self.born_sum_rule_max),
                "born_spread": None if self.born_spread is None else self.born_spread.tolist(),
                "dielectric_spread": self.dielectric_spread,
                "primitive_source": self.primitive_source}


def spread_text(born_spread, dielectric_spread, symbols) -> str:
    """One line on an ensemble's disagreement: the largest per-atom Z* spread (e, with its atom) and eps_inf's."""
    born_spread = np.asarray(born_spread)
    i = int(np.argmax(born_spread))
    text = f"ensemble spread of the prediction: Z* up to {born_spread[i]:.3f} e (atom {i}, {symbols[i]})"
    if dielectric_spread is not None:
        text += f", eps_inf {dielectric_spread:.3f}"
    return text


def _calculator_units(calculator: str | None):
    """phonopy's physical units of a calculator interface (None: VASP-like eV, Angstrom)."""
    try:
        from phonopy.physical_units import get_calculator_physical_units
    except ImportError:  # phonopy < 2.38
        from phonopy.interface.calculator import get_default_physical_units

        units = get_default_physical_units(calculator)
        return types.SimpleNamespace(nac_factor=units["nac_factor"], distance_to_A=units["distance_to_A"])
    return get_calculator_physical_units(calculator)


def default_nac_factor(calculator: str | None = None) -> float:
    """phonopy's default NAC unit conversion factor for a calculator interface.

    Parameters
    ----------
    calculator : str, optional
        phonopy's calculator name (``phonon.calculator``); None means VASP-like units
        (eV, Angstrom), whose factor is Hartree x Bohr = 14.39965... eV Angstrom
        (= e^2 / (4 pi eps_0)). phonopy uses the same value when a BORN file has no
        number on its first line.

    Returns
    -------
    float
    """
    return float(_calculator_units(calculator).nac_factor)


def _is_phonopy(obj) -> bool:
    try:
        from phonopy import Phonopy
    except ImportError:  # pragma: no cover
        return False
    return isinstance(obj, Phonopy)


def _structure_to_phonopy_atoms(structure):
    from phonopy.structure.atoms import PhonopyAtoms

    if isinstance(structure, PhonopyAtoms):
        return structure, "the given PhonopyAtoms"
    if isinstance(structure, (str, os.PathLike)):
        crystal = read_structure(structure)
        return to_phonopy_atoms(crystal), f"file {os.fspath(structure)}"
    crystal = as_crystal(structure)
    return to_phonopy_atoms(crystal), f"the given {type(structure).__name__}"


def _matrix_text(matrix) -> str:
    """A 3x3 matrix on one line, e.g. ``[[0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]]``."""
    rows = np.round(np.asarray(matrix, dtype=float), 4) + 0.0
    return "[" + ", ".join("[" + ", ".join(f"{x:g}" for x in row) + "]" for row in rows) + "]"


def primitive_cell(phonon_or_structure, symprec: float | None = None):
    """phonopy's primitive cell of a ``Phonopy`` object or of a structure.

    Parameters
    ----------
    phonon_or_structure : phonopy.Phonopy, PhonopyAtoms, ase.Atoms, pymatgen Structure, Crystal or path
        For a ``Phonopy``, its own ``phonon.primitive`` is used as it is. For anything else
        the primitive cell is found as phonopy's ``primitive_matrix="auto"`` does
        (:func:`phonopy.structure.cells.guess_primitive_matrix`, spglib's standardisation;
        the cell keeps the input's orientation) and built with
        :func:`phonopy.structure.cells.get_primitive`. Paths are read with
        :func:`tensorprop.data.readers.read_structure`.
    symprec : float, optional
        Symmetry tolerance in the structure's length unit (default: the Phonopy's own, or 1e-5).

    Returns
    -------
    primitive : PhonopyAtoms
    source : str
        How it was obtained, in words.
    symprec : float
        The tolerance used.
    calculator : str or None
        phonopy's calculator interface (None for structures: Angstrom).
    """
    if _is_phonopy(phonon_or_structure):
        phonon = phonon_or_structure
        tol = float(phonon.symmetry.tolerance if symprec is None else symprec)
        pmat = phonon.primitive_matrix
        pm = "identity" if pmat is None else _matrix_text(pmat)
        return phonon.primitive, f"phonon.primitive (primitive_matrix {pm})", tol, phonon.calculator
    from phonopy.structure.cells import get_primitive, guess_primitive_matrix

    tol = 1e-5 if symprec is None else float(symprec)
    unitcell, where = _structure_to_phonopy_atoms(phonon_or_structure)
    pmat = guess_primitive_matrix(unitcell, symprec=tol)
    primitive = get_primitive(unitcell, pmat, symprec=tol)
    source = (f"primitive cell of {where} ({len(unitcell)} atoms -> {len(primitive)}) found with "
              f"phonopy.structure.cells.guess_primitive_matrix (spglib), primitive_matrix {_matrix_text(pmat)}")
    return primitive, source, tol, None


def _predict_raw(model, primitive, distance_to_A: float) -> tuple[np.ndarray, np.ndarray, dict]:
    """Run ``model.predict`` on the primitive cell given in Angstrom; check the outputs.
    Returns Z* (n, 3, 3), eps_inf (3, 3) and an ensemble's spreads (``born_spread``, ``dielectric_spread``)."""
    from phonopy.structure.atoms import PhonopyAtoms

    cell = primitive
    if abs(distance_to_A - 1.0) > 1e-12:  # e.g. a QE/ABINIT Phonopy works in Bohr; the model wants Angstrom
        cell = PhonopyAtoms(numbers=primitive.numbers, cell=np.asarray(primitive.cell) * distance_to_A,
                            scaled_positions=primitive.scaled_positions)
    crystal = from_phonopy_atoms(cell, source="<phonopy primitive cell>")
    out = model.predict(crystal)
    missing = [k for k in ("born_charges", "epsilon") if k not in out]
    if missing:
        raise NacError(f"the model predicts {sorted(out)} but NAC needs both born_charges and epsilon "
                       f"(missing {', '.join(missing)}); use a becs-eps model")
    born = np.asarray(out["born_charges"], dtype=np.float64)
    eps = np.asarray(out["epsilon"], dtype=np.float64)
    n = len(primitive)
    if born.shape != (n, 3, 3) or eps.shape != (3, 3):
        raise NacError(f"model returned born_charges {born.shape} and epsilon {eps.shape}; expected ({n}, 3, 3) "
                       f"and (3, 3) for the {n}-atom primitive cell")
    if not (np.isfinite(born).all() and np.isfinite(eps).all()):
        raise NacError("model returned non-finite Born charges or dielectric tensor")
    spread = {}
    if "born_charges_spread" in out:
        spread["born_spread"] = np.asarray(out["born_charges_spread"], dtype=np.float64)
    if "epsilon_spread" in out:
        spread["dielectric_spread"] = float(out["epsilon_spread"])
    return born, eps, spread


def predict_nac(model, phonon_or_structure, symmetrize: bool = True, symprec: float | None = None, *,
                factor: float | None = None, born_warn: float = BORN_WARN_THRESHOLD,
                epsilon_warn: float = EPSILON_WARN_THRESHOLD) -> NacResult:
    """Predict phonopy's NAC parameters of a crystal, with a report of the symmetrisation.

    Parameters
    ----------
    model : object with ``predict(structure) -> {"born_charges": (n,3,3), "epsilon": (3,3)}``
        E.g. a :class:`tensorprop.TensorModel` (see :func:`tensorprop.load_model`).
    phonon_or_structure : phonopy.Phonopy or structure
        A ``Phonopy`` (the model predicts on ``phonon.primitive``, converted to Angstrom
        when the calculator works in Bohr), or a structure (ase.Atoms, pymatgen Structure,
        Crystal, PhonopyAtoms or a POSCAR/CIF/xyz path) whose primitive cell is found as in
        :func:`primitive_cell`.
    symmetrize : bool
        Apply :func:`phonopy.structure.symmetry.symmetrize_borns_and_epsilon` (site symmetry,
        point group, acoustic sum rule).
    symprec : float, optional
        Symmetry tolerance (phonopy's length unit); default the Phonopy's own, or 1e-5.
    factor : float, optional
        NAC unit conversion factor; default phonopy's for the calculator
        (:func:`default_nac_factor`, 14.39965 for VASP-like units / structures).
    born_warn : float
        Warn (``UserWarning``) when symmetrisation changes a Born charge by more than this, e.
    epsilon_warn : float
        Warn when it changes eps_inf by more than this fraction of its mean diagonal.

    Returns
    -------
    NacResult
    """
    primitive, source, tol, calculator = primitive_cell(phonon_or_structure, symprec)
    units = _calculator_units(calculator)
    born_raw, eps_raw, spread = _predict_raw(model, primitive, float(units.distance_to_A))
    if symmetrize:
        from phonopy.structure.symmetry import symmetrize_borns_and_epsilon

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_PHONOPY_BORN_WARNING)
            born, eps = symmetrize_borns_and_epsilon(born_raw, eps_raw, primitive, symprec=tol)
        born, eps = np.array(born, dtype=np.float64), np.array(eps, dtype=np.float64)
    else:
        born, eps = born_raw.copy(), eps_raw.copy()
    result = NacResult(born=born, dielectric=eps,
                       factor=float(default_nac_factor(calculator) if factor is None else factor),
                       born_raw=born_raw, dielectric_raw=eps_raw,
                       born_correction_max=float(np.abs(born - born_raw).max()),
                       dielectric_correction_max=float(np.abs(eps - eps_raw).max()),
                       born_sum_rule_max=float(np.abs(born_raw.sum(axis=0)).max()),
                       primitive=primitive, primitive_source=source, symprec=tol, symmetrized=bool(symmetrize),
                       **spread)
    if result.born_correction_max > born_warn or result.dielectric_correction_rel > epsilon_warn:
        warnings.warn(
            f"symmetrising the predicted NAC parameters changed the Born charges by up to "
            f"{result.born_correction_max:.3f} e and eps_inf by up to {100 * result.dielectric_correction_rel:.1f}% "
            f"(thresholds {born_warn} e, {100 * epsilon_warn:.0f}%): the structure is only approximately "
            f"symmetric at symprec={tol:g}, or the prediction is poor; check it before trusting LO frequencies",
            UserWarning, stacklevel=2)
    return result


def nac_params(model, phonon_or_structure, symmetrize: bool = True, symprec: float | None = None,
               **kwargs) -> dict:
    """phonopy's ``nac_params`` dict predicted by ``model``.

    Same arguments as :func:`predict_nac`.

    Returns
    -------
    dict
        ``{"born": (n_prim, 3, 3) e, "dielectric": (3, 3), "factor": float}`` for phonopy's
        primitive cell, in its atom order; ready for ``phonon.nac_params = ...``.
    """
    return predict_nac(model, phonon_or_structure, symmetrize=symmetrize, symprec=symprec,
                       **kwargs).as_nac_params()


def attach_nac(phonon, model, **kwargs) -> NacResult:
    """Predict NAC parameters for ``phonon`` and set ``phonon.nac_params``.

    Parameters
    ----------
    phonon : phonopy.Phonopy
    model : see :func:`predict_nac`
    **kwargs
        Passed to :func:`predict_nac` (``symmetrize``, ``symprec``, ``factor``, ...).

    Returns
    -------
    NacResult
    """
    if not _is_phonopy(phonon):
        raise TypeError(f"attach_nac needs a phonopy.Phonopy, got {type(phonon).__name__}")
    result = predict_nac(model, phonon, **kwargs)
    phonon.nac_params = result.as_nac_params()
    return result
