"""SCF energies, forces and dipoles of molecules in a finite uniform electric field (PySCF).

The field F enters the Hamiltonian as the potential energy of the charges in it: +F.r for each
electron (a one-electron term added to the core Hamiltonian) and -Z_A F.R_A for each nucleus. Both
terms depend on the nuclear positions, so both enter the forces: the nuclear one directly, the
electronic one through the derivative of <mu|r|nu> with respect to the basis-function centres
(the part that is easy to miss). Reference Born charges are finite differences of the forces with
respect to the field, Z*_(A,a,b) = d f_(A,b) / dF_a.

Units in and out: Angstrom, V/Angstrom, eV, eV/Angstrom, e*Angstrom, e.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..data.records import Crystal
from ..data.splits import make_split
from ..errors import TensorpropError
from ..physics.electrostatics import BOHR
from .esp import HARTREE_EV
from .geometries import conformer_jobs

__all__ = ["AU_FIELD_V_PER_A", "field_scf", "field_born_charges", "generate_field_dataset"]

AU_FIELD_V_PER_A = HARTREE_EV / BOHR  # 1 atomic unit of field = 51.422 V/Angstrom


def field_scf(numbers, positions, field, *, method: str = "HF", basis: str = "def2-svp",
              conv_tol: float = 1e-11) -> dict:
    """SCF in a uniform field ``field`` (3,) V/A -> energy (eV), forces (n, 3) eV/A, dipole (3,) e*A.

    The dipole is -dE/dF, the density's dipole about the origin plus the nuclei's; for a neutral
    molecule it does not depend on the origin.
    """
    from pyscf import dft, gto, scf

    mol = gto.M(atom=[(int(z), tuple(x)) for z, x in zip(numbers, positions)], basis=basis, unit="Angstrom",
                verbose=0)
    f = np.asarray(field, float) / AU_FIELD_V_PER_A  # atomic units
    charges = mol.atom_charges().astype(float)
    coords = mol.atom_coords()  # bohr
    mf = scf.RHF(mol) if method.upper() == "HF" else dft.RKS(mol, xc=method)
    mf.conv_tol = conv_tol
    with mol.with_common_orig((0.0, 0.0, 0.0)):
        r_ints = mol.intor_symmetric("int1e_r", comp=3)
    h_field = mf.get_hcore() + np.einsum("x,xij->ij", f, r_ints)
    e_nuc = mol.energy_nuc() - float(f @ (charges[:, None] * coords).sum(0))
    mf.get_hcore = lambda *args: h_field
    mf.energy_nuc = lambda *args: e_nuc
    mf.kernel()
    if not mf.converged:
        raise TensorpropError(f"SCF ({method}/{basis}) in field {field} V/A did not converge")
    dm = mf.make_rdm1()

    grad = mf.nuc_grad_method()
    base_hcore = grad.get_hcore
    nao = mol.nao
    overlap = mol.intor("int1e_ovlp")
    r_nabla = mol.intor("int1e_irp", comp=9).reshape(3, 3, nao, nao)  # <mu| r_x d_j |nu>

    def get_hcore(mol_=None):
        # PySCF's convention: -<d_j mu| h |nu>; for h = F.r, <d_j mu|r_x|nu> = -delta_jx S - <mu|r_x d_j nu>
        return base_hcore(mol_) + f[:, None, None] * overlap[None] + np.einsum("x,xjmn->jmn", f, r_nabla)

    grad.get_hcore = get_hcore
    g = grad.kernel() - charges[:, None] * f[None, :]  # nuclei in the field: d(-Z_A F.R_A)/dR_A
    dipole = (charges[:, None] * coords).sum(0) - np.einsum("xij,ji->x", r_ints, dm)
    return {"energy": float(mf.e_tot) * HARTREE_EV, "forces": -g * HARTREE_EV / BOHR, "dipole": dipole * BOHR}


def field_born_charges(numbers, positions, *, step: float = 0.05, **kwargs) -> np.ndarray:
    """Z*_(A,a,b) = d f_(A,b)/dF_a (e) by central differences of the forces, field step in V/A."""
    out = np.zeros((len(numbers), 3, 3))
    for a in range(3):
        e = np.zeros(3)
        e[a] = step
        plus = field_scf(numbers, positions, e, **kwargs)["forces"]
        minus = field_scf(numbers, positions, -e, **kwargs)["forces"]
        out[:, a, :] = (plus - minus) / (2 * step)
    return out


def generate_field_dataset(molecules: Sequence[str], n_conformers: int, *, max_field: float = 0.5,
                           method: str = "HF", basis: str = "def2-svp", sigma: float = 0.05, seed: int = 0,
                           n_born: int = 0, born_on_test_split: bool = False,
                           progress: bool = False) -> list[Crystal]:
    """Distorted conformers in random uniform fields (|F| <= max_field V/A, direction uniform), each a
    non-periodic :class:`Crystal` with ``info``: energy (eV), forces (n, 3) eV/A, dipole (3,) e*A,
    field (3,) V/A. Reference Born charges (zero field, finite differences of forces: six more SCFs
    each) go to the first ``n_born`` conformers of each molecule or, with ``born_on_test_split``, to the
    conformers of the seeded 80/10/10 test split that ``fit`` holds out of such a file (``make_split``),
    all that a model trained without Z* labels is checked on."""
    rng = np.random.default_rng([seed, 17])
    jobs = conformer_jobs(molecules, n_conformers, sigma, seed, desc=f"SCF in field {method}/{basis}", progress=progress)
    wanted = set(make_split(len(jobs))["test"]) if born_on_test_split else None
    out = []
    for k, (name, i, numbers, x) in enumerate(jobs):
        direction = rng.normal(size=3)
        field = direction / np.linalg.norm(direction) * max_field * rng.uniform() ** (1 / 3)
        res = field_scf(numbers, x, field, method=method, basis=basis)
        with_born = i < n_born if wanted is None else k in wanted
        born = field_born_charges(numbers, x, method=method, basis=basis) if with_born else None
        out.append(Crystal(numbers=numbers, positions=x, cell=np.zeros((3, 3)), pbc=False, born_charges=born,
                           label=f"{name}#{i}", info={"energy": res["energy"], "forces": res["forces"],
                                                      "dipole": res["dipole"], "field": field, "molecule": name,
                                                      "method": method, "basis": basis}))
    return out
