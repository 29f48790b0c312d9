"""ESP and dipole reference data from PySCF SCF densities (``tensorprop data esp``).

For every conformer: an SCF calculation (HF or a DFT functional, any basis PySCF knows),
the electrostatic potential of nuclei + electron density on points of shells around the
van der Waals surface, the dipole about the centroid of the atoms, and the energy.
Units: Angstrom, e, e*Angstrom, eV, ESP in Hartree/e (see ``data/molecules.py``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..data.molecules import Molecule
from ..errors import TensorpropError
from ..physics.electrostatics import BOHR
from .geometries import conformer_jobs

__all__ = ["BONDI_RADII", "vdw_shell_points", "scf", "esp_reference", "generate_esp_dataset", "HARTREE_EV"]

HARTREE_EV = 27.211386245988
BONDI_RADII = {1: 1.20, 5: 1.92, 6: 1.70, 7: 1.55, 8: 1.52, 9: 1.47, 14: 2.10, 15: 1.80, 16: 1.80, 17: 1.75,
               35: 1.85, 53: 1.98}  # Angstrom (Bondi 1964; H 1.20)


def _fibonacci_sphere(n: int) -> np.ndarray:
    """n nearly uniform unit vectors (n, 3)."""
    k = np.arange(n) + 0.5
    z = 1.0 - 2.0 * k / n
    phi = np.pi * (1.0 + 5.0 ** 0.5) * k
    r = np.sqrt(1.0 - z * z)
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=-1)


def vdw_shell_points(numbers, positions, scales: Sequence[float] = (1.4, 1.6, 1.8, 2.0),
                     density: float = 0.5) -> np.ndarray:
    """Points (P, 3) Angstrom on shells at ``scale * r_vdW`` around every atom, about ``density``
    points per Angstrom^2, keeping only points outside every atom's shell of the same scale
    (the Merz-Kollman construction)."""
    numbers, positions = np.asarray(numbers), np.asarray(positions, float)
    missing = sorted({int(z) for z in numbers} - set(BONDI_RADII))
    if missing:
        raise TensorpropError(f"no van der Waals radius for atomic numbers {missing}")
    radii = np.array([BONDI_RADII[int(z)] for z in numbers])
    out = []
    for s in scales:
        for a in range(len(numbers)):
            r = s * radii[a]
            pts = positions[a] + r * _fibonacci_sphere(max(int(np.ceil(density * 4 * np.pi * r * r)), 8))
            d = np.linalg.norm(pts[:, None] - positions[None], axis=-1)  # [p, n]
            out.append(pts[np.all(d >= s * radii[None] - 1e-9, axis=1)])
    return np.concatenate(out)


def scf(numbers, positions, *, method: str = "HF", basis: str = "def2-svp", charge: int = 0, conv_tol: float = 1e-10):
    """A converged PySCF mean-field object (RHF, or RKS with ``method`` as the functional)."""
    from pyscf import dft, gto, scf as pyscf_scf

    mol = gto.M(atom=[(int(z), tuple(x)) for z, x in zip(numbers, positions)], basis=basis, unit="Angstrom",
                charge=charge, spin=0, verbose=0)
    mf = pyscf_scf.RHF(mol) if method.upper() == "HF" else dft.RKS(mol, xc=method)
    mf.conv_tol = conv_tol
    mf.kernel()
    if not mf.converged:
        raise TensorpropError(f"SCF ({method}/{basis}) did not converge for the geometry {np.round(positions, 4).tolist()}")
    return mf


def esp_reference(mf, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ESP (P,) Hartree/e at ``points`` (P, 3) Angstrom, dipole (3,) e*Angstrom about the centroid of atoms).

    ESP = sum_A Z_A / |p - R_A| - integral rho(r) / |p - r| dr, in atomic units.
    """
    mol = mf.mol
    dm = mf.make_rdm1()
    pts = np.asarray(points, float) / BOHR  # bohr
    coords = mol.atom_coords()  # bohr
    z = mol.atom_charges().astype(float)
    nuclear = (z[None] / np.linalg.norm(pts[:, None] - coords[None], axis=-1)).sum(axis=1)
    electronic = np.concatenate([np.einsum("pij,ij->p", mol.intor("int1e_grids", grids=chunk), dm)
                                 for chunk in np.array_split(pts, max(1, len(pts) // 512))])
    centroid = coords.mean(axis=0)
    with mol.with_common_orig(centroid):
        r_ints = mol.intor_symmetric("int1e_r", comp=3)
    dipole = (z[:, None] * (coords - centroid)).sum(axis=0) - np.einsum("xij,ji->x", r_ints, dm)
    return nuclear - electronic, dipole * BOHR


def generate_esp_dataset(molecules: Sequence[str], n_conformers: int, *, method: str = "HF",
                         basis: str = "def2-svp", sigma: float = 0.05, seed: int = 0, density: float = 0.5,
                         scales: Sequence[float] = (1.4, 1.6, 1.8, 2.0), progress: bool = False) -> list[Molecule]:
    """Distorted conformers of each named molecule with SCF ESP, dipole and energy labels."""
    jobs = conformer_jobs(molecules, n_conformers, sigma, seed, desc=f"SCF {method}/{basis}", progress=progress)
    out = []
    for name, i, numbers, x in jobs:
        mf = scf(numbers, x, method=method, basis=basis)
        points = vdw_shell_points(numbers, x, scales, density)
        values, dipole = esp_reference(mf, points)
        out.append(Molecule(numbers=numbers, positions=x, charge=0.0, dipole=dipole, esp_points=points, esp=values,
                            energy=float(mf.e_tot) * HARTREE_EV, label=f"{name}#{i}",
                            info={"molecule": name, "method": method, "basis": basis}))
    return out
