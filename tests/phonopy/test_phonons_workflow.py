"""tensorprop.phonopy.phonons on rock salt with a spring calculator (analytic phonons) and a per-species charge model."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from ase.build import bulk

from tensorprop.phonopy.phonons import SupercellBudgetError, phonons, supercell_for_length
from tensorprop.phonopy.phonons_output import SUMMARY_NAME, write_phonons
from tensorprop.physics.infrared import EPS_ION_PREFACTOR
from tests.phonopy.pair_potential import rocksalt_springs

A = 5.64  # rock-salt lattice constant of the springs' rest lengths, Angstrom
K1 = 2.0  # cation-anion spring, eV/A^2
Z_NA = 1.1
EPS = 2.4
VASP_TO_THZ = 15.633302  # sqrt(eV/A^2/amu) -> THz (phonopy's factor)


class SpeciesModel:
    """A stand-in for a trained model: Z* = +-z I by species and one isotropic eps_inf."""

    def __init__(self, z=Z_NA, eps=EPS):
        self.z, self.eps = z, eps

    def predict(self, structure):
        from tensorprop.data.convert import as_crystal

        numbers = as_crystal(structure).numbers
        born = np.array([(self.z if n == 11 else -self.z) * np.eye(3) for n in numbers])
        return {"born_charges": born, "epsilon": self.eps * np.eye(3)}


@pytest.fixture(scope="module")
def rocksalt():
    atoms = bulk("NaCl", "rocksalt", a=A)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean run warns about nothing
        phonon, result = phonons(atoms, calculator=rocksalt_springs(A, k1=K1), model=SpeciesModel(),
                                 supercell=[2, 2, 2], progress=False, mesh=[8, 8, 8], npoints=21)
    return atoms, phonon, result


def test_rocksalt_springs_give_the_analytic_to_lo_and_eps0(rocksalt):
    atoms, phonon, result = rocksalt
    g = result.gamma
    assert result.n_supercell == 16 and result.n_displacements == 2
    assert phonon.force_constants is not None and phonon.nac_params is not None
    masses = atoms.get_masses()
    mu = masses[0] * masses[1] / masses.sum()
    nu_to = np.sqrt(2 * K1 / mu) * VASP_TO_THZ  # two springs along the displacement
    optical = ~g.acoustic
    assert np.allclose(g.frequencies_thz[optical], nu_to, rtol=1e-4)
    assert list(np.array(g.irreps)[optical]) == ["T1u"] * 3 and g.ir_active[optical].all()
    volume = atoms.get_volume()
    eps0 = EPS + EPS_ION_PREFACTOR / volume * Z_NA ** 2 / mu / nu_to ** 2
    assert np.allclose(g.eps_0, eps0 * np.eye(3), rtol=1e-4)
    for name, lo in g.lo_cm.items():  # LST: one LO per direction
        assert lo.max() / g.frequencies_cm.max() == pytest.approx(np.sqrt(eps0 / EPS), rel=1e-4), name
    assert result.imaginary == [] and result.warnings == []
    assert result.residual_force_max < 1e-10
    assert set(result.bands) == {"no NAC", "predicted NAC"}
    assert result.dos["dos"].max() > 0


def test_written_phonopy_params_reload_with_identical_frequencies(rocksalt, tmp_path):
    import phonopy

    _, phonon, result = rocksalt
    summary = write_phonons(phonon, result, tmp_path / "out", ir_width=8.0)
    out = tmp_path / "out"
    for name in ("phonopy_params.yaml", "BORN", "bands.png", "dos.png", "gamma_modes.csv", "gamma_modes.txt",
                 "ir_spectrum.csv", "ir_spectrum.png", SUMMARY_NAME):
        assert (out / name).stat().st_size > 0, name
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left
    assert json.loads((out / SUMMARY_NAME).read_text())["gamma"]["eps_0"] == summary["gamma"]["eps_0"]
    loaded = phonopy.load(out / "phonopy_params.yaml", log_level=0)
    assert loaded.nac_params is not None
    qpoints = [[0.1, 0.2, 0.3], [0.5, 0.0, 0.5], [0.0, 0.0, 0.0]]
    for ph in (phonon, loaded):
        ph.run_qpoints(qpoints, nac_q_direction=[1, 0, 0])
    # THz; the yaml stores the force constants as decimal text
    np.testing.assert_allclose(loaded.qpoints.frequencies, phonon.qpoints.frequencies, rtol=1e-7, atol=1e-5)
    # a second write replaces the first result; a foreign folder is refused
    write_phonons(phonon, result, out, ir_width=12.0)
    assert json.loads((out / SUMMARY_NAME).read_text())["ir_width_cm"] == 12.0
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(Exception, match="not empty"):
        write_phonons(phonon, result, other)
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]


def test_relax_cell_keeps_the_space_group_and_reports_the_change():
    atoms = bulk("NaCl", "rocksalt", a=0.98 * A)
    kwargs = dict(calculator=rocksalt_springs(A), model=SpeciesModel(), supercell=[2, 2, 2], progress=False,
                  mesh=[4, 4, 4], npoints=5)
    _, strained = phonons(atoms, **kwargs)  # compressed springs (no force on any atom: only stress)
    _, result = phonons(atoms, relax=True, relax_cell=True, **kwargs)
    r = result.relax
    assert r["spacegroup_before"] == r["spacegroup_after"] == "Fm-3m (225)"
    assert r["converged"]
    assert r["volume_change_percent"] == pytest.approx(100 * (1 / 0.98 ** 3 - 1), rel=1e-3)
    assert result.residual_force_max < 1e-3
    to_relaxed = result.gamma.frequencies_cm.max()
    _, reference = phonons(bulk("NaCl", "rocksalt", a=A), **kwargs)
    assert to_relaxed == pytest.approx(reference.gamma.frequencies_cm.max(), rel=1e-4)
    assert abs(strained.gamma.frequencies_cm.max() / to_relaxed - 1.0) > 0.01


def test_bad_input_budget_metal_and_imaginary_modes():
    atoms = bulk("NaCl", "rocksalt", a=A)
    with pytest.raises(SupercellBudgetError, match=r"has 2000 atoms, above the budget of 400.*max-atoms"):
        phonons(atoms, calculator=rocksalt_springs(A), model=SpeciesModel(), supercell=[10, 10, 10])
    with pytest.warns(UserWarning, match="metallic or nearly so"), pytest.warns(UserWarning, match="is the unit cell"):
        phonons(atoms, calculator=rocksalt_springs(A), model=SpeciesModel(eps=80.0), supercell=[1, 1, 1],
                progress=False, mesh=[4, 4, 4], npoints=5)
    with pytest.warns(UserWarning, match=r"imaginary modes.*q=\["):
        _, result = phonons(atoms, calculator=rocksalt_springs(A, k2=-0.8), model=SpeciesModel(),
                            supercell=[2, 2, 2], progress=False, mesh=[4, 4, 4], npoints=5)
    assert result.imaginary and all(item["frequency_cm"] < -3.0 for item in result.imaginary)


def test_supercell_for_length_uses_plane_spacings():
    cubic = np.eye(3) * 5.0
    assert np.diag(supercell_for_length(cubic, 10.0)).tolist() == [2, 2, 2]
    fcc = bulk("NaCl", "rocksalt", a=A).cell  # plane spacing a/sqrt(3)
    assert np.diag(supercell_for_length(fcc, 10.0)).tolist() == [int(np.ceil(10.0 / (A / np.sqrt(3))))] * 3


def test_conventional_cell_unit_supercell_gives_the_primitive_gamma_modes(rocksalt):
    """The 8-atom cubic cell as a 1x1x1 supercell: primitive matrix found and passed explicitly (no phonopy
    4 "auto" notice; the one warning says the bands are not converged), and its Gamma modes (periodic images displaced together, a q=0 perturbation) equal the
    2x2x2 supercell's."""
    _, _, reference = rocksalt
    cubic = bulk("NaCl", "rocksalt", a=A, cubic=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        phonon, result = phonons(cubic, calculator=rocksalt_springs(A, k1=K1), model=SpeciesModel(),
                                 supercell=[1, 1, 1], progress=False, mesh=[4, 4, 4], npoints=5)
    assert [str(w.message)[:37] for w in caught] == ["the supercell is the unit cell: the G"]
    assert result.warnings == [str(caught[0].message)] and result.imaginary == []
    assert len(phonon.primitive) == 2 and result.n_supercell == 8
    assert np.allclose(np.linalg.det(phonon.primitive_matrix), 0.25)
    assert np.allclose(result.gamma.frequencies_cm, reference.gamma.frequencies_cm, atol=1e-3)
    assert np.allclose(result.gamma.eps_0, reference.gamma.eps_0, rtol=1e-5)
