"""Molecular charge heads: ESP function, exact total charge, equivariance of the equivariant
head and measurable non-equivariance of the Cartesian head, batching, file round trip."""

from __future__ import annotations

import numpy as np
import pytest

from tensorprop.charges import ChargeModel, build_charge_model
from tensorprop.config import BatchConfig
from tensorprop.data.batching import training_stream
from tensorprop.data.molecule_batching import molecule_collate, molecule_graphs
from tensorprop.data.molecules import Molecule, read_molecules, write_esp_dataset
from tensorprop.errors import CheckpointError, DataError
from tensorprop.physics.electrostatics import BOHR, EANG_DEBYE, batched_esp, esp
from tensorprop.testing import random_rotation
from tensorprop.train.evaluate import dipole_rotation_error

TINY_CHARGES = {"hidden_irreps": "8x0e + 4x1o + 4x1e + 2x2e", "head_irreps": "8x0e + 4x1o", "num_layers": 2,
                "radial_hidden": [16], "cutoff": 4.0, "num_radial_basis": 6}


def methanol(seed: int = 0, charge: float = 0.0) -> Molecule:
    from tensorprop.qm.geometries import distorted_conformers, reference_geometry

    numbers, _ = reference_geometry("methanol")
    x = distorted_conformers("methanol", 1, sigma=0.08, seed=seed)[0]
    rng = np.random.default_rng(seed)
    points = x.mean(0) + rng.normal(size=(40, 3)) * 3.0
    return Molecule(numbers=numbers, positions=x, charge=charge, dipole=rng.normal(size=3), esp_points=points,
                    esp=rng.normal(size=40) * 0.01, label=f"methanol-{seed}")


@pytest.fixture(scope="module", params=["equivariant", "cartesian"])
def model(request) -> ChargeModel:
    return build_charge_model(TINY_CHARGES, {"head": request.param, "n_dcm": 3, "features": 32, "layers": 2}, seed=2)


@pytest.fixture(scope="module")
def equivariant_model() -> ChargeModel:
    return build_charge_model(TINY_CHARGES, {"head": "equivariant", "n_dcm": 2}, seed=3)


def test_esp_matches_direct_sum():
    rng = np.random.default_rng(0)
    sites, charges, points = rng.normal(size=(7, 3)), rng.normal(size=7), rng.normal(size=(11, 3)) * 5 + 10
    direct = np.array([sum(q / (np.linalg.norm(p - s) / BOHR) for s, q in zip(sites, charges)) for p in points])
    np.testing.assert_allclose(np.asarray(esp(sites, charges, points)), direct, rtol=1e-5)


def test_batched_esp_only_sees_own_molecule():
    rng = np.random.default_rng(1)
    sites, charges = rng.normal(size=(5, 2, 3)), rng.normal(size=(5, 2))
    node_graph = np.array([0, 0, 1, 1, 2])  # atom 4 is padding (graph 2)
    node_mask = np.array([True, True, True, True, False])
    points = rng.normal(size=(3, 6, 3)) + 4.0
    out = np.asarray(batched_esp(sites, charges, node_graph, node_mask, points))
    for g in range(2):
        own = node_graph == g
        ref = esp(sites[own].reshape(-1, 3), charges[own].reshape(-1), points[g])
        np.testing.assert_allclose(out[g], np.asarray(ref), rtol=1e-5)
    np.testing.assert_allclose(out[2], 0.0, atol=1e-7)


@pytest.mark.parametrize("charge", [0.0, 1.0, -2.0])
def test_total_charge_exact(model, charge):
    molecules = [methanol(s, charge=charge) for s in range(3)]
    for pred in model.predict_many(molecules):
        assert pred["charges"].shape == (6, 3) and pred["sites"].shape == (6, 3, 3)
        assert abs(pred["charges"].sum() - charge) < 1e-5


def test_displacements_bounded(model):
    mol = methanol(1)
    pred = model.predict(mol)
    d = np.linalg.norm(pred["sites"] - mol.positions[:, None], axis=-1)
    bound = model.charges_config.max_displacement * (np.sqrt(3) if model.charges_config.head == "cartesian" else 1)
    assert d.max() <= bound + 1e-6


def test_dipole_is_sum_of_charges_times_sites(model):
    mol = methanol(2)
    pred = model.predict(mol)
    centroid = mol.positions.mean(0)
    ref = (pred["charges"][..., None] * (pred["sites"] - centroid)).sum(axis=(0, 1))
    np.testing.assert_allclose(pred["dipole"], ref, atol=1e-5)


@pytest.mark.parametrize("improper", [False, True])
def test_equivariant_head_rotates(equivariant_model, improper):
    mol = methanol(3)
    r = random_rotation(11, improper=improper)
    p0, p1 = equivariant_model.predict(mol), equivariant_model.predict(mol.rotated(r))
    np.testing.assert_allclose(p1["charges"], p0["charges"], atol=1e-5)
    np.testing.assert_allclose(p1["sites"], p0["sites"] @ r.T, atol=1e-4)
    np.testing.assert_allclose(p1["dipole"], r @ p0["dipole"], atol=1e-5)
    assert dipole_rotation_error(equivariant_model, mol, 4).max() < 1e-3  # Debye


def test_equivariant_head_permutation_and_translation(equivariant_model):
    mol = methanol(4)
    order = np.array([3, 0, 5, 1, 4, 2])
    p0 = equivariant_model.predict(mol)
    pp = equivariant_model.predict(mol.replace(numbers=mol.numbers[order], positions=mol.positions[order]))
    np.testing.assert_allclose(pp["charges"], p0["charges"][order], atol=1e-5)
    np.testing.assert_allclose(pp["sites"], p0["sites"][order], atol=1e-5)
    shift = np.array([3.0, -7.5, 12.0])
    pt = equivariant_model.predict(mol.replace(positions=mol.positions + shift))
    np.testing.assert_allclose(pt["sites"], p0["sites"] + shift, atol=1e-4)
    np.testing.assert_allclose(pt["dipole"], p0["dipole"], atol=1e-5)


def test_cartesian_head_is_measurably_not_equivariant():
    cart = build_charge_model(TINY_CHARGES, {"head": "cartesian", "n_dcm": 3}, seed=2)
    err = dipole_rotation_error(cart, methanol(5), 8)
    assert err.max() > 1e-2, err  # Debye; lab-frame displacements do not follow the molecule


def test_batching_does_not_mix_molecules(equivariant_model):
    molecules = [methanol(s) for s in range(5)]
    alone = [equivariant_model.predict(m) for m in molecules]
    together = equivariant_model.predict_many(molecules)
    for a, b in zip(alone, together):
        np.testing.assert_allclose(a["sites"], b["sites"], atol=1e-5)
        np.testing.assert_allclose(a["dipole"], b["dipole"], atol=1e-5)


def test_rotation_augmentation_stream_is_deterministic_and_rotates_labels():
    molecules = [methanol(s) for s in range(6)]
    graphs = molecule_graphs(molecules, 4.0)
    budget = BatchConfig(max_nodes=12, max_edges=64, max_graphs=2)

    def take(n, **kw):
        start = kw.pop("start_step", 0)
        collate = molecule_collate(molecules, graphs, budget, 40, seed=1, **kw)
        return [b for _, (_, b) in zip(range(n), training_stream(graphs, budget, 1, collate, start))]

    augmented, plain = take(7, augment_rotations=True), take(7)
    resumed = take(4, augment_rotations=True, start_step=3)
    for x, y in zip(augmented[3:], resumed):  # a resumed run sees the same rotations
        np.testing.assert_array_equal(x.graph.positions, y.graph.positions)
        np.testing.assert_array_equal(x.labels.esp_points, y.labels.esp_points)
    for a, p in zip(augmented, plain):  # same molecules, rigidly rotated with their labels
        assert not np.allclose(a.graph.positions[a.graph.node_mask], p.graph.positions[p.graph.node_mask])
        for g in range(2):
            atoms = np.flatnonzero((a.graph.node_graph == g) & a.graph.node_mask)
            da = np.linalg.norm(a.labels.esp_points[g][:, None] - a.graph.positions[atoms][None], axis=-1)
            dp = np.linalg.norm(p.labels.esp_points[g][:, None] - p.graph.positions[atoms][None], axis=-1)
            np.testing.assert_allclose(da, dp, rtol=1e-5)
            np.testing.assert_allclose(np.linalg.norm(a.labels.dipole[g]), np.linalg.norm(p.labels.dipole[g]),
                                       rtol=1e-5)
            np.testing.assert_array_equal(a.labels.esp[g], p.labels.esp[g])


def test_esp_file_round_trip(tmp_path):
    molecules = [methanol(s) for s in range(3)]
    path = write_esp_dataset(tmp_path / "set.npz", molecules, {"method": "test"})
    back = read_molecules(path)
    assert [m.label for m in back] == [m.label for m in molecules]
    for a, b in zip(molecules, back):
        np.testing.assert_array_equal(a.numbers, b.numbers)
        np.testing.assert_allclose(a.esp, b.esp)
        np.testing.assert_allclose(a.dipole, b.dipole)
    assert back[0].info["source_meta"]["units"]["esp"] == "Hartree/e"


def test_esp_file_errors(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="bad.npz"):
        read_molecules(bad)
    molecules = [methanol(0)]
    path = write_esp_dataset(tmp_path / "ok.npz", molecules)
    data = dict(np.load(path))
    data["esp"] = data["esp"][:-1]
    np.savez(tmp_path / "short.npz", **data)
    with pytest.raises(DataError, match="short.npz.*add up"):
        read_molecules(tmp_path / "short.npz")
    data = dict(np.load(path))
    data["positions"] = data["positions"].copy()
    data["positions"][2] = np.nan
    np.savez(tmp_path / "nan.npz", **data)
    with pytest.raises(DataError, match=r"nan.npz, structure 0: positions contains NaN"):
        read_molecules(tmp_path / "nan.npz")
    with pytest.raises(DataError, match="esp_points and esp"):
        Molecule(numbers=[1, 1], positions=np.eye(2, 3), esp=np.zeros(3))


def test_charge_model_save_load(tmp_path, equivariant_model):
    import tensorprop

    path = equivariant_model.save(tmp_path / "charges.npz")
    loaded = tensorprop.load_model(path)
    assert isinstance(loaded, ChargeModel)
    mol = methanol(6)
    np.testing.assert_allclose(loaded.predict(mol)["dipole"], equivariant_model.predict(mol)["dipole"], atol=1e-6)
    with pytest.raises(CheckpointError, match="not a tensor model"):
        tensorprop.TensorModel.load(path)
    assert EANG_DEBYE == pytest.approx(4.8032, abs=1e-4)


def test_unseen_elements_and_inconsistent_esp_arrays(tmp_path, equivariant_model):
    trained = equivariant_model.with_params(equivariant_model.params)
    trained.elements = [1, 6, 8]
    ammonia = Molecule(numbers=[7, 1, 1, 1], positions=[[0, 0, 0.12], [0, 0.94, -0.27], [0.81, -0.47, -0.27],
                                                        [-0.81, -0.47, -0.27]], label="nh3")
    with pytest.raises(DataError, match="nh3, structure 0: element.*N not in this charge model"):
        trained.predict(ammonia)
    with pytest.warns(UserWarning, match="N not in"):
        trained.predict_many([ammonia], unseen_elements="warn")
    path = write_esp_dataset(tmp_path / "ok.npz", [methanol(0), methanol(1)])
    data = dict(np.load(path))
    data["dipole"] = data["dipole"][:, :2]
    np.savez(tmp_path / "narrow.npz", **data)
    with pytest.raises(DataError, match=r"narrow.npz, structure 0: inconsistent arrays"):
        read_molecules(tmp_path / "narrow.npz")
    data = dict(np.load(path))
    data["charge"] = data["charge"][:1]
    np.savez(tmp_path / "short.npz", **data)
    with pytest.raises(DataError, match=r"short.npz, structure 1: inconsistent arrays"):
        read_molecules(tmp_path / "short.npz")


def test_charge_model_file_without_a_task_loads(tmp_path, equivariant_model):
    """A model file written before model.task existed (no ``task`` in its model_config) loads as the same model."""
    import tensorprop
    from tensorprop.model_file import read_model_file, write_model_file

    params, stats, meta = read_model_file(equivariant_model.save(tmp_path / "new.npz"))
    assert meta["model_config"].pop("task") == "charges"
    meta = {k: v for k, v in meta.items() if k not in ("format_version", "tensorprop_version")}
    loaded = tensorprop.load_model(write_model_file(tmp_path / "old.npz", params, stats, meta))
    assert isinstance(loaded, ChargeModel) and loaded.task.name == "charges"
    mol = methanol(7)
    np.testing.assert_allclose(loaded.predict(mol)["charges"], equivariant_model.predict(mol)["charges"], atol=1e-6)
