"""Ensembles that join heads on frozen foundation features with members of tensorprop's own backbone, and
model files that embed the frozen foundation checkpoint (the bundled model's case)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import tensorprop
from tensorprop import testing as tpt
from tensorprop.ensemble import ensemble
from tensorprop.errors import CheckpointError, ConfigError
from tensorprop.physics.tensors import log_epsilon
from tests.conftest import SHARED, TINY, triclinic, wurtzite_zno
from tests.foundation.test_foundation_heads import _tiny_foundation_model
from tests.test_ensemble import _trained_like


@pytest.fixture(scope="module", params=["square", "backbone"])
def mixed(request):
    """A tensors member (own backbone, cutoff 4 A) and a foundation-feature member on the stand-in features:
    heads (square readout) or the own backbone on the features (backbone readout)."""
    own = _trained_like(TINY, 0, elements=None)
    heads = _tiny_foundation_model(request.param)
    return own, heads, ensemble([own, heads])


def test_mixed_ensemble_is_the_mean_of_its_members(mixed):
    own, heads, ens = mixed
    c = triclinic()
    outs = [own.predict(c), heads.predict(c)]
    got = ens.predict(c)
    np.testing.assert_allclose(got["born_charges"], (outs[0]["born_charges"] + outs[1]["born_charges"]) / 2, atol=2e-5)
    want = (log_epsilon(outs[0]["epsilon"]) + log_epsilon(outs[1]["epsilon"])) / 2
    np.testing.assert_allclose(log_epsilon(got["epsilon"]), want, atol=2e-4)
    assert np.abs(outs[0]["born_charges"] - outs[1]["born_charges"]).max() > 1e-2  # the mean is a real test
    assert got["born_charges_spread"].min() > 1e-3 and float(got["epsilon_spread"]) > 1e-4
    # the memory guard measures the foundation member's heads on a batch with features
    from tensorprop.memory import prediction_bytes

    assert prediction_bytes(ens, 1000) == pytest.approx(prediction_bytes(own, 1000) + prediction_bytes(heads, 1000))
    assert prediction_bytes(heads, 1000) > 0


@pytest.mark.parametrize("improper", [False, True])
def test_mixed_ensemble_physics(mixed, improper):
    predict = mixed[2].predict
    for c in (triclinic(), wurtzite_zno()):
        tpt.check_rotation(predict, c, tpt.random_rotation(11, improper=improper))
        tpt.check_translation(predict, c, np.array([0.4, -1.3, 2.2]))
        tpt.check_sum_rule(predict, c)
        tpt.check_epsilon_physical(predict, c)
    c = wurtzite_zno()
    tpt.check_permutation(predict, c, np.arange(c.n_atoms)[::-1])


def test_mixed_ensemble_file_round_trip(mixed, tmp_path):
    ens = mixed[2]
    loaded = tensorprop.load_model(ens.save(tmp_path / "mixed.npz"))
    assert [type(m).__name__ for m in loaded.members] == ["TensorModel", "FoundationTensorModel"]
    c = wurtzite_zno()
    a, b = ens.predict(c), loaded.predict(c)
    for key in ("born_charges", "epsilon", "born_charges_spread"):
        np.testing.assert_array_equal(a[key], b[key])


def test_members_must_read_the_same_features(mixed):
    own, heads, _ = mixed
    fc = dataclasses.replace(heads.config.foundation, sha256="1" * 64)
    other = type(heads)(dataclasses.replace(heads.config, foundation=fc), heads.params, source=heads.source)
    with pytest.raises(ConfigError, match=r"model 2: reads other foundation features .* share one batch of features"):
        ensemble([own, heads, other])
    tuned = type(heads)(dataclasses.replace(heads.config, foundation=dataclasses.replace(
        heads.config.foundation, mode="finetune")), heads.params, source=heads.source)
    with pytest.raises(ConfigError, match="model 1: .* is not a crystal-tensor model"):
        ensemble([own, tuned])
    with pytest.raises(ConfigError, match="not a foundation checkpoint whose weights a model file can embed"):
        heads.embedded()  # the stand-in source has no checkpoint


@pytest.fixture(scope="module")
def nequix_heads():
    if not (SHARED / "models" / "nequix-mp-1.nqx").is_file():
        pytest.skip(f"{SHARED / 'models'}: no nequix-mp-1.nqx")
    return _tiny_foundation_model("square", name="nequix-mp-1")


@pytest.mark.slow
def test_embedded_checkpoint_predicts_without_the_file(nequix_heads, tmp_path, monkeypatch):
    import tensorprop.foundation.lookup as lookup

    from tensorprop.model_file import read_model_file

    own = _trained_like({**TINY, "cutoff": nequix_heads.config.cutoff}, 0, elements=None)
    other_heads = _tiny_foundation_model("square", seed=3, name="nequix-mp-1")
    ens = ensemble([own, nequix_heads, other_heads], embed_foundation=True)
    path = ens.save(tmp_path / "embedded.npz")
    # the checkpoint's 2.8 MB of weights are in it, once for both members that read it
    assert 2_500_000 < path.stat().st_size < 4_000_000
    assert read_model_file(path)[2]["shared_modules"] == {"member2:foundation_checkpoint": "member1:foundation_checkpoint"}
    c = wurtzite_zno()
    want = ens.predict(c)
    # nowhere to find nequix-mp-1.nqx, and no download allowed: the file alone must do
    monkeypatch.setenv("TENSORPROP_DATA_DIR", str(tmp_path / "no-data"))
    monkeypatch.setenv("TENSORPROP_CACHE_DIR", str(tmp_path / "no-cache"))

    def no_download(*args, **kwargs):
        raise AssertionError("the embedded checkpoint was looked up")

    monkeypatch.setattr(lookup, "download_checked", no_download)
    loaded = tensorprop.load_model(path)
    assert loaded.members[1].embed_foundation
    got = loaded.predict(c)
    np.testing.assert_array_equal(got["born_charges"], want["born_charges"])
    np.testing.assert_array_equal(got["epsilon"], want["epsilon"])
    # saved again, it still holds the weights
    again = tensorprop.load_model(loaded.save(tmp_path / "again.npz"))
    np.testing.assert_array_equal(again.predict(c)["born_charges"], want["born_charges"])


def test_damaged_embedded_checkpoint_is_one_line(nequix_heads, tmp_path):
    from tensorprop.foundation_model import EMBEDDED, FoundationTensorModel
    from tensorprop.model_file import read_model_file

    path = nequix_heads.embedded().save(tmp_path / "heads.npz")
    params, stats, meta = read_model_file(path)
    params[EMBEDDED]["0003"] = params[EMBEDDED]["0003"][:-1]
    with pytest.raises(CheckpointError, match=r"heads.npz \(embedded nequix-mp-1\): corrupt checkpoint: weight 4 of"):
        FoundationTensorModel.from_file_contents(path, params, stats, meta)
    params, stats, meta = read_model_file(path)
    meta.pop(EMBEDDED)
    with pytest.raises(CheckpointError, match="heads.npz: embedded foundation weights without a header"):
        FoundationTensorModel.from_file_contents(path, params, stats, meta)


def test_own_members_run_on_the_graph_before_the_features_are_computed(mixed, monkeypatch):
    """The members of tensorprop's own backbone read the graph alone and are prepared (traced, their compile
    started) before the foundation features are computed, once, for the members that read them."""
    own, heads, ens = mixed
    events = []

    class Logged:
        def __init__(self, fn, name):
            self.fn, self.name = fn, name

        def prepare(self, params, stats, batch):
            events.append((self.name, type(batch).__name__))
            return self.fn.prepare(params, stats, batch)

    groups = ens.compiled_groups()
    monkeypatch.setattr(ens, "_groups", [(Logged(fn, "heads" if reads else "own"), p, s, reads)
                                         for fn, p, s, reads in groups])
    compute = ens._feature_reader._network_inputs
    monkeypatch.setattr(ens._feature_reader, "_network_inputs",
                        lambda *a: events.append(("features", None)) or compute(*a))
    got = ens.predict(triclinic())
    assert events == [("own", "GraphBatch"), ("features", None), ("heads", "FeatureBatch")]
    monkeypatch.undo()
    np.testing.assert_array_equal(got["born_charges"], ens.predict(triclinic())["born_charges"])


def _fully_tuned_member(seed: int = 4):
    """Tiny heads on nequix-mp-1 with every layer fine-tuned (``finetune_layers: all``): its layer weights are
    the checkpoint's scaled by 1.05, so that using the checkpoint's instead would show."""
    from tensorprop.api import init_params
    from tensorprop.config import FoundationConfig, ModelConfig
    from tensorprop.foundation.sources import open_source
    from tensorprop.foundation_model import FoundationTensorModel

    source = open_source("nequix-mp-1")
    fc = FoundationConfig(name="nequix-mp-1", sha256=source.sha256, mode="finetune", finetune_layers="all",
                          readout="square", channels=4, feature_irreps="")
    cfg = ModelConfig(foundation=fc, cutoff=source.cutoff, hidden_irreps="6x0e + 3x1e + 3x2e + 3x1o", num_layers=1,
                      head_irreps="4x0e + 2x1e + 2x2e", radial_hidden=(16,), avg_num_neighbors=10.0)
    params = {module: ({k: np.asarray(w) * 1.05 for k, w in weights.items()} if module.startswith("nequix_layer_")
                       else weights) for module, weights in init_params(cfg, seed).items()}
    model = FoundationTensorModel(cfg, params, source=source)
    model.stats["born_scale"] = model.stats["born_scale"] * 5.0
    return model


@pytest.mark.slow
def test_fully_fine_tuned_member_joins_an_ensemble_of_other_cutoffs(nequix_heads, tmp_path, monkeypatch):
    """A member with every Nequix layer fine-tuned reads the graph alone; the ensemble's graph is at the largest
    member cutoff (6 A here, 4 A for the others), and the mean is the members' own predictions'; embedded, the
    file predicts the same with no checkpoint anywhere."""
    import tensorprop.foundation.lookup as lookup

    own = _trained_like(TINY, 0, elements=None)
    tuned = _fully_tuned_member()
    assert own.config.cutoff == nequix_heads.config.cutoff == 4.0 and tuned.config.cutoff == 6.0
    ens = ensemble([own, nequix_heads, tuned], embed_foundation=True)
    assert ens.config.cutoff == 6.0
    c = wurtzite_zno()
    outs = [m.predict(c) for m in (own, nequix_heads, tuned)]
    got = ens.predict(c)
    np.testing.assert_allclose(got["born_charges"], sum(o["born_charges"] for o in outs) / 3, atol=2e-5)
    want = sum(log_epsilon(o["epsilon"]) for o in outs) / 3
    np.testing.assert_allclose(log_epsilon(got["epsilon"]), want, atol=2e-4)
    assert np.abs(outs[2]["born_charges"] - outs[1]["born_charges"]).max() > 1e-2
    tpt.check_rotation(ens.predict, c, tpt.random_rotation(2, improper=True))
    tpt.check_sum_rule(ens.predict, c)

    path = ens.save(tmp_path / "tuned.npz")
    monkeypatch.setenv("TENSORPROP_DATA_DIR", str(tmp_path / "no-data"))
    monkeypatch.setenv("TENSORPROP_CACHE_DIR", str(tmp_path / "no-cache"))

    def no_download(*args, **kwargs):
        raise AssertionError("the embedded checkpoint was looked up")

    monkeypatch.setattr(lookup, "download_checked", no_download)
    monkeypatch.setattr(lookup, "resolve_foundation_model", no_download)
    import tensorprop.foundation.model as foundation_model

    monkeypatch.setattr(foundation_model, "resolve_foundation_model", no_download)
    foundation_model._load.cache_clear()
    loaded = tensorprop.load_model(path)
    assert [type(m).__name__ for m in loaded.members] == ["TensorModel", "FoundationTensorModel",
                                                          "FoundationTensorModel"]
    np.testing.assert_allclose(loaded.predict(c)["born_charges"], got["born_charges"], atol=1e-6)
