"""Phonons from a structure alone: forces from an ASE calculator, NAC from a tensorprop model.

:func:`phonons` builds a ``phonopy.Phonopy`` of a crystal (phonopy's own displacements, the
primitive matrix phonopy's ``"auto"`` finds, given explicitly: :func:`primitive_matrix_of`),
evaluates the forces of every displaced supercell with any ASE calculator (e.g. a foundation potential), computes and symmetrises the force constants,
predicts Z* and eps_inf of the primitive cell with a tensorprop model and sets them as
phonopy's NAC parameters (:func:`tensorprop.phonopy.nac.attach_nac`), and analyses the
zone-centre modes (:func:`tensorprop.phonopy.gamma_table.gamma_analysis`: irreps, IR
intensities, LO/TO, eps_0), the bands with and without NAC and the DOS.

The structure may first be relaxed with the same calculator keeping its space group
(:func:`relax_structure`, ase's ``FixSymmetry``). Files are written by
:func:`tensorprop.phonopy.phonons_output.write_phonons`.
"""

from __future__ import annotations

import dataclasses
import os
import time
import warnings
from typing import Any, Sequence

import numpy as np

from tensorprop.data.convert import as_crystal
from tensorprop.data.readers import read_structure
from tensorprop.errors import DataError, TensorpropError
from tensorprop.foundation import calculator as foundation_calculator
from tensorprop.phonopy import workflow  # workflow.resolve_model is looked up per call, as before
from tensorprop.phonopy.bands import BandData, XYZ, band_structure, thz_to_cm
from tensorprop.phonopy.gamma_table import gamma_analysis
from tensorprop.phonopy.nac import attach_nac

__all__ = ["PhononsResult", "SupercellBudgetError", "phonons", "primitive_matrix_of", "relax_structure",
           "supercell_for_length",
           "DEFAULT_MIN_LENGTH", "DEFAULT_MAX_ATOMS", "METAL_EPSILON", "IMAGINARY_TOLERANCE_CM"]

#: default minimum distance between the supercell's periodic images (plane spacing), Angstrom
DEFAULT_MIN_LENGTH = 10.0
#: default limit on the atoms of the displaced supercells
DEFAULT_MAX_ATOMS = 400
#: predicted eps_inf eigenvalue above which the crystal is treated as (near-)metallic
METAL_EPSILON = 50.0
#: frequencies below minus this (cm^-1) are reported as imaginary modes
IMAGINARY_TOLERANCE_CM = 3.0


class SupercellBudgetError(TensorpropError, ValueError):
    """A supercell larger than the atom budget of a phonon calculation."""


@dataclasses.dataclass(eq=False)
class PhononsResult:
    """What :func:`phonons` computed besides the ``Phonopy`` object.

    Attributes
    ----------
    formula : str
    gamma : GammaAnalysis
        Zone-centre modes, IR intensities, LO/TO along x, y, z, eps_inf / eps_ionic / eps_0.
    nac : NacResult
        The predicted, symmetrised Z* (primitive cell) and eps_inf.
    supercell_matrix : (3, 3) ndarray of int
    n_supercell : int
        Atoms in the supercell.
    n_displacements : int
    residual_force_max : float
        Largest force on an atom of the undisplaced supercell, eV/Angstrom (subtracted from the
        displaced ones' forces).
    bands : dict
        ``{"no NAC": BandData, "predicted NAC": BandData}`` along seekpath's path, cm^-1.
    dos : dict
        ``{"frequency_cm": (nf,), "dos": (nf,)}`` with NAC (states per cm^-1 per primitive cell).
    imaginary : list of dict
        ``{"q": [3 reduced], "frequency_cm": float, "where": "band path"|"mesh"}``, the lowest per q.
    relax : dict or None
        The relaxation report of :func:`relax_structure`.
    warnings : list of str
    timings : dict
        Seconds: ``relax``, ``forces``, ``nac``, ``analysis``.
    potential : str
        The calculator, in words.
    """

    formula: str
    gamma: Any
    nac: Any
    supercell_matrix: np.ndarray
    n_supercell: int
    n_displacements: int
    residual_force_max: float
    bands: dict
    dos: dict
    imaginary: list
    relax: dict | None
    warnings: list
    timings: dict
    potential: str

    def to_dict(self) -> dict:
        """JSON-able summary (the band and DOS arrays are left out; they are in the files)."""
        return {"formula": self.formula, "potential": self.potential,
                "supercell_matrix": np.asarray(self.supercell_matrix).tolist(), "n_supercell": self.n_supercell,
                "n_displacements": self.n_displacements, "residual_force_max_eV_A": self.residual_force_max,
                "gamma": self.gamma.to_dict(), "nac": self.nac.to_dict(), "imaginary_modes": self.imaginary,
                "relax": self.relax, "warnings": list(self.warnings), "timings_s": self.timings}


def _formula(symbols) -> str:
    from ase.formula import Formula

    return Formula("".join(symbols)).reduce()[0].format("metal")


def _as_ase(structure):
    """An ``ase.Atoms`` (periodic, Angstrom) of a path, ase.Atoms, pymatgen Structure, PhonopyAtoms or Crystal."""
    import ase

    if isinstance(structure, ase.Atoms):
        as_crystal(structure)  # validates (overlapping atoms, degenerate cell)
        if not structure.pbc.all():
            raise DataError("<ase.Atoms>", "phonons need a crystal periodic in all 3 directions")
        return structure.copy()
    crystal = read_structure(structure) if isinstance(structure, (str, os.PathLike)) else as_crystal(structure)
    if not np.asarray(crystal.pbc).all():
        raise DataError(crystal.label or "<structure>", "phonons need a crystal periodic in all 3 directions")
    return ase.Atoms(numbers=crystal.numbers, positions=crystal.positions, cell=crystal.cell, pbc=True)


def _to_phonopy(atoms):
    from phonopy.structure.atoms import PhonopyAtoms

    return PhonopyAtoms(numbers=atoms.numbers.tolist(), cell=np.asarray(atoms.cell),
                        scaled_positions=atoms.get_scaled_positions(wrap=False))


def _to_ase(cell):
    import ase

    return ase.Atoms(numbers=cell.numbers, cell=np.asarray(cell.cell), scaled_positions=cell.scaled_positions,
                     pbc=True)


def primitive_matrix_of(cell, symprec: float) -> np.ndarray:
    """The (3, 3) matrix from ``cell`` (PhonopyAtoms) to its primitive cell, found from its symmetry.

    The same matrix as phonopy's ``primitive_matrix="auto"``
    (:func:`phonopy.structure.cells.guess_primitive_matrix`, spglib); passed to ``Phonopy``
    explicitly, so phonopy 4 has no default to warn about (its PrimitiveMatrixAutoDefaultWarning
    says that "auto" may give a non-identity matrix, which is what we want: the primitive cell of
    the structure given, e.g. 2 atoms from rock-salt's 8-atom cubic cell). Identity for a primitive cell.
    """
    from phonopy.structure.cells import guess_primitive_matrix

    return np.asarray(guess_primitive_matrix(cell, symprec=symprec), dtype=float)


def supercell_for_length(cell, min_length: float) -> np.ndarray:
    """Diagonal supercell matrix whose lattice-plane spacings are all >= ``min_length`` (Angstrom).

    n_i = ceil(min_length / h_i) with h_i = Omega / |a_j x a_k| the spacing of the planes
    spanned by the other two lattice vectors (the shortest distance to a periodic image along i).
    """
    cell = np.asarray(cell, dtype=float)
    volume = abs(np.linalg.det(cell))
    heights = [volume / np.linalg.norm(np.cross(cell[(i + 1) % 3], cell[(i + 2) % 3])) for i in range(3)]
    return np.diag([max(1, int(np.ceil(min_length / h - 1e-9))) for h in heights])


def _spacegroup(atoms, symprec: float) -> str:
    import spglib

    ds = spglib.get_symmetry_dataset((np.asarray(atoms.cell), atoms.get_scaled_positions(), atoms.numbers),
                                     symprec=symprec)
    return "unknown" if ds is None else f"{ds.international} ({ds.number})"


def relax_structure(atoms, calculator, *, relax_cell: bool = False, fmax: float = 1e-3, steps: int = 500,
                    symprec: float = 1e-3, progress: bool = False):
    """Relax positions (and optionally the cell) with ``calculator`` keeping the space group.

    ase's ``FixSymmetry`` symmetrises forces, stresses and steps with the space group found at
    ``symprec``; the cell, when relaxed, goes through ``FrechetCellFilter``. Optimiser: BFGS.

    Parameters
    ----------
    atoms : ase.Atoms
        Not modified.
    calculator : ase Calculator
    relax_cell : bool
    fmax : float
        Force (and stress x volume) convergence, eV/Angstrom.
    steps : int
        Maximum optimiser steps.
    symprec : float
        Tolerance of the symmetry kept, Angstrom.

    Returns
    -------
    relaxed : ase.Atoms
    report : dict
        ``spacegroup_before``/``after``, ``max_displacement_A`` (after removing the mean
        displacement), ``volume_change_percent``, ``cell_before``/``after`` (lengths A, angles deg),
        ``energy_change_eV``, ``max_force_before``/``after`` (eV/A), ``steps``, ``converged``.
    """
    from ase.constraints import FixSymmetry
    from ase.optimize import BFGS

    relaxed = atoms.copy()
    relaxed.calc = calculator
    before = {"sg": _spacegroup(atoms, symprec), "cellpar": atoms.cell.cellpar(), "volume": atoms.get_volume()}
    f0 = float(np.linalg.norm(relaxed.get_forces(), axis=1).max())
    e0 = float(relaxed.get_potential_energy())
    relaxed.set_constraint(FixSymmetry(relaxed, symprec=symprec))
    target = relaxed
    if relax_cell:
        from ase.filters import FrechetCellFilter

        target = FrechetCellFilter(relaxed)
    opt = BFGS(target, logfile="-" if progress else None)
    converged = bool(opt.run(fmax=fmax, steps=steps))
    e1 = float(relaxed.get_potential_energy())
    f1 = float(np.linalg.norm(relaxed.get_forces(), axis=1).max())
    relaxed.set_constraint()
    relaxed.calc = None
    dr = relaxed.positions - atoms.positions
    if relax_cell:  # compare fractional positions in the old cell
        dr = (relaxed.get_scaled_positions(wrap=False) - atoms.get_scaled_positions(wrap=False)) @ np.asarray(atoms.cell)
    dr = dr - dr.mean(axis=0)
    report = {"relax_cell": bool(relax_cell), "spacegroup_before": before["sg"],
              "spacegroup_after": _spacegroup(relaxed, symprec), "symprec": symprec,
              "max_displacement_A": float(np.linalg.norm(dr, axis=1).max()),
              "volume_change_percent": float(100.0 * (relaxed.get_volume() / before["volume"] - 1.0)),
              "cell_before": [round(float(x), 5) for x in before["cellpar"]],
              "cell_after": [round(float(x), 5) for x in relaxed.cell.cellpar()],
              "energy_change_eV": e1 - e0, "max_force_before": f0, "max_force_after": f1,
              "steps": int(opt.nsteps), "converged": converged}
    return relaxed, report


def _resolve_calculator(calculator):
    """An ASE calculator from itself or a foundation-potential name / file (:func:`tensorprop.foundation.calculator`)."""
    if calculator is None:
        raise TensorpropError("phonons need a calculator (an ASE calculator or a foundation-potential name)")
    if hasattr(calculator, "get_forces") or hasattr(calculator, "calculate"):
        name = getattr(getattr(calculator, "model", None), "name", None)  # a foundation calculator's checkpoint
        return calculator, str(name) if name else type(calculator).__name__
    return foundation_calculator(calculator), str(calculator)


def _forces(phonon, calculator, progress: bool, subtract_residual: bool) -> tuple[list, float]:
    """Forces (eV/A) of phonopy's displaced supercells; the perfect supercell's forces subtracted."""
    from tqdm.auto import tqdm

    cells = phonon.supercells_with_displacements
    perfect = _to_ase(phonon.supercell)
    perfect.calc = calculator
    f0 = np.array(perfect.get_forces(), dtype=float)
    residual = float(np.linalg.norm(f0, axis=1).max())
    forces = []
    for cell in tqdm(cells, desc="displaced supercells", unit="cell", disable=not progress, leave=False):
        atoms = _to_ase(cell)
        atoms.calc = calculator
        f = np.array(atoms.get_forces(), dtype=float)
        forces.append(f - f0 if subtract_residual else f)
    return forces, residual


def _imaginary(bands: BandData, mesh_q, mesh_f, tol_cm: float) -> list:
    """The lowest frequency of every q-point below -tol_cm (band path and mesh)."""
    found = []
    for qs, fs in zip(bands.qpoints, bands.frequencies):
        for q, f in zip(qs, fs):
            if f.min() < -tol_cm:
                found.append({"q": [round(float(x), 4) for x in q], "frequency_cm": round(float(f.min()), 2),
                              "where": "band path"})
    for q, f in zip(mesh_q, mesh_f):
        if f.min() < -tol_cm:
            found.append({"q": [round(float(x), 4) for x in q], "frequency_cm": round(float(f.min()), 2),
                          "where": "mesh"})
    unique = {}
    for item in found:
        unique.setdefault(tuple(item["q"]), item)
    return sorted(unique.values(), key=lambda d: d["frequency_cm"])


def phonons(atoms, *, calculator, model="default", supercell: Sequence[int] | None = None,
            min_length: float | None = None, relax: bool = False, relax_cell: bool = False,
            relax_fmax: float = 1e-3, distance: float = 0.01, symprec: float = 1e-5,
            max_atoms: int = DEFAULT_MAX_ATOMS, directions: Sequence = XYZ, mesh: float | Sequence[int] = 30.0,
            npoints: int = 51, imaginary_tol: float = IMAGINARY_TOLERANCE_CM, metal_epsilon: float = METAL_EPSILON,
            progress: bool = True):
    """Phonons, LO-TO splitting, IR intensities and eps_0 of a crystal from a structure alone.

    Parameters
    ----------
    atoms : ase.Atoms, pymatgen Structure, PhonopyAtoms, Crystal or path (POSCAR, CIF, ext-xyz)
        The unit cell (Angstrom); its primitive cell is found from its symmetry (:func:`primitive_matrix_of`).
    calculator : ase Calculator or str
        Forces (eV/Angstrom). A string is a foundation-potential name or file, resolved by
        :func:`tensorprop.foundation.calculator`.
    model : model, path or "default"
        tensorprop model predicting Z* and eps_inf (:func:`tensorprop.load_model`).
    supercell : (3,) ints or (3, 3), optional
        Supercell matrix of the unit cell. Default: :func:`supercell_for_length` with ``min_length``.
        ``[1, 1, 1]`` (periodic images displaced together, a q = 0 perturbation) is enough for the
        Gamma-point results, not for the bands (a warning says so).
    min_length : float, optional
        Minimum plane spacing of the supercell, Angstrom (default :data:`DEFAULT_MIN_LENGTH`).
    relax, relax_cell : bool
        Relax positions (and the cell) first with ``calculator``, keeping the space group.
    relax_fmax : float
        Relaxation force threshold, eV/Angstrom.
    distance : float
        Displacement amplitude, Angstrom.
    symprec : float
        phonopy's symmetry tolerance, Angstrom.
    max_atoms : int
        Atom budget of the supercell; a larger one raises :class:`SupercellBudgetError`.
    directions : sequence of (3,)
        Cartesian q directions of the LO columns.
    mesh : float or (3,) ints
        phonopy's mesh (a length or the numbers) for the DOS and the imaginary-mode scan.
    npoints : int
        q-points on the longest band segment.
    imaginary_tol : float
        Report frequencies below -imaginary_tol (cm^-1).
    metal_epsilon : float
        Warn that NAC is meaningless when an eigenvalue of the predicted eps_inf exceeds it.
    progress : bool
        tqdm progress bar over the displaced supercells.

    Returns
    -------
    phonon : phonopy.Phonopy
        With symmetrised force constants and the predicted ``nac_params``.
    result : PhononsResult
    """
    from phonopy import Phonopy

    notes: list[str] = []

    def warn(message: str) -> None:
        notes.append(message)
        warnings.warn(message, UserWarning, stacklevel=3)

    unit = _as_ase(atoms)
    if supercell is not None and min_length is not None:
        raise TensorpropError("give either supercell or min_length, not both")
    if supercell is None:
        smat = supercell_for_length(unit.cell, DEFAULT_MIN_LENGTH if min_length is None else float(min_length))
    else:
        smat = np.asarray(supercell, dtype=int)
        smat = np.diag(smat) if smat.shape == (3,) else smat
        if smat.shape != (3, 3) or round(abs(np.linalg.det(smat))) < 1:
            raise TensorpropError(f"supercell {np.asarray(supercell).tolist()}: need 3 positive integers or a "
                                  f"non-singular 3x3 integer matrix")
    n_super = int(round(abs(np.linalg.det(smat)))) * len(unit)
    if n_super > max_atoms:
        fc_mb = 9 * 8 * n_super ** 2 / 1e6
        raise SupercellBudgetError(
            f"supercell {smat.tolist()} of the {len(unit)}-atom cell has {n_super} atoms, above the budget of "
            f"{max_atoms} (full force constants alone {fc_mb:.0f} MB, and one calculator call per displacement "
            f"on {n_super} atoms); use a smaller --supercell/--min-length or raise --max-atoms (max_atoms=)")

    calc, potential = _resolve_calculator(calculator)
    check_elements = getattr(getattr(calc, "model", None), "check_elements", None)  # a foundation potential's
    if check_elements is not None:
        check_elements(as_crystal(unit))  # DataError naming the elements outside the potential
    timings = {}
    relax_report = None
    if relax:
        t0 = time.perf_counter()
        unit, relax_report = relax_structure(unit, calc, relax_cell=relax_cell, fmax=relax_fmax)
        timings["relax"] = time.perf_counter() - t0
        if relax_report["spacegroup_before"] != relax_report["spacegroup_after"]:
            warn(f"relaxation changed the space group: {relax_report['spacegroup_before']} -> "
                 f"{relax_report['spacegroup_after']}")
        if not relax_report["converged"]:
            warn(f"relaxation did not converge to fmax={relax_fmax} eV/A in {relax_report['steps']} steps "
                 f"(max force {relax_report['max_force_after']:.2e} eV/A)")

    cell = _to_phonopy(unit)
    phonon = Phonopy(cell, supercell_matrix=smat, primitive_matrix=primitive_matrix_of(cell, symprec), symprec=symprec,
                     log_level=0)
    phonon.generate_displacements(distance=distance)
    t0 = time.perf_counter()
    forces, residual = _forces(phonon, calc, progress, subtract_residual=True)
    timings["forces"] = time.perf_counter() - t0
    if residual > 0.05:
        warn(f"forces on the undisplaced supercell reach {residual:.3f} eV/A (subtracted); the structure is not at "
             f"a minimum of the potential: consider --relax")
    phonon.forces = np.asarray(forces)
    phonon.produce_force_constants()
    phonon.symmetrize_force_constants(show_drift=False)

    t0 = time.perf_counter()
    nac = attach_nac(phonon, workflow.resolve_model(model))
    timings["nac"] = time.perf_counter() - t0
    eps_max = float(np.linalg.eigvalsh(nac.dielectric).max())
    if eps_max > metal_epsilon:
        warn(f"predicted eps_inf reaches {eps_max:.1f} (> {metal_epsilon:g}): the crystal looks metallic or "
             f"nearly so, where the non-analytic correction (LO-TO splitting, IR intensities, eps_0) is meaningless")

    t0 = time.perf_counter()
    nac_params = phonon.nac_params
    gamma = gamma_analysis(phonon, nac_params, directions=directions)
    bands = {"no NAC": band_structure(phonon, None, npoints), "predicted NAC": band_structure(phonon, nac_params,
                                                                                              npoints)}
    phonon.run_mesh(mesh, is_gamma_center=True)
    mesh_q = np.asarray(phonon.mesh.qpoints)
    mesh_f = np.asarray(phonon.mesh.frequencies) * thz_to_cm()
    phonon.run_total_dos()
    dos = {"frequency_cm": np.asarray(phonon.total_dos.frequency_points) * thz_to_cm(),
           "dos": np.asarray(phonon.total_dos.dos) / thz_to_cm()}
    timings["analysis"] = time.perf_counter() - t0
    unit_supercell = n_super == len(unit)
    if unit_supercell:
        warn("the supercell is the unit cell: the Gamma-point results (Gamma modes, LO/TO, IR, eps_0) equal a large "
             "supercell's up to finite-difference error, but the bands, the DOS and modes away from Gamma are "
             "not converged (not scanned for imaginary modes)")
    imaginary = [] if unit_supercell else _imaginary(bands["predicted NAC"], mesh_q, mesh_f, imaginary_tol)
    optical_gamma = gamma.frequencies_cm[~gamma.acoustic]
    if optical_gamma.min() < -imaginary_tol:
        imaginary.insert(0, {"q": [0.0, 0.0, 0.0], "frequency_cm": round(float(optical_gamma.min()), 2),
                             "where": "Gamma (optical)"})
    if imaginary:
        shown = "; ".join(f"q={i['q']} {i['frequency_cm']:.1f} cm^-1" for i in imaginary[:5])
        warn(f"{len(imaginary)} q-point(s) with imaginary modes (shown negative), lowest: {shown}"
             + ("" if relax else "; the structure may not be at a minimum of the potential: try --relax"))
    result = PhononsResult(formula=_formula(unit.get_chemical_symbols()), gamma=gamma, nac=nac,
                           supercell_matrix=smat, n_supercell=n_super, n_displacements=len(forces),
                           residual_force_max=residual, bands=bands, dos=dos, imaginary=imaginary,
                           relax=relax_report, warnings=notes, timings={k: round(v, 3) for k, v in timings.items()},
                           potential=potential)
    return phonon, result
