"""Conversion of in-memory ase / pymatgen / phonopy objects into :class:`Crystal`.

Shapes and units follow :mod:`tensorprop.data.records`: positions and cell in Angstrom,
``born_charges`` (n_atoms, 3, 3) in e with Z[i, a, b] = dP_a/du_(i,b), ``epsilon`` (3, 3).
Every converted crystal passes :func:`~tensorprop.data.validate.check_crystal`.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from tensorprop.data.records import Crystal
from tensorprop.data.validate import MIN_DISTANCE, check_crystal
from tensorprop.errors import DataError

__all__ = [
    "BORN_KEYS",
    "EPSILON_KEYS",
    "atoms_to_crystal",
    "from_ase",
    "from_pymatgen",
    "from_phonopy_atoms",
    "to_phonopy_atoms",
    "as_crystal",
]

#: per-atom keys tried, in order, for Born effective charges in ext-xyz files
BORN_KEYS = ("becs", "born_charges", "born")
#: per-frame keys tried, in order, for the electronic dielectric tensor in ext-xyz files
EPSILON_KEYS = ("eps", "epsilon", "dielectric")


def _where(source: str, index: int | None) -> str:
    return source if index is None else f"{source}#{index}"


def _as_float_array(value, what: str, source: str, index: int | None) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(source, f"{what} is not numeric ({type(value).__name__}): {exc}", index) from None
    return arr


def _born_array(value, key: str, n_atoms: int, source: str, index: int | None) -> np.ndarray:
    """Per-atom Born charges given as (n, 9) or (n, 3, 3) -> (n, 3, 3); row-major 3x3."""
    arr = _as_float_array(value, f"Born charges '{key}'", source, index)
    if arr.ndim == 0 or arr.shape[0] != n_atoms:
        raise DataError(source, f"Born charges '{key}' have shape {arr.shape}, expected ({n_atoms}, 9)", index)
    per_atom = int(np.prod(arr.shape[1:])) if arr.ndim > 1 else 1
    if per_atom != 9:
        raise DataError(source, f"Born charges '{key}' must have 9 numbers per atom, found {per_atom}", index)
    return arr.reshape(n_atoms, 3, 3)


def _epsilon_array(value, key: str, source: str, index: int | None) -> np.ndarray:
    """Dielectric tensor given as 9 numbers (row-major) or (3, 3) -> (3, 3)."""
    if isinstance(value, str):
        try:
            value = [float(x) for x in value.replace(",", " ").split()]
        except ValueError:
            raise DataError(source, f"dielectric tensor '{key}' is not numeric: {value!r:.60}", index) from None
    arr = _as_float_array(value, f"dielectric tensor '{key}'", source, index)
    if arr.size != 9:
        raise DataError(source, f"dielectric tensor '{key}' must have 9 numbers (3x3), found {arr.size}", index)
    return arr.reshape(3, 3)


def _clean_info(value: Any) -> Any:
    """numpy scalars -> Python scalars; arrays are copied."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.copy()
    return value


def atoms_to_crystal(atoms, *, source: str, index: int | None = None, label: str | None = None,
                     born_keys: Sequence[str] = BORN_KEYS, epsilon_keys: Sequence[str] = EPSILON_KEYS,
                     require_labels: bool = False, min_distance: float = MIN_DISTANCE,
                     allow_left_handed: bool = False) -> Crystal:
    """Convert one ``ase.Atoms`` (as read from a file) into a checked :class:`Crystal`.

    Born charges are looked up among the per-atom arrays and calculator results under
    ``born_keys`` (first present wins); the dielectric tensor among ``atoms.info`` and
    calculator results under ``epsilon_keys``. All other info entries, calculator
    results (energy, dipole, forces, ...) and extra per-atom arrays go to ``info``.

    Parameters
    ----------
    atoms : ase.Atoms
    source : str
        File or origin for error messages.
    index : int, optional
        Structure index for error messages and the default label ``"{source}#{index}"``.
    label : str, optional
        Label of the crystal (default from ``source``/``index``).
    born_keys, epsilon_keys : sequence of str
        Keys tried in order.
    require_labels : bool
        When True, a missing Born-charge or dielectric key raises :class:`DataError`.
    min_distance : float
        Passed on to :func:`check_crystal`, Angstrom.
    allow_left_handed : bool
        Accept a cell of negative determinant (passed on to :func:`check_crystal`).
    """
    per_atom = {k: v for k, v in atoms.arrays.items() if k not in ("numbers", "positions")}
    info = dict(atoms.info)
    calc = getattr(atoms, "calc", None)
    results = dict(getattr(calc, "results", None) or {})
    for k, v in results.items():
        if k in ("forces", "charges", "magmoms", "energies", "stresses", "born_effective_charges"):
            per_atom.setdefault(k, v)
        else:
            info.setdefault(k, v)

    born_key = next((k for k in born_keys if k in per_atom), None)
    eps_key = next((k for k in epsilon_keys if k in info), None)
    if require_labels and (born_key is None or eps_key is None):
        missing = (f"per-atom Born-charge key (tried {', '.join(map(repr, born_keys))})" if born_key is None
                   else f"per-frame dielectric key (tried {', '.join(map(repr, epsilon_keys))})")
        raise DataError(source, f"missing {missing}; the frame has per-atom keys {sorted(per_atom)} "
                                f"and per-frame keys {sorted(info)}", index)
    n = len(atoms)
    born = _born_array(per_atom.pop(born_key), born_key, n, source, index) if born_key else None
    eps = _epsilon_array(info.pop(eps_key), eps_key, source, index) if eps_key else None
    for k, v in per_atom.items():
        info.setdefault(k, v)
    try:
        numbers = np.asarray(atoms.numbers, dtype=np.int64)
        positions = np.asarray(atoms.positions, dtype=np.float64)
        cell = np.asarray(atoms.cell[:], dtype=np.float64)
        pbc = np.asarray(atoms.pbc, dtype=bool)
    except Exception as exc:
        raise DataError(source, f"invalid atoms object: {exc}", index) from None
    crystal = Crystal(numbers=numbers, positions=positions, cell=cell, pbc=pbc, born_charges=born,
                      epsilon=eps, label=label if label is not None else _where(source, index),
                      info={k: _clean_info(v) for k, v in info.items()})
    check_crystal(crystal, source, index, min_distance=min_distance, allow_left_handed=allow_left_handed)
    return crystal


def from_ase(atoms, *, source: str = "<ase.Atoms>", index: int | None = None,
             min_distance: float = MIN_DISTANCE, allow_left_handed: bool = False) -> Crystal:
    """Convert an ``ase.Atoms`` into a :class:`Crystal`.

    Born charges (n_atoms, 3, 3) or (n_atoms, 9), e, are taken from
    ``atoms.arrays["born_charges"]`` or ``["becs"]``; the dielectric tensor (3, 3) or (9,)
    from ``atoms.info["epsilon"]`` or ``["eps"]``, when present. Other info goes to ``info``.
    """
    return atoms_to_crystal(atoms, source=source, index=index, born_keys=("born_charges", "becs",
                            "born_effective_charges"), epsilon_keys=("epsilon", "eps", "dielectric_tensor"),
                            require_labels=False, min_distance=min_distance, allow_left_handed=allow_left_handed)


def from_pymatgen(structure, *, source: str = "<pymatgen>", index: int | None = None,
                  born_charges=None, epsilon=None, label: str | None = None, info: dict | None = None,
                  min_distance: float = MIN_DISTANCE, allow_left_handed: bool = False) -> Crystal:
    """Convert a pymatgen ``Structure`` (periodic) or ``Molecule`` into a :class:`Crystal`.

    Parameters
    ----------
    structure : pymatgen.core.Structure or pymatgen.core.Molecule
        Must be ordered (one element of occupancy 1 per site).
    born_charges : (n_atoms, 3, 3) array_like, optional
        Born effective charges, e.
    epsilon : (3, 3) array_like, optional
        Electronic dielectric tensor.
    label : str, optional
        Default ``"{source}#{index}"`` (or ``source``).
    info : dict, optional
        Extra metadata.
    """
    try:
        if not structure.is_ordered:
            bad = next(i for i, s in enumerate(structure) if not s.is_ordered)
            raise DataError(source, f"site {bad} is disordered or partially occupied "
                                    f"({structure[bad].species}); only ordered structures are supported", index)
        numbers = [site.specie.Z for site in structure]
        positions = np.asarray(structure.cart_coords, dtype=np.float64).reshape(-1, 3)
        lattice = getattr(structure, "lattice", None)
        if lattice is None:
            cell, pbc = np.zeros((3, 3)), np.zeros(3, dtype=bool)
        else:
            cell, pbc = np.asarray(lattice.matrix, dtype=np.float64), np.asarray(lattice.pbc, dtype=bool)
    except DataError:
        raise
    except Exception as exc:
        raise DataError(source, f"cannot convert pymatgen object: {exc}", index) from None
    n = len(numbers)
    born = _born_array(born_charges, "born_charges", n, source, index) if born_charges is not None else None
    eps = _epsilon_array(epsilon, "epsilon", source, index) if epsilon is not None else None
    crystal = Crystal(numbers=numbers, positions=positions, cell=cell, pbc=pbc, born_charges=born, epsilon=eps,
                      label=label if label is not None else _where(source, index), info=dict(info or {}))
    check_crystal(crystal, source, index, min_distance=min_distance, allow_left_handed=allow_left_handed)
    return crystal


def to_phonopy_atoms(crystal: Crystal):
    """A ``phonopy.structure.atoms.PhonopyAtoms`` of a 3-D periodic crystal (cell rows, Angstrom)."""
    from phonopy.structure.atoms import PhonopyAtoms

    if not crystal.pbc.all():
        raise DataError(crystal.label or "<Crystal>", "phonopy needs a crystal periodic in all 3 directions")
    scaled = np.linalg.solve(crystal.cell.T, crystal.positions.T).T
    return PhonopyAtoms(numbers=crystal.numbers.tolist(), cell=crystal.cell, scaled_positions=scaled)


def from_phonopy_atoms(atoms, *, source: str = "<PhonopyAtoms>", index: int | None = None,
                       allow_left_handed: bool = False) -> Crystal:
    """Convert a ``PhonopyAtoms`` (e.g. phonopy's primitive cell) into a :class:`Crystal`."""
    crystal = Crystal(numbers=np.asarray(atoms.numbers), positions=np.asarray(atoms.positions),
                      cell=np.asarray(atoms.cell), pbc=True, label=_where(source, index))
    check_crystal(crystal, source, index, allow_left_handed=allow_left_handed)
    return crystal


def as_crystal(obj, *, allow_left_handed: bool = False) -> Crystal:
    """Return ``obj`` as a :class:`Crystal`.

    Accepts a :class:`Crystal` (returned unchanged), an ``ase.Atoms``, a pymatgen
    ``Structure``/``Molecule`` or a phonopy ``PhonopyAtoms``. ``allow_left_handed``: accept a
    cell of negative determinant (a mirror image), as ``predict`` does.

    Raises
    ------
    TypeError
        For any other type (file paths must go through ``read_structure``).
    """
    if isinstance(obj, Crystal):
        return obj
    import ase

    if isinstance(obj, ase.Atoms):
        return from_ase(obj, allow_left_handed=allow_left_handed)
    from pymatgen.core.structure import IMolecule, IStructure

    if isinstance(obj, (IStructure, IMolecule)):
        return from_pymatgen(obj, allow_left_handed=allow_left_handed)
    from phonopy.structure.atoms import PhonopyAtoms

    if isinstance(obj, PhonopyAtoms):
        return from_phonopy_atoms(obj, allow_left_handed=allow_left_handed)
    hint = " (use tensorprop.data.readers.read_structure for a file path)" if isinstance(obj, (str, bytes)) or \
        hasattr(obj, "__fspath__") else ""
    raise TypeError(f"cannot convert {type(obj).__module__}.{type(obj).__qualname__} to a Crystal: expected a "
                    f"tensorprop Crystal, ase.Atoms, pymatgen Structure/Molecule or PhonopyAtoms{hint}")
