"""The PySCF reference-data generator against PySCF's own numbers (needs the qm extra)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pyscf")

from tensorprop.data.molecules import read_molecules  # noqa: E402
from tensorprop.physics.electrostatics import BOHR  # noqa: E402
from tensorprop.qm.esp import BONDI_RADII, esp_reference, generate_esp_dataset, scf, vdw_shell_points  # noqa: E402
from tensorprop.qm.geometries import distorted_conformers, reference_geometry  # noqa: E402


@pytest.fixture(scope="module")
def water_scf():
    numbers, positions = reference_geometry("water")
    return numbers, positions, scf(numbers, positions, method="HF", basis="sto-3g")


def test_dipole_matches_pyscf(water_scf):
    _, _, mf = water_scf
    _, dipole = esp_reference(mf, np.zeros((1, 3)) + 5.0)
    np.testing.assert_allclose(dipole, mf.dip_moment(unit="AU", verbose=0) * BOHR, atol=1e-6)
    assert dipole[2] < 0  # O on +z, H on -z: the dipole points from O towards the hydrogens


def test_far_field_esp_is_the_dipole_potential(water_scf):
    _, positions, mf = water_scf
    centroid = positions.mean(0)
    directions = np.array([[0, 0, 1.0], [0, 0, -1.0], [1.0, 0, 0], [0.6, 0.0, 0.8]])
    points = centroid + 60.0 * directions
    values, dipole = esp_reference(mf, points)
    ref = [np.dot(dipole, p - centroid) / np.linalg.norm(p - centroid) ** 3 * BOHR for p in points]
    np.testing.assert_allclose(values, ref, atol=2e-6)  # Hartree/e; quadrupole terms ~1/r^3


def test_near_field_esp_against_pyscf_potential_integrals(water_scf):
    """The electronic part against PySCF's 1/|r - C| operator at one point (rinv origin)."""
    numbers, positions, mf = water_scf
    point = positions[0] + np.array([0.0, 0.0, 2.2])
    mol = mf.mol
    with mol.with_rinv_origin(point / BOHR):
        electronic = np.einsum("ij,ji->", mol.intor("int1e_rinv"), mf.make_rdm1())
    nuclear = sum(z / (np.linalg.norm(point - x) / BOHR) for z, x in zip(numbers, positions))
    np.testing.assert_allclose(esp_reference(mf, point[None])[0][0], nuclear - electronic, atol=1e-8)


def test_shell_points_lie_outside_every_scaled_vdw_sphere():
    numbers, positions = reference_geometry("methanol")
    pts = vdw_shell_points(numbers, positions, scales=(1.4, 2.0), density=0.5)
    radii = np.array([BONDI_RADII[z] for z in numbers])
    d = np.linalg.norm(pts[:, None] - positions[None], axis=-1)
    assert np.all(d >= 1.4 * radii - 1e-6) and len(pts) > 100


def test_conformers_are_seeded_and_distorted():
    a = distorted_conformers("water", 3, sigma=0.05, seed=1)
    b = distorted_conformers("water", 3, sigma=0.05, seed=1)
    np.testing.assert_array_equal(np.stack(a), np.stack(b))
    assert 0.01 < np.abs(a[0] - reference_geometry("water")[1]).mean() < 0.2


def test_cli_writes_a_readable_esp_set(tmp_path):
    from tensorprop.cli import main

    out = tmp_path / "water.npz"
    assert main(["data", "esp", "--molecule", "water", "--n-conformers", "2", "--basis", "sto-3g",
                 "--out", str(out), "--no-progress"]) == 0
    molecules = read_molecules(out)
    assert len(molecules) == 2 and molecules[0].info["source_meta"]["basis"] == "sto-3g"
    direct = generate_esp_dataset(["water"], 2, basis="sto-3g")
    np.testing.assert_allclose(molecules[1].esp, direct[1].esp, atol=1e-9)
    np.testing.assert_allclose(molecules[1].dipole, direct[1].dipole, atol=1e-9)


def test_field_forces_include_the_field_term_and_match_finite_differences():
    from tensorprop.qm.field import field_scf

    numbers, _ = reference_geometry("water")
    x = distorted_conformers("water", 1, seed=3)[0]
    field = np.array([0.3, -0.2, 0.4])  # V/A
    ref = field_scf(numbers, x, field, basis="sto-3g")
    h = 1e-4
    for atom, axis in ((0, 2), (1, 0), (2, 1)):
        xp, xm = x.copy(), x.copy()
        xp[atom, axis] += h
        xm[atom, axis] -= h
        fd = -(field_scf(numbers, xp, field, basis="sto-3g")["energy"]
               - field_scf(numbers, xm, field, basis="sto-3g")["energy"]) / (2 * h)
        assert abs(fd - ref["forces"][atom, axis]) < 1e-4, (atom, axis, fd, ref["forces"][atom, axis])
    zero = field_scf(numbers, x, np.zeros(3), basis="sto-3g")
    assert np.abs(ref["forces"] - zero["forces"]).max() > 1e-2  # the field really moves the forces
    hf = 1e-3
    for a in range(3):
        e = np.eye(3)[a] * hf
        fd = -(field_scf(numbers, x, field + e, basis="sto-3g")["energy"]
               - field_scf(numbers, x, field - e, basis="sto-3g")["energy"]) / (2 * hf)
        assert abs(fd - ref["dipole"][a]) < 1e-5  # dipole = -dE/dF, e*A


def test_reference_born_charges_obey_the_sum_rule():
    from tensorprop.qm.field import field_born_charges

    numbers, positions = reference_geometry("water")
    z = field_born_charges(numbers, positions, basis="sto-3g")
    assert np.abs(z.sum(axis=0)).max() < 1e-3
    assert z[0, 0, 0] < 0 and z[1, 1, 1] > 0  # O negative, H positive along the O-H bonds' plane


def test_field_dataset_gives_reference_born_charges_to_the_test_split_only(tmp_path):
    from tensorprop import studies
    from tensorprop.data.readers import read_extxyz
    from tensorprop.data.splits import make_split

    path = studies.field_dataset(tmp_path / "hf.xyz", ["hf"], 10, basis="sto-3g", born_on="test")
    frames = read_extxyz(path, require_labels=False)
    with_born = [i for i, c in enumerate(frames) if c.born_charges is not None]
    assert with_born == sorted(make_split(10)["test"]) and len(with_born) == 1
    assert all(c.info["molecule"] == "hf" and c.info["field"].shape == (3,) for c in frames)
    np.testing.assert_allclose(frames[with_born[0]].born_charges.sum(axis=0), 0.0, atol=1e-3)
