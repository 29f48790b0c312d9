"""Fine-tuned foundation heads (``model.foundation.mode: finetune``): the last Nequix MP-1 layer trained with
tiny heads for 3 steps on a few small crystals, from the command line; then the saved model against the
training run's own figures, the checkpoint, the physics battery and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from tensorprop import testing as tpt
from tests.conftest import small_phonon_becs_file, triclinic, wurtzite_zno

#: every test here shares a module fixture that fine-tunes a real Nequix layer (compiling its gradient); one
#: xdist group, so that under ``pytest -n 2`` (``--dist loadgroup`` in pyproject.toml) one worker runs them all and
#: the fine-tuning happens once, not once per worker
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("finetune")]

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "foundation-finetune.yaml"


@pytest.fixture(scope="module")
def finetuned(models_dir, tmp_path_factory):
    """(run folder, data file): 3 steps of ``configs/foundation-finetune.yaml`` on nequix-mp-1, tiny heads."""
    from tensorprop.cli import main

    tmp = tmp_path_factory.mktemp("finetune")
    data = small_phonon_becs_file(tmp, max_atoms=4, count=12, name="few.xyz")
    cfg = yaml.safe_load(CONFIG.read_text())
    cfg["model"].update(hidden_irreps="6x0e + 3x1e + 3x2e + 3x1o", head_irreps="4x0e + 2x1e + 2x2e")
    cfg["model"]["foundation"].update(name="nequix-mp-1", channels=4, backbone_lr_scale=1.0)
    cfg["batch"].update(max_nodes=48, max_edges=4096, max_graphs=12)
    cfg["train"].update(warmup_steps=1, eval_every=3, checkpoint_every=3, learning_rate=0.01)
    (tmp / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    run = tmp / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TENSORPROP_CACHE_DIR", str(tmp / "cache"))
        assert main(["fit", "becs-eps", "--config", str(tmp / "cfg.yaml"), "--data", str(data), "--out", str(run),
                     "--max-steps", "3", "--no-progress"]) == 0
    return run, data


def test_last_layer_trained_lower_layers_frozen(finetuned, models_dir):
    import tensorprop
    from tensorprop.foundation import load_foundation_model, read_checkpoint
    from tensorprop.foundation.finetune import flatten_layer

    run, _ = finetuned
    resolved = yaml.safe_load((run / "config.yaml").read_text())["model"]["foundation"]
    assert resolved["mode"] == "finetune" and resolved["finetune_layers"] == 1 and len(resolved["sha256"]) == 64
    assert resolved["feature_irreps"].count("3o") == 3  # the batches carry the outputs of the frozen layers 0-2
    model = tensorprop.load_model(run)
    assert type(model).__name__ == "FoundationTensorModel"
    assert sorted(m for m in model.params if m.startswith("nequix_layer_")) == ["nequix_layer_3"]
    _, _, published = read_checkpoint(models_dir / "nequix-mp-1.nqx")
    tuned, original = model.params["nequix_layer_3"], flatten_layer(published["layers"][3])
    assert set(tuned) == set(original)
    changed = [k for k in tuned if np.abs(np.asarray(tuned[k]) - original[k]).max() > 1e-6]
    assert len(changed) > len(tuned) // 2, "fine-tuning left the last layer's weights as published"
    # the frozen layers (and the in-memory checkpoint training read them from) are the published weights
    in_memory = load_foundation_model("nequix-mp-1")
    for i in range(3):
        for k, w in flatten_layer(published["layers"][i]).items():
            np.testing.assert_array_equal(np.asarray(flatten_layer(in_memory.params["layers"][i])[k]), w)


def test_saved_model_reproduces_training_and_uses_tuned_weights(finetuned, models_dir, capsys):
    import dataclasses

    import tensorprop
    from tensorprop.cli import main
    from tensorprop.foundation.sources import select_layers
    from tensorprop.foundation import read_checkpoint
    from tensorprop.foundation.finetune import flatten_layer

    run, _ = finetuned
    best = json.loads((run / "summary.json").read_text())["best"]
    capsys.readouterr()
    assert main(["evaluate", str(run), "--split", "valid", "--json"]) == 0
    ev = json.loads(capsys.readouterr().out)
    # training validated the EMA weights on cached features; load + predict recomputes everything
    np.testing.assert_allclose(ev["born_mae"], best["valid_born_mae"], rtol=1e-4)
    np.testing.assert_allclose(ev["epsilon_mae"], best["valid_epsilon_mae"], rtol=1e-4)

    model = tensorprop.load_model(run)
    published = flatten_layer(read_checkpoint(models_dir / "nequix-mp-1.nqx")[2]["layers"][3])
    untuned = model.with_params({**model.params, "nequix_layer_3": published})
    c = wurtzite_zno()
    tuned_z, untuned_z = (m.predict_many([c], unseen_elements="warn")[0]["born_charges"] for m in (model, untuned))
    assert np.abs(tuned_z - untuned_z).max() > 1e-5
    # with the published last layer, recomputing it on the model's graph gives the frozen model's numbers (cached path)
    fc = model.config.foundation
    frozen_fc = dataclasses.replace(fc, mode="frozen",
                                    feature_irreps=select_layers(model.source.layer_irreps, fc.layers)[1])
    frozen = type(model)(dataclasses.replace(model.config, foundation=frozen_fc),
                         {k: v for k, v in model.params.items() if k != "nequix_layer_3"}, model.stats,
                         source=model.source)
    np.testing.assert_allclose(frozen.predict(c)["born_charges"], untuned_z, atol=1e-5)


@pytest.mark.parametrize("improper", [False, True])
def test_physics_battery_finetuned(finetuned, improper):
    import tensorprop

    model = tensorprop.load_model(finetuned[0])

    def predict(crystal):
        return model.predict_many([crystal], unseen_elements="warn")[0]

    for c in (triclinic(), wurtzite_zno()):
        tpt.check_rotation(predict, c, tpt.random_rotation(11, improper=improper))
        tpt.check_sum_rule(predict, c)
        tpt.check_epsilon_physical(predict, c)
    if not improper:
        c = wurtzite_zno()
        tpt.check_translation(predict, c, np.array([0.37, -1.21, 2.9]))
        tpt.check_permutation(predict, c, np.array([3, 1, 0, 2]))
        tpt.check_supercell(predict, c, np.diag([2, 1, 1]))


def test_element_outside_the_foundation_set_is_one_line(finetuned, tmp_path, capsys):
    import tensorprop
    from tensorprop.cli import main
    from tensorprop.data.readers import write_extxyz
    from tensorprop.errors import DataError
    from tests.conftest import rocksalt_nacl

    run, _ = finetuned
    poloniumchloride = rocksalt_nacl().replace(numbers=np.array([84, 17]), label="PoCl")
    with pytest.raises(DataError, match=r"PoCl: element\(s\) Po \(Z=84\) outside the foundation model"):
        tensorprop.load_model(run).predict_many([poloniumchloride], unseen_elements="warn")
    write_extxyz(tmp_path / "po.xyz", [poloniumchloride])
    capsys.readouterr()
    assert main(["predict", str(run), str(tmp_path / "po.xyz"), "--allow-unseen-elements"]) == 2
    err = capsys.readouterr().err.strip()  # the unseen-element warning (allowed), then the error
    errors = [line for line in err.splitlines() if line.startswith("tensorprop: error:")]
    assert len(errors) == 1 and "Po (Z=84) outside the foundation model" in errors[0] and "Traceback" not in err


def test_finetune_config_errors_are_one_line(finetuned, tmp_path, capsys):
    from tensorprop.cli import main

    run, data = finetuned
    common = ["fit", "becs-eps", "--config", str(CONFIG), "--data", str(data), "--max-steps", "1", "--no-progress"]
    for flag, value, message in (("--model.cutoff", "5.0", "model.cutoff 5.0 A is below the cutoff of nequix-mp-1"),
                                 ("--model.foundation", "{name: nequix-mp-1, mode: finetune, finetune_layers: 5}",
                                  "model.foundation.finetune_layers: 5 layers, the checkpoint has 4")):
        extra = [] if flag == "--model.foundation" else ["--model.foundation", "{name: nequix-mp-1, mode: finetune}"]
        capsys.readouterr()
        assert main([*common, "--out", str(tmp_path / flag), *extra, flag, value]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1
