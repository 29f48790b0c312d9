"""Ensembles of trained tensor models: each target the mean of the members that have it, one model file."""

import json

import numpy as np
import pytest

import tensorprop
from tensorprop.api import TensorModel
from tensorprop.cli import main
from tensorprop.data.readers import read_extxyz
from tensorprop.ensemble import EnsembleModel, ensemble
from tensorprop.errors import CheckpointError, ConfigError, DataError
from tensorprop.physics.tensors import log_epsilon
from tensorprop.testing import (check_epsilon_physical, check_permutation, check_rotation, check_sum_rule,
                                check_supercell, check_translation, random_rotation)
from tests.conftest import TINY, triclinic, wurtzite_zno

ELEMENTS = [3, 8, 22, 30]  # Li, O, Ti (triclinic), Zn, O (wurtzite)


def _trained_like(config: dict, seed: int, elements=ELEMENTS) -> TensorModel:
    """A random-weight model with non-trivial training statistics, as fit would save it."""
    m = tensorprop.build_model(config, seed=seed)
    n = m.stats["born_shift"].size
    stats = {**m.stats, "born_shift": np.linspace(-2, 2, n, dtype=np.float32) * (1 + 0.1 * seed),
             "epsilon_log_shift": np.asarray(1.0 + 0.2 * seed, np.float32)}
    return TensorModel(m.config, m.params, stats, elements=elements,
                       metadata={"dataset": "phonon-becs", "n_train": 1216, "step": 100 * seed})


@pytest.fixture(scope="module")
def members():
    both = _trained_like(TINY, 0)
    born_only = _trained_like({**TINY, "targets": ["born_charges"], "num_layers": 1}, 1)  # another architecture
    eps_only = _trained_like({**TINY, "targets": ["epsilon"]}, 2)
    return [both, born_only, eps_only]


@pytest.mark.slow
def test_each_target_is_the_mean_of_the_members_that_have_it(members):
    ens = ensemble(members)
    assert ens.targets == ("born_charges", "epsilon")
    assert ens.n_parameters == sum(m.n_parameters for m in members)
    crystal = triclinic()
    outs = [m.predict(crystal) for m in members]
    got = ens.predict(crystal)
    np.testing.assert_allclose(got["born_charges"], (outs[0]["born_charges"] + outs[1]["born_charges"]) / 2,
                               atol=2e-5)
    # eps_inf: the log-Euclidean mean I + expm(mean logm(eps_k - I)) of the two members with eps heads
    want = (log_epsilon(outs[0]["epsilon"]) + log_epsilon(outs[2]["epsilon"])) / 2
    np.testing.assert_allclose(log_epsilon(got["epsilon"]), want, atol=2e-4)
    assert np.abs(outs[0]["born_charges"] - outs[1]["born_charges"]).max() > 1e-2  # the mean is a real test
    assert np.abs(want - log_epsilon(outs[0]["epsilon"])).max() > 1e-2
    # the spread: RMS over members and components of each member's deviation from the mean
    dev = [o["born_charges"] - got["born_charges"] for o in outs[:2]]
    np.testing.assert_allclose(got["born_charges_spread"], np.sqrt(sum((d**2).sum((1, 2)) for d in dev) / 18),
                               rtol=1e-4)
    dev = [o["epsilon"] - got["epsilon"] for o in (outs[0], outs[2])]
    np.testing.assert_allclose(got["epsilon_spread"], np.sqrt(sum((d**2).sum() for d in dev) / 18), rtol=1e-3)
    assert got["born_charges_spread"].shape == (crystal.n_atoms,) and got["born_charges_spread"].min() > 1e-3
    # identical members agree: zero spread
    same = ensemble([members[0], members[0]]).predict(crystal)
    np.testing.assert_allclose(same["born_charges_spread"], 0.0, atol=1e-6)
    np.testing.assert_allclose(same["epsilon_spread"], 0.0, atol=1e-5)
    np.testing.assert_allclose(same["born_charges"], outs[0]["born_charges"], atol=1e-6)


def test_ensemble_is_equivariant_and_physical(members):
    ens = ensemble(members)
    crystal = wurtzite_zno()
    assert {"born_charges_spread", "epsilon_spread"} <= set(ens.predict(crystal))  # checked as invariants below
    for improper in (False, True):
        check_rotation(ens.predict, crystal, random_rotation(7, improper=improper), rtol=2e-4)
    check_permutation(ens.predict, crystal, np.array([2, 0, 3, 1]))
    check_translation(ens.predict, crystal, np.array([0.3, -1.2, 2.0]))
    check_supercell(ens.predict, crystal, [[1, 1, 0], [0, 1, 0], [0, 0, 2]])  # another cell, twice the atoms
    check_sum_rule(ens.predict, crystal)
    check_epsilon_physical(ens.predict, crystal)


def test_ensemble_file_round_trip_and_cli(members, tmp_path, capsys):
    paths = [m.save(tmp_path / f"m{i}.npz") for i, m in enumerate(members)]
    out = tmp_path / "ens.npz"
    assert main(["ensemble", *map(str, paths), "--out", str(out)]) == 0
    loaded = tensorprop.load_model(out)
    assert isinstance(loaded, EnsembleModel) and loaded.elements == ELEMENTS
    assert loaded.metadata == {"dataset": "phonon-becs", "n_train": 1216}  # the members' shared training data
    assert [m.metadata["step"] for m in loaded.members] == [0, 100, 200]
    assert loaded.member_names == [str(p) for p in paths]
    assert [m.config for m in loaded.members] == [m.config for m in members]
    direct = ensemble(members).predict_many([triclinic(), wurtzite_zno()])
    for a, b in zip(loaded.predict_many([triclinic(), wurtzite_zno()]), direct):
        np.testing.assert_array_equal(a["born_charges"], b["born_charges"])
        np.testing.assert_array_equal(a["epsilon"], b["epsilon"])
    # the predict command takes the ensemble file like any model file
    poscar = tmp_path / "POSCAR"
    wurtzite_zno().to_ase().write(poscar, format="vasp")
    assert main(["predict", str(out), str(poscar), "--out", str(tmp_path / "p.json")]) == 0
    (written,) = json.loads((tmp_path / "p.json").read_text())
    want = loaded.predict(wurtzite_zno())
    np.testing.assert_allclose(written["born_charges_spread"], want["born_charges_spread"], rtol=1e-6)
    assert np.isclose(written["epsilon_spread"], want["epsilon_spread"])
    assert main(["predict", str(out), str(poscar), "--out", str(tmp_path / "p.xyz")]) == 0
    (back,) = read_extxyz(tmp_path / "p.xyz")
    np.testing.assert_allclose(back.born_charges, want["born_charges"], rtol=1e-6)
    np.testing.assert_allclose(np.ravel(back.info["born_charges_spread"]), want["born_charges_spread"], rtol=1e-6)
    assert np.isclose(back.info["epsilon_spread"], want["epsilon_spread"])
    capsys.readouterr()
    assert main(["predict", str(out), str(poscar)]) == 0
    assert "ensemble spread" in capsys.readouterr().out


def test_an_ensemble_joins_another_member_by_member(members, tmp_path):
    first = ensemble(members[:2]).save(tmp_path / "first.npz")
    third = members[2].save(tmp_path / "third.npz")
    out = tmp_path / "grown.npz"
    assert main(["ensemble", str(first), str(third), "--out", str(out)]) == 0
    grown = tensorprop.load_model(out)
    assert len(grown.members) == 3
    assert grown.member_names == [f"{first} / model 0", f"{first} / model 1", str(third)]
    crystal = triclinic()
    want = ensemble(members).predict(crystal)["born_charges"]
    np.testing.assert_allclose(grown.predict(crystal)["born_charges"], want, atol=1e-6)


def test_members_chosen_per_target_serve_only_those_targets(members, tmp_path, capsys):
    """Z* the mean of the members chosen for Z*, eps_inf of those chosen for eps_inf; the choice survives the file,
    joining another ensemble, and the CLI's --born-charges/--epsilon."""
    extra = _trained_like(TINY, 5)  # predicts both, serves eps_inf only
    ens = ensemble([members[0], members[1], extra], targets=[["born_charges"], None, ["epsilon"]])
    assert ens.member_targets == (("born_charges",), ("born_charges",), ("epsilon",))
    assert ens.targets == ("born_charges", "epsilon")
    crystal = triclinic()
    outs = [m.predict(crystal) for m in (members[0], members[1], extra)]
    got = ens.predict(crystal)
    np.testing.assert_allclose(got["born_charges"], (outs[0]["born_charges"] + outs[1]["born_charges"]) / 2, atol=2e-5)
    np.testing.assert_allclose(got["epsilon"], outs[2]["epsilon"], rtol=2e-4)  # members[0]'s eps_inf left out
    assert np.abs(outs[0]["epsilon"] - outs[2]["epsilon"]).max() > 1e-2
    assert "epsilon_spread" not in got  # one member serves eps_inf
    # the sequential path (one member after another, for large batches) serves the same targets
    import importlib

    ensemble_module = importlib.import_module("tensorprop.ensemble")  # the module (tensorprop.ensemble: the function)
    saved = ensemble_module.SEQUENTIAL_EDGES
    ensemble_module.SEQUENTIAL_EDGES = 0
    try:
        seq = ens.predict(crystal)
    finally:
        ensemble_module.SEQUENTIAL_EDGES = saved
    np.testing.assert_allclose(seq["born_charges"], got["born_charges"], atol=2e-5)
    np.testing.assert_allclose(seq["epsilon"], got["epsilon"], rtol=2e-4)
    # the file keeps the choice; a grown ensemble keeps it member by member
    path = ens.save(tmp_path / "per_target.npz")
    loaded = tensorprop.load_model(path)
    assert loaded.member_targets == ens.member_targets
    np.testing.assert_array_equal(loaded.predict(crystal)["epsilon"], got["epsilon"])
    from tensorprop.model_file import read_model_file

    params, stats, meta = read_model_file(path)
    for bad in (["born_charges"], [["born_charges"], ["dipole"], ["epsilon"]], [[], ["born_charges"], ["epsilon"]]):
        with pytest.raises(CheckpointError, match=r"per_target.npz: (member_targets is not|model \d: serves)"):
            EnsembleModel.from_file_contents(path, params, stats, {**meta, "member_targets": bad})
    grown = ensemble([path, members[2]])
    assert grown.member_targets == (("born_charges",), ("born_charges",), ("epsilon",), ("epsilon",))
    with pytest.raises(ConfigError, match=r"per_target.npz / model 2: serves targets \[\]"):
        ensemble([path, members[2]], targets=[["born_charges"], None])  # would leave a member serving nothing
    # the CLI: runs under --born-charges / --epsilon serve those targets; positional runs all of theirs
    a, b, c = (m.save(tmp_path / f"{n}.npz") for n, m in zip("abc", (members[0], members[1], extra)))
    out = tmp_path / "cli.npz"
    assert main(["ensemble", "--born-charges", str(a), str(b), "--epsilon", str(c), "--out", str(out)]) == 0
    assert tensorprop.load_model(out).member_targets == ens.member_targets
    capsys.readouterr()
    assert main(["ensemble", str(a), "--epsilon", str(c), "--out", str(out)]) == 0
    assert tensorprop.load_model(out).member_targets == (("born_charges", "epsilon"), ("epsilon",))
    # a target a member does not predict, or none at all: refused, naming the member
    with pytest.raises(ConfigError, match=r"model 1: serves targets \['epsilon'\], not a non-empty subset"):
        ensemble([members[0], members[1]], targets=[None, ["epsilon"]])
    with pytest.raises(ConfigError, match="model 0: serves targets"):
        ensemble([members[0], members[1]], targets=[[], None])
    assert main(["ensemble", "--epsilon", str(b), str(c), "--out", str(out)]) == 2


def test_ensemble_knows_only_the_elements_every_member_saw(members):
    narrow = _trained_like(TINY, 3, elements=[8, 30])
    ens = ensemble([members[0], narrow])
    assert ens.elements == [8, 30]
    ens.predict(wurtzite_zno())
    with pytest.raises(DataError, match=r"element\(s\) Li, Ti not in this model's training set"):
        ens.predict(triclinic())


def test_members_of_other_cutoffs_share_the_largest_cutoffs_graph(members):
    """One graph at the largest member cutoff feeds all members; a member of a smaller cutoff gives on it what it
    gives on its own graph (its radial envelope is zero beyond its cutoff), so the mean is the members' own."""
    wider = _trained_like({**TINY, "cutoff": 5.0}, 4)
    ens = ensemble([members[0], wider])
    assert members[0].config.cutoff == 4.0 and ens.config.cutoff == 5.0
    crystal = triclinic()
    outs = [members[0].predict(crystal), wider.predict(crystal)]
    np.testing.assert_allclose(ens.predict(crystal)["born_charges"],
                               (outs[0]["born_charges"] + outs[1]["born_charges"]) / 2, atol=2e-5)
    assert np.abs(outs[0]["born_charges"] - outs[1]["born_charges"]).max() > 1e-2


@pytest.mark.slow
def test_ensemble_refuses_what_it_cannot_average(members, tmp_path):
    with pytest.raises(ConfigError, match="at least two models"):
        ensemble(members[:1])
    field = tensorprop.build_model({**TINY, "head": "field", "head_irreps": "4x0e + 2x1o + 2x2e"})
    with pytest.raises(ConfigError, match="model 1: .* is not a crystal-tensor model"):
        ensemble([members[0], field])
    with pytest.raises(ConfigError, match="ensemble's weights are its members'"):
        ensemble(members).with_params(None)
    # the CLI says so in one line, exit code 2
    assert main(["ensemble", str(members[0].save(tmp_path / "a.npz")), "--out", str(tmp_path / "e.npz")]) == 2
    # a file claiming more members than it holds is refused, naming the member
    from tensorprop.model_file import read_model_file

    ensemble(members).save(tmp_path / "e3.npz")
    params, stats, meta = read_model_file(tmp_path / "e3.npz")
    params = {k: v for k, v in params.items() if not k.startswith("member2:")}
    with pytest.raises(CheckpointError, match=r"e3.npz: no parameters for ensemble member 2"):
        EnsembleModel.from_file_contents(tmp_path / "e3.npz", params, stats, meta)


def test_ensemble_stands_in_for_a_model(tmp_path):
    """An ensemble is a sibling of Model: other weights per member (with_params), the task of its members."""
    import tensorprop
    from tensorprop.api import Predictor

    members = [tensorprop.build_model(TINY, seed=s) for s in (1, 2)]
    ens = ensemble(members)
    assert isinstance(ens, Predictor) and ens.task is members[0].task
    swapped = ens.with_params(ens.params[::-1], {"note": "swapped"})
    c = triclinic()
    np.testing.assert_allclose(swapped.predict(c)["born_charges"], ens.predict(c)["born_charges"], atol=1e-5)
    assert swapped.metadata["note"] == "swapped" and swapped.members[0].params is members[1].params
