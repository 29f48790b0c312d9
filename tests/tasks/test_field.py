"""The field-response route: E(R, F) -> dipole, Born charges and polarisability as exact derivatives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import tensorprop
from tensorprop import testing
from tensorprop.config import BatchConfig
from tensorprop.data.batching import make_batches
from tensorprop.data.graph import build_graph
from tensorprop.data.records import Crystal
from tests.conftest import TINY, rocksalt_nacl, triclinic, wurtzite_zno

FIELD = {**TINY, "head": "field", "head_irreps": "4x0e + 2x1o + 2x2e"}


@pytest.fixture(scope="module")
def field_model():
    model = tensorprop.build_model(FIELD, seed=3)
    model.stats["born_shift"] = model.stats["born_shift"].copy()
    model.stats["born_shift"][[3, 8, 22, 30]] = [1.0, -2.0, 4.0, 2.0]  # non-trivial fixed charges
    return model


def _batch(*structures):
    graphs = [build_graph(s, 4.0, allow_isolated=not s.pbc.any()) for s in structures]
    # one padded shape for every test here (up to two structures): the response compiles once
    return make_batches(graphs, BatchConfig(max_nodes=64, max_edges=2048, max_graphs=2))[0][1]


def _response(model, batch, field):
    out = model.response(model.params, model.stats, batch, np.asarray(field, np.float32),
                         want=("born_charges", "polarisability", "epsilon"))
    return {k: np.asarray(v, np.float64) for k, v in out.items()}


def test_response_compiles_once_per_architecture(field_model):
    """model.response is one compiled function per (config, outputs, padded shape), shared by every model of the
    architecture: a second model with other weights compiles nothing new, and both give their own numbers."""
    from tensorprop.compiled import TRACES

    other = tensorprop.build_model(FIELD, seed=4)
    other.stats["born_shift"] = field_model.stats["born_shift"]
    batch = _batch(triclinic())
    field = np.zeros((batch.graph_mask.shape[0], 3))
    key = ("field_response", field_model.config, ("born_charges", "polarisability", "epsilon"))
    first = _response(field_model, batch, field)
    traces = TRACES[key]
    second = _response(other, batch, field)
    assert traces >= 1 and TRACES[key] == traces  # traced for this shape (here or by an earlier test), not again
    assert np.abs(first["born_charges"] - second["born_charges"]).max() > 1e-4  # other weights, other Z*
    np.testing.assert_allclose(first["born_charges"], _response(field_model, batch, field)["born_charges"], atol=1e-6)
    default = field_model.response(field_model.params, field_model.stats, batch,
                                   want=("born_charges", "polarisability", "epsilon"))  # no field given: zero field
    np.testing.assert_allclose(np.asarray(default["born_charges"]), first["born_charges"], atol=1e-6)
    assert TRACES[key] == traces


def water() -> Crystal:
    return Crystal(numbers=[8, 1, 1], positions=[[0, 0, 0.117], [0, 0.757, -0.469], [0.1, -0.757, -0.469]],
                   cell=np.zeros((3, 3)), pbc=False, label="water")


@pytest.mark.parametrize("structure", [triclinic(), water()], ids=["crystal", "molecule"])
def test_derivatives_match_finite_differences(field_model, structure):
    batch = _batch(structure)
    g = batch.graph_mask.shape[0]
    field = np.zeros((g, 3))
    field[0] = [0.05, -0.02, 0.03]  # V/A
    base = _response(field_model, batch, field)
    n, h = structure.n_atoms, 0.02
    for a in range(3):
        step = np.zeros_like(field)
        step[0, a] = h
        plus, minus = _response(field_model, batch, field + step), _response(field_model, batch, field - step)
        # Z*[i, a, b] = d f_(i,b) / dF_a ; alpha[a', a] = dP_a' / dF_a ; P_a = -dE/dF_a
        np.testing.assert_allclose(base["born_charges"][:n, a], (plus["forces"] - minus["forces"])[:n] / (2 * h),
                                   atol=2e-3)
        np.testing.assert_allclose(base["polarisability"][0, :, a], (plus["dipole"] - minus["dipole"])[0] / (2 * h),
                                   atol=2e-3)
        np.testing.assert_allclose(base["dipole"][0, a], -(plus["energy"] - minus["energy"])[0] / (2 * h),
                                   atol=2e-3)


@pytest.mark.slow
def test_sum_rule_holds_at_any_field(field_model):
    batch = _batch(triclinic(), wurtzite_zno())
    field = np.random.default_rng(0).normal(size=(batch.graph_mask.shape[0], 3)) * 0.1
    z = _response(field_model, batch, field)["born_charges"]
    for g in range(2):
        assert np.abs(z[batch.node_graph == g].sum(axis=0)).max() < 1e-4
    assert np.abs(z[~batch.node_mask]).max() == 0.0


@pytest.mark.parametrize("improper", [False, True])
def test_rotating_structure_and_field_together(field_model, improper):
    c, r = triclinic(), testing.random_rotation(9, improper=improper)
    f = np.array([[0.04, 0.01, -0.03]])
    g = _batch(c).graph_mask.shape[0]
    pad = lambda x: np.concatenate([x, np.zeros((g - 1, 3))])  # noqa: E731
    a = _response(field_model, _batch(c), pad(f))
    b = _response(field_model, _batch(testing.rotate(c, r)), pad(f @ r.T))
    n = c.n_atoms
    np.testing.assert_allclose(b["energy"][0], a["energy"][0], atol=1e-4)
    np.testing.assert_allclose(b["dipole"][0], r @ a["dipole"][0], atol=1e-4)
    np.testing.assert_allclose(b["forces"][:n], a["forces"][:n] @ r.T, atol=1e-4)
    np.testing.assert_allclose(b["born_charges"][:n], r @ a["born_charges"][:n] @ r.T, atol=1e-4)
    np.testing.assert_allclose(b["polarisability"][0], r @ a["polarisability"][0] @ r.T, atol=1e-4)


def test_field_model_passes_the_tensor_battery(field_model):
    c = triclinic()
    testing.check_rotation(field_model.predict, c, testing.random_rotation(4, improper=True))
    testing.check_permutation(field_model.predict, c, np.array([3, 1, 0, 2]))
    testing.check_translation(field_model.predict, c, np.array([1.0, -2.0, 0.5]))
    testing.check_supercell(field_model.predict, rocksalt_nacl(), [[1, 1, 0], [0, 1, 1], [1, 0, 2]])
    testing.check_sum_rule(field_model.predict, c)


def test_field_model_needs_huber_eps_loss():
    from tensorprop.config import FitConfig, ModelConfig, TrainConfig
    from tensorprop.errors import ConfigError
    from tensorprop.train.loop import prepare_training

    cfg = FitConfig(model=ModelConfig(**{**FIELD, "radial_hidden": (16,)}), train=TrainConfig(epsilon_loss="log"))
    with pytest.raises(ConfigError, match="epsilon_loss"):
        prepare_training(cfg)


@pytest.mark.slow
def test_cli_data_field_then_fit_field_then_evaluate(tmp_path, capsys):
    pytest.importorskip("pyscf")
    import json

    from tensorprop.cli import main
    from tensorprop.data.readers import read_extxyz

    data = tmp_path / "field.xyz"
    assert main(["data", "field", "--molecule", "water", "--n-conformers", "10", "--n-born", "1", "--basis", "sto-3g",
                 "--out", str(data), "--no-progress"]) == 0
    frames = read_extxyz(data, require_labels=False)
    assert len(frames) == 10 and frames[0].born_charges is not None and frames[1].born_charges is None
    assert max(np.linalg.norm(f.info["field"]) for f in frames) <= 0.5
    run = tmp_path / "run"
    assert main(["fit", "field", "--data", str(data), "--out", str(run), "--max-steps", "4", "--no-progress",
                 "--train.eval_every", "4", "--model.hidden_irreps", "8x0e + 4x1o + 2x2e", "--model.head_irreps",
                 "4x0e + 2x1o + 2x2e", "--model.num_layers", "1", "--model.radial_hidden", "[8]",
                 "--batch.max_nodes", "16", "--batch.max_edges", "64", "--batch.max_graphs", "4"]) == 0
    record = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert all(np.isfinite(record[k]) for k in ("valid_energy_mae", "valid_forces_mae", "valid_dipole_mae"))
    model = tensorprop.load_model(run)
    shift = model.stats["energy_shift"]
    assert model.config.head == "field"
    assert abs(shift[8] + 2 * shift[1] - np.mean([f.info["energy"] for f in frames])) < 1.0  # eV, H2O reference

    from tensorprop.train.evaluate import field_born_report

    capsys.readouterr()
    assert main(["evaluate", str(run), "--split", "all", "--data", str(data), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n_structures"] == 10 and report["n_with_reference_born"] == 1
    assert all(np.isfinite(report[k]) for k in ("energy_mae", "forces_mae", "dipole_mae", "born_mae"))
    assert report["born_mae"] == pytest.approx(field_born_report(model, frames)["born_mae"], rel=1e-6)
    assert report["max_sum_rule_violation"] < 1e-4 and Path(report["plots"][0]).is_file()
    assert main(["evaluate", str(run), "--split", "test", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_structures"] == 1  # 10 conformers: 8 / 1 / 1
