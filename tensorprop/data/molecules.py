"""Molecules with electrostatic labels (ESP on grid points, dipole) and their data files.

A molecular electrostatics set is one ``.npz`` file (written by ``tensorprop data esp``)::

    __meta__      JSON: format "tensorprop-esp", version 1, units, method, basis, molecule names
    numbers       (total_atoms,) int      atomic numbers of all molecules, concatenated
    positions     (total_atoms, 3)        Angstrom
    n_atoms       (M,) int                atoms per molecule
    charge        (M,)                    net charge, e
    dipole        (M, 3)                  e*Angstrom (about the centroid of atoms; neutral: any origin)
    energy        (M,)                    SCF energy, eV
    esp_points    (total_points, 3)       Angstrom
    esp           (total_points,)         Hartree/e
    n_points      (M,) int                ESP points per molecule
    labels        (M,) str

Ext-xyz files with a per-frame ``dipole`` (e*Angstrom), such as water-dipoles, are read too.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import CheckpointError, DataError
from ..model_file import atomic_savez, read_npz_with_header
from .readers import read_extxyz
from .records import Crystal
from .registry import REGISTRY, load_dataset

__all__ = ["Molecule", "read_molecules", "write_esp_dataset", "molecules_from_crystals", "load_molecules",
           "ESP_FORMAT", "ESP_UNITS"]

ESP_FORMAT = {"format": "tensorprop-esp", "version": 1}
ESP_UNITS = {"positions": "Angstrom", "charge": "e", "dipole": "e*Angstrom", "energy": "eV",
             "esp_points": "Angstrom", "esp": "Hartree/e"}


@dataclasses.dataclass(frozen=True, eq=False)
class Molecule:
    """One molecule with optional electrostatic labels.

    numbers (n,) int; positions (n, 3) Angstrom; charge float e; dipole (3,) e*Angstrom or
    None; esp_points (P, 3) Angstrom and esp (P,) Hartree/e, or None; energy eV or None;
    label str; info dict.
    """

    numbers: np.ndarray
    positions: np.ndarray
    charge: float = 0.0
    dipole: np.ndarray | None = None
    esp_points: np.ndarray | None = None
    esp: np.ndarray | None = None
    energy: float | None = None
    label: str = ""
    info: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "numbers", np.asarray(self.numbers, dtype=np.int64).reshape(-1))
        set_(self, "positions", np.asarray(self.positions, dtype=np.float64).reshape(-1, 3))
        set_(self, "charge", float(self.charge))
        if self.dipole is not None:
            set_(self, "dipole", np.asarray(self.dipole, dtype=np.float64).reshape(3))
        if (self.esp_points is None) != (self.esp is None):
            raise DataError(self.label or "<molecule>", "esp_points and esp must be given together")
        if self.esp is not None:
            set_(self, "esp_points", np.asarray(self.esp_points, dtype=np.float64).reshape(-1, 3))
            set_(self, "esp", np.asarray(self.esp, dtype=np.float64).reshape(-1))
            if len(self.esp) != len(self.esp_points):
                raise DataError(self.label or "<molecule>",
                                f"{len(self.esp_points)} ESP points but {len(self.esp)} ESP values")

    @property
    def n_atoms(self) -> int:
        return len(self.numbers)

    @property
    def n_points(self) -> int:
        return 0 if self.esp is None else len(self.esp)

    @property
    def formula(self) -> str:
        from ase.data import chemical_symbols
        from ase.formula import Formula

        return Formula("".join(chemical_symbols[z] for z in self.numbers)).format("hill")

    def replace(self, **changes) -> "Molecule":
        return dataclasses.replace(self, **changes)

    def rotated(self, rotation: np.ndarray) -> "Molecule":
        """The molecule and its labels rotated by ``rotation`` (3, 3), ``x -> R x`` (proper or improper:
        the dipole is a polar vector, the ESP a scalar)."""
        r = np.asarray(rotation, dtype=np.float64)
        return self.replace(
            positions=self.positions @ r.T,
            dipole=None if self.dipole is None else r @ self.dipole,
            esp_points=None if self.esp is None else self.esp_points @ r.T)

    def as_crystal(self):
        """The molecule as a non-periodic :class:`~tensorprop.data.records.Crystal` (for graphs)."""

        return Crystal(numbers=self.numbers, positions=self.positions, cell=np.zeros((3, 3)), pbc=False,
                       label=self.label)


def _check(m: Molecule, source: str, index: int) -> Molecule:
    def bad(problem):
        return DataError(source, problem, index)

    if m.n_atoms == 0:
        raise bad("molecule has no atoms")
    if np.any(m.numbers < 1) or np.any(m.numbers > 118):
        raise bad(f"atomic numbers must be 1..118, got {m.numbers.tolist()}")
    for name in ("positions", "dipole", "esp_points", "esp"):
        value = getattr(m, name)
        if value is not None and not np.all(np.isfinite(value)):
            raise bad(f"{name} contains NaN or inf")
    if m.n_atoms > 1:
        d = np.linalg.norm(m.positions[:, None] - m.positions[None], axis=-1) + np.eye(m.n_atoms) * 1e9
        if d.min() < 0.5:
            i, j = np.unravel_index(np.argmin(d), d.shape)
            raise bad(f"atoms {i} and {j} are {d.min():.3f} A apart (< 0.5 A)")
    return m


def write_esp_dataset(path: str | Path, molecules: Sequence[Molecule], metadata: dict | None = None) -> Path:
    """Write molecules with ESP and dipole labels to one ``.npz`` file (format in the module docstring)."""

    molecules = list(molecules)
    for i, m in enumerate(molecules):
        if m.esp is None or m.dipole is None:
            raise DataError(str(path), "every molecule of an ESP set needs esp and dipole labels", i)
    meta = {**ESP_FORMAT, "units": ESP_UNITS, **(metadata or {})}
    arrays = {
        "__meta__": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
        "numbers": np.concatenate([m.numbers for m in molecules]),
        "positions": np.concatenate([m.positions for m in molecules]),
        "n_atoms": np.array([m.n_atoms for m in molecules]),
        "charge": np.array([m.charge for m in molecules]),
        "dipole": np.stack([m.dipole for m in molecules]),
        "energy": np.array([np.nan if m.energy is None else m.energy for m in molecules]),
        "esp_points": np.concatenate([m.esp_points for m in molecules]),
        "esp": np.concatenate([m.esp for m in molecules]),
        "n_points": np.array([m.n_points for m in molecules]),
        "labels": np.array([m.label for m in molecules]),
    }
    return atomic_savez(path, arrays)


def _read_esp_npz(path: Path) -> list[Molecule]:
    source = str(path)
    try:
        data, meta = read_npz_with_header(path, "ESP set")
    except CheckpointError as exc:
        raise DataError(source, str(exc).removeprefix(f"{path}: ")) from None
    if meta.get("format") != ESP_FORMAT["format"] or meta.get("version") != ESP_FORMAT["version"]:
        raise DataError(source, f"format {meta.get('format')!r} version {meta.get('version')!r}; "
                                f"this tensorprop reads {ESP_FORMAT}")
    required = ("numbers", "positions", "n_atoms", "charge", "dipole", "esp_points", "esp", "n_points")
    missing = [k for k in required if k not in data]
    if missing:
        raise DataError(source, f"missing arrays {missing}")
    n_atoms, n_points = data["n_atoms"].astype(int), data["n_points"].astype(int)
    if n_atoms.sum() != len(data["numbers"]) or n_points.sum() != len(data["esp"]):
        raise DataError(source, "n_atoms/n_points do not add up to the lengths of the concatenated arrays")
    a_off = np.concatenate([[0], np.cumsum(n_atoms)])
    p_off = np.concatenate([[0], np.cumsum(n_points)])
    labels = data.get("labels", np.array([f"{path.name}#{i}" for i in range(len(n_atoms))]))
    out = []
    for i in range(len(n_atoms)):
        a, p = slice(a_off[i], a_off[i + 1]), slice(p_off[i], p_off[i + 1])
        energy = data["energy"][i] if "energy" in data and i < len(data["energy"]) else np.nan
        energy = float(energy) if np.isfinite(energy) else None
        try:
            m = Molecule(numbers=data["numbers"][a], positions=data["positions"][a], charge=data["charge"][i],
                         dipole=data["dipole"][i], esp_points=data["esp_points"][p], esp=data["esp"][p],
                         energy=energy, label=str(labels[i]), info={"source_meta": meta})
        except (ValueError, IndexError) as exc:  # wrong widths, per-molecule arrays shorter than n_atoms
            raise DataError(source, f"inconsistent arrays ({type(exc).__name__}: {exc})", i) from None
        out.append(_check(m, source, i))
    return out


def molecules_from_crystals(crystals, source: str = "") -> list[Molecule]:
    """Non-periodic crystals with ``info["dipole"]`` (e*Angstrom), e.g. water-dipoles, as molecules."""
    out = []
    for i, c in enumerate(crystals):
        if c.pbc.any():
            raise DataError(source or c.label, "periodic structure where a molecule was expected", i)
        dip = c.info.get("dipole")
        m = Molecule(numbers=c.numbers, positions=c.positions, charge=float(c.info.get("charge", 0.0)),
                     dipole=None if dip is None else np.asarray(dip, float), energy=c.info.get("energy"),
                     label=c.label, info={k: v for k, v in c.info.items() if k not in ("dipole", "energy")})
        out.append(_check(m, source or c.label, i))
    return out


def read_molecules(path: str | Path) -> list[Molecule]:
    """Read an ESP set (``.npz``, also without its suffix: the zip content tells) or an ext-xyz file of
    molecules with ``dipole`` labels."""
    import zipfile

    path = Path(path)
    if not path.is_file():
        raise DataError(str(path), "no such file")
    if path.suffix == ".npz" or zipfile.is_zipfile(path):
        return _read_esp_npz(path)

    return molecules_from_crystals(read_extxyz(path, require_labels=False), str(path))


def load_molecules(name_or_path: str | Path) -> list[Molecule]:
    """A registered molecular data set (``water-dipoles``) or a molecule file (see :func:`read_molecules`)."""

    if str(name_or_path) in REGISTRY:
        ds = load_dataset(str(name_or_path))
        return molecules_from_crystals(ds, ds.source)
    return read_molecules(name_or_path)
