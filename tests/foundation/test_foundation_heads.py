"""Z*/eps_inf heads on foundation features: the feature cache, the physics battery, fit -> evaluate -> predict.

The feature source is ``stand-in:nequip`` (tensorprop's own backbone with fixed random weights) unless
a Nequix checkpoint is present, so the heads are exercised on generic equivariant features.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tensorprop import testing as tpt
from tests.conftest import SHARED, rocksalt_nacl, triclinic, wurtzite_zno

CRYSTALS = {"triclinic": triclinic(), "ZnO": wurtzite_zno(), "NaCl": rocksalt_nacl()}


# -- the feature cache -------------------------------------------------------------------------
class Counting:
    """A compute function that records which structures it was asked for."""

    def __init__(self, width=5):
        self.calls, self.width = [], width

    def __call__(self, crystals):
        self.calls.append(len(crystals))
        return [np.full((c.n_atoms, self.width), float(c.n_atoms), np.float32) + np.arange(self.width)
                for c in crystals]


def test_cache_round_trip_and_invalidation(tmp_path):
    from tensorprop.data.feature_cache import FeatureCache, cached_features

    crystals = list(CRYSTALS.values())
    cache = FeatureCache("a" * 64, "5x0e", root=tmp_path)
    compute = Counting()
    first = cached_features(crystals, compute, cache)
    assert compute.calls == [3] and len(list(cache.folder.glob("*.npz"))) == 3
    again = cached_features(crystals, compute, cache)
    assert compute.calls == [3]  # all three read back from disk
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)

    # a corrupt entry, an entry of other irreps and a moved atom are computed again, never reused
    cache.path(crystals[0]).write_bytes(b"not an npz")
    other = FeatureCache("a" * 64, "4x0e", root=tmp_path)
    other.store(crystals[1], np.zeros((crystals[1].n_atoms, 4), np.float32))
    moved = crystals[2].replace(positions=crystals[2].positions + [[0.0, 0.0, 1e-6], [0.0, 0.0, 0.0]])
    assert cache.path(moved) != cache.path(crystals[2])
    assert cache.load(crystals[0]) is None and cache.load(crystals[1]) is None and cache.load(moved) is None
    out = cached_features([crystals[0], crystals[1], moved], compute, cache)
    assert compute.calls == [3, 3]
    np.testing.assert_array_equal(out[0], first[0])
    assert cache.load(crystals[0]) is not None  # rebuilt entry is valid again
    # a different checkpoint has a folder of its own
    assert FeatureCache("b" * 64, "5x0e", root=tmp_path).load(crystals[0]) is None


def test_cache_rejects_wrong_shape(tmp_path):
    from tensorprop.data.feature_cache import FeatureCache

    c = triclinic()
    cache = FeatureCache("c" * 64, "5x0e", root=tmp_path)
    cache.store(c, np.zeros((c.n_atoms + 1, 5), np.float32))
    assert cache.load(c) is None
    cache.store(c, np.full((c.n_atoms, 5), np.nan, np.float32))
    assert cache.load(c) is None


# -- the physics battery on a tiny foundation-head model ----------------------------------------
def _tiny_foundation_model(readout: str, seed: int = 2, name: str = "stand-in:nequip"):
    from tensorprop.api import init_params
    from tensorprop.config import FoundationConfig, ModelConfig
    from tensorprop.foundation.sources import open_source, select_layers
    from tensorprop.foundation_model import FoundationTensorModel

    source = open_source(name)
    fc = FoundationConfig(name=name, sha256=source.sha256, readout=readout, channels=4,
                          feature_irreps=select_layers(source.layer_irreps, ())[1])
    cfg = ModelConfig(foundation=fc, cutoff=4.0, hidden_irreps="6x0e + 3x1e + 3x2e + 3x1o", num_layers=1,
                      head_irreps="4x0e + 2x1e + 2x2e", radial_hidden=(16,), avg_num_neighbors=10.0)
    model = FoundationTensorModel(cfg, init_params(cfg, seed), source=source)
    model.stats["born_scale"] = model.stats["born_scale"] * 5.0
    return model


@pytest.fixture(scope="module", params=["square", "interaction", "backbone", "nequix-mp-1"])
def head_model(request):
    """Tiny heads on the stand-in source (each readout) and on the real Nequix MP-1 features."""
    if request.param == "nequix-mp-1":
        pytest.importorskip("tensorprop.foundation.model", reason="the Nequix port (branch foundation) is not here")
        if not (SHARED / "models" / "nequix-mp-1.nqx").is_file():
            pytest.skip(f"{SHARED / 'models'}: no nequix-mp-1.nqx")
        return _tiny_foundation_model("square", name="nequix-mp-1")
    return _tiny_foundation_model(request.param)


def test_outputs_generic(head_model):
    out = head_model.predict(triclinic())
    z, eps = out["born_charges"], out["epsilon"]
    r = tpt.random_rotation(5)
    assert np.abs(r @ z[1] @ r.T - z[1]).max() > 1e-3
    assert np.abs(r @ eps @ r.T - eps).max() > 1e-4
    assert np.abs(z[1] - z[1].T).max() > 1e-4, "Z* must be allowed to be non-symmetric (its 1e part)"


@pytest.mark.parametrize("improper", [False, True])
def test_physics_battery(head_model, improper):
    predict = head_model.predict
    for name, c in CRYSTALS.items():
        tpt.check_rotation(predict, c, tpt.random_rotation(7, improper=improper))
        tpt.check_translation(predict, c, np.array([0.37, -1.21, 2.9]))
        tpt.check_sum_rule(predict, c)
        tpt.check_epsilon_physical(predict, c)
    for name in ("triclinic", "ZnO"):
        c = CRYSTALS[name]
        tpt.check_permutation(predict, c, np.random.default_rng(0).permutation(c.n_atoms)[::-1])
        tpt.check_supercell(predict, c, np.diag([2, 1, 1]))


def test_backbone_readout_reads_species_only_through_the_features():
    """readout ``backbone``: the own backbone's species embedding is replaced by the projected features, so two
    elements with the same features (here: an atom relabelled, its features kept) predict the same."""
    model = _tiny_foundation_model("backbone")
    modules = set(model.params)
    assert any("feature_projection" in m for m in modules) and not any("species_embedding" in m for m in modules)
    c = triclinic()
    before = model.predict(c)["born_charges"]
    features = model.features([c])
    model.features = lambda crystals, progress=False: features  # the relabelled atoms keep their features
    relabelled = c.replace(numbers=np.where(c.numbers == c.numbers[0], 3, c.numbers))
    after = model.predict(relabelled)["born_charges"]
    np.testing.assert_allclose(after, before, atol=1e-6)
    assert np.abs(before).max() > 1e-3


def test_save_load_and_wrong_weights(head_model, tmp_path):
    import dataclasses

    import tensorprop
    from tensorprop.errors import CheckpointError

    path = head_model.save(tmp_path / "m.npz")
    loaded = tensorprop.load_model(path)
    assert type(loaded).__name__ == "FoundationTensorModel"
    c = triclinic()
    np.testing.assert_allclose(loaded.predict(c)["born_charges"], head_model.predict(c)["born_charges"], atol=1e-6)
    fc = dataclasses.replace(head_model.config.foundation, sha256="0" * 64)
    other = type(head_model)(dataclasses.replace(head_model.config, foundation=fc), head_model.params)
    with pytest.raises(CheckpointError, match="(?i)sha256"):
        other.predict(c)


# -- fit -> evaluate -> predict from the command line ---------------------------------------
@pytest.fixture(scope="module")
def few_crystals(tmp_path_factory) -> Path:
    from tests.conftest import small_phonon_becs_file

    return small_phonon_becs_file(tmp_path_factory.mktemp("data"), max_atoms=4, count=20, name="few.xyz")


@pytest.mark.slow
def test_fit_evaluate_predict_frozen(few_crystals, tmp_path, monkeypatch, capsys):
    import yaml

    from tensorprop.cli import main
    from tensorprop.foundation.sources import STAND_IN

    monkeypatch.setenv("TENSORPROP_CACHE_DIR", str(tmp_path / "cache"))
    cfg = yaml.safe_load(Path("configs/foundation-frozen.yaml").read_text())
    cfg["model"].update(hidden_irreps="6x0e + 3x1e + 3x2e + 3x1o", head_irreps="4x0e + 2x1e + 2x2e")
    cfg["model"]["foundation"].update(name=STAND_IN, channels=4)
    cfg["batch"].update(max_nodes=32, max_edges=1024, max_graphs=8)
    cfg["train"].update(warmup_steps=2, eval_every=3, checkpoint_every=3)
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    run = tmp_path / "run"
    args = ["fit", "becs-eps", "--config", str(tmp_path / "cfg.yaml"), "--data", str(few_crystals), "--out", str(run),
            "--max-steps", "6", "--no-progress"]
    assert main(args) == 0
    resolved = yaml.safe_load((run / "config.yaml").read_text())["model"]["foundation"]
    assert resolved["name"] == STAND_IN and len(resolved["sha256"]) == 64 and resolved["feature_irreps"]
    n_cached = len(list((tmp_path / "cache" / "features" / resolved["sha256"]).glob("*.npz")))
    assert n_cached == 18  # train + valid of 20 structures, test not needed for training
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [3, 6] and np.isfinite(metrics[-1]["valid_born_mae"])

    capsys.readouterr()
    assert main(["evaluate", str(run), "--json"]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert ev["n_structures"] == 2 and ev["born_mae"] > 0 and ev["epsilon_mae"] > 0
    assert main(["predict", str(run), str(few_crystals), "--out", str(tmp_path / "pred.json"),
                 "--allow-unseen-elements"]) == 0
    pred = json.loads((tmp_path / "pred.json").read_text())
    assert len(pred) == 20 and np.abs(np.array(pred[0]["born_charges"]).sum(0)).max() < 1e-5


def test_finetune_and_bad_foundation_are_one_line_errors(few_crystals, tmp_path, capsys):
    from tensorprop.cli import main

    common = ["fit", "becs-eps", "--config", "configs/foundation-frozen.yaml", "--data", str(few_crystals),
              "--out", str(tmp_path / "r"), "--max-steps", "2", "--no-progress"]
    assert main([*common, "--model.foundation", "{name: 'stand-in:nequip', mode: finetune}"]) == 2
    assert "finetune needs a Nequix checkpoint; 'stand-in:nequip' has no layers" in capsys.readouterr().err
    assert main([*common, "--model.foundation", "{name: 'stand-in:nequip', sha256: '" + "0" * 64 + "'}"]) == 2
    assert "sha256" in capsys.readouterr().err.lower()


def test_foundation_config_round_trip_and_strictness():
    from tensorprop.config import FitConfig, ModelConfig, config_from_dict, config_to_dict
    from tensorprop.errors import ConfigError

    plain = ModelConfig()
    assert config_from_dict(ModelConfig, config_to_dict(plain)).foundation is None  # null stays null
    cfg = config_from_dict(FitConfig, {"model": {"foundation": {"name": "nequix-mp-1", "layers": [-1, 0]}}})
    assert cfg.model.foundation.layers == (-1, 0) and config_from_dict(FitConfig, config_to_dict(cfg)) == cfg
    with pytest.raises(ConfigError, match="model.foundation.nme"):
        config_from_dict(FitConfig, {"model": {"foundation": {"nme": "x"}}})
    with pytest.raises(ConfigError, match="model.foundation.mode"):
        config_from_dict(FitConfig, {"model": {"foundation": {"mode": "thawed"}}})
    with pytest.raises(ConfigError, match="model.foundation needs model.head: equivariant"):
        config_from_dict(FitConfig, {"model": {"head": "cartesian", "foundation": {}}})
    tuned = config_from_dict(FitConfig, {"model": {"foundation": {"mode": "finetune", "finetune_layers": "all"}}})
    assert tuned.model.foundation.finetune_layers == "all" and config_from_dict(FitConfig, config_to_dict(tuned)) == tuned
    for bad in (0, "some", 1.5):
        with pytest.raises(ConfigError, match="model.foundation.finetune_layers"):
            config_from_dict(FitConfig, {"model": {"foundation": {"finetune_layers": bad}}})
    with pytest.raises(ConfigError, match="model.foundation.backbone_lr_scale"):
        config_from_dict(FitConfig, {"model": {"foundation": {"backbone_lr_scale": 0}}})
