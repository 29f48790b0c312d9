"""The command line end to end on a tiny model: fit -> evaluate -> predict, interrupt -> resume."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tensorprop.cli import main

TINY_FLAGS = ["--model.hidden_irreps", "4x0e+4x0o+2x1o+2x1e+2x2e+2x2o", "--model.head_irreps", "4x0e+2x1e+2x2e",
              "--model.num_layers", "1", "--model.radial_hidden", "[8]", "--model.cutoff", "4.0",
              "--batch.max_nodes", "64", "--batch.max_edges", "2048", "--batch.max_graphs", "8",
              "--train.warmup_steps", "2", "--train.eval_every", "4", "--train.checkpoint_every", "2"]


@pytest.fixture(scope="module")
def small_data(tmp_path_factory, request) -> Path:
    """40 small crystals of phonon-becs, written as an ext-xyz file of their own."""
    from tests.conftest import small_phonon_becs_file

    return small_phonon_becs_file(tmp_path_factory.mktemp("data"), max_atoms=6, count=40)


def _run_cli(*args):
    return subprocess.Popen([sys.executable, "-m", "tensorprop.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
def test_fit_evaluate_predict(small_data, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["fit", "becs-eps", "--data", str(small_data), "--out", str(run), "--max-steps", "8",
                 "--no-progress", *TINY_FLAGS]) == 0
    for name in ("config.yaml", "split.json", "metrics.jsonl", "model.npz", "summary.json", "checkpoints/last.npz"):
        assert (run / name).is_file(), name
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [4, 8]
    assert all(np.isfinite(m["valid_born_mae"]) and np.isfinite(m["valid_epsilon_mae"]) for m in metrics)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 8 and summary["n_train"] == 32 and summary["n_valid"] == 4

    capsys.readouterr()
    assert main(["evaluate", str(run), "--json"]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert ev["n_structures"] == 4 and ev["born_mae"] > 0 and ev["epsilon_mae"] > 0
    assert (run / "eval_test" / "parity_born.png").stat().st_size > 1000
    assert (run / "eval_test" / "parity_epsilon.png").stat().st_size > 1000

    poscar = tmp_path / "POSCAR"
    poscar.write_text("NaCl\n1.0\n0 2.82 2.82\n2.82 0 2.82\n2.82 2.82 0\nNa Cl\n1 1\nDirect\n0 0 0\n0.5 0.5 0.5\n")
    assert main(["predict", str(run), str(poscar), "--allow-unseen-elements"]) == 0
    text = capsys.readouterr().out
    assert "eps_inf" in text and "Born effective charges" in text and "  0 Na" in text
    # the 4 test structures hold elements the 32 training structures lack: refused unless allowed
    assert main(["predict", str(run), str(small_data)]) == 2
    assert "not in this model's training set" in capsys.readouterr().err
    assert main(["predict", str(run), str(small_data), "--out", str(tmp_path / "pred.json"),
                 "--allow-unseen-elements"]) == 0
    pred = json.loads((tmp_path / "pred.json").read_text())
    assert len(pred) == 40
    z = np.array(pred[0]["born_charges"])
    assert np.abs(z.sum(axis=0)).max() < 1e-5  # acoustic sum rule, exactly by construction


def test_bad_config_key_is_named(small_data, tmp_path, capsys):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("train:\n  learning_rat: 0.1\n")
    assert main(["fit", "becs", "--config", str(cfg), "--data", str(small_data), "--out", str(tmp_path / "r")]) == 2
    assert "unknown key(s) train.learning_rat" in capsys.readouterr().err


def _leaves(path):
    with np.load(path) as z:
        return {k: z[k] for k in z.files if k != "__meta__"}


@pytest.mark.slow
@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM", "SIGKILL"])
def test_interrupted_then_resumed_equals_uninterrupted(small_data, tmp_path, how):
    """Ctrl-C (clean checkpoint and exit) or SIGKILL (no chance to react: resume from the last periodic
    checkpoint; lines a killed run logged after it are dropped) -> --resume -> the uninterrupted result."""
    # 40 steps: with the compilation cache warm (the straight run compiled), the steps after the first checkpoint
    # outlast the moment the kill below needs; at 12 steps an idle machine could finish the run before the kill
    common = ["fit", "becs-eps", "--data", str(small_data), "--max-steps", "40", "--no-progress", *TINY_FLAGS]
    straight = tmp_path / "straight"
    assert main([*common, "--out", str(straight)]) == 0

    broken = tmp_path / "broken"
    proc = _run_cli(*common, "--out", str(broken))
    ckpt = broken / "checkpoints" / "last.npz"
    deadline = time.time() + 300
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    if how in ("SIGINT", "SIGTERM"):
        proc.send_signal(getattr(signal, how))  # Ctrl-C or a batch system's stop: checkpoint, exit cleanly
        output = proc.communicate(timeout=300)[0]
        assert proc.returncode == 0, output
        summary = json.loads((broken / "summary.json").read_text())
        assert summary["stopped_by"] == how and summary["steps"] < 40, summary
    else:
        time.sleep(0.05)  # somewhere after the first periodic checkpoint, maybe during the next one
        proc.kill()
        proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL
        assert not (broken / "summary.json").exists()

    assert main(["fit", "becs-eps", "--resume", str(broken), "--no-progress"]) == 0
    a, b = _leaves(straight / "checkpoints" / "last.npz"), _leaves(ckpt)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(b[k], a[k], rtol=1e-6, atol=1e-7, err_msg=k)
    ma = [json.loads(x) for x in (straight / "metrics.jsonl").read_text().splitlines()]
    mb = [json.loads(x) for x in (broken / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in mb] == [m["step"] for m in ma]
    assert mb[-1]["valid_born_mae"] == pytest.approx(ma[-1]["valid_born_mae"], rel=1e-5)


@pytest.mark.slow
def test_float64_training(small_data, tmp_path):
    """float64 runs in its own process (x64 is a process-wide jax switch)."""
    run = tmp_path / "f64"
    proc = _run_cli("fit", "becs-eps", "--data", str(small_data), "--out", str(run), "--max-steps", "2",
                    "--no-progress", "--train.dtype", "float64", *TINY_FLAGS)
    output = proc.communicate(timeout=600)[0]
    assert proc.returncode == 0, output
    leaves = _leaves(run / "checkpoints" / "last.npz")
    floats = [v for v in leaves.values() if v.dtype.kind == "f"]
    assert floats and all(v.dtype == np.float64 for v in floats)


@pytest.fixture(scope="module")
def broken_labels(small_data, tmp_path_factory) -> Path:
    """small_data with three bad labels: Z* of structures 5 and 9 off the sum rule by 0.3 and 0.8 e,
    eps_inf of structure 12 asymmetric by 0.05."""
    from tensorprop.data.readers import read_extxyz, write_extxyz

    crystals = read_extxyz(small_data)
    for i, shift in ((5, 0.3), (9, 0.8)):
        born = crystals[i].born_charges.copy()
        born[0, 2, 2] += shift
        crystals[i] = crystals[i].replace(born_charges=born)
    eps = crystals[12].epsilon.copy()
    eps[0, 1] += 0.05
    crystals[12] = crystals[12].replace(epsilon=eps)
    path = tmp_path_factory.mktemp("broken") / "broken.xyz"
    write_extxyz(path, crystals)
    return path


@pytest.mark.slow
def test_labels_breaking_rules_warn_filter_or_stop(broken_labels, tmp_path, capsys):
    fit = ["fit", "becs-eps", "--data", str(broken_labels), "--max-steps", "2", "--no-progress", *TINY_FLAGS]
    assert main([*fit, "--out", str(tmp_path / "warn")]) == 0
    err = capsys.readouterr().err
    assert err.count("tensorprop: warning:") == 1 and "3 structure(s)" in err
    assert "broken.xyz, structure 9: Born charges violate the acoustic sum rule by 0.8" in err  # the worst
    assert "structure 12: dielectric tensor is not symmetric" in err
    split = json.loads((tmp_path / "warn" / "split.json").read_text())
    check = split["label_check"]
    flagged = sorted(check["flagged_train"] + check["flagged_valid"] + check["flagged_test"])
    assert check["policy"] == "warn" and flagged == [5, 9, 12]

    assert main([*fit, "--out", str(tmp_path / "filter"), "--data.label_check", "filter"]) == 0
    assert "removed from train and valid" in capsys.readouterr().err
    kept = json.loads((tmp_path / "filter" / "split.json").read_text())
    assert not {5, 9, 12} & set(kept["train"] + kept["valid"])
    assert len(kept["train"]) + len(kept["valid"]) == len(split["train"]) + len(split["valid"]) - len(
        check["flagged_train"] + check["flagged_valid"])
    assert kept["test"] == split["test"]  # the test split stays whole

    assert main([*fit, "--out", str(tmp_path / "error"), "--data.label_check", "error"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tensorprop: error: ") and "broken.xyz, structure 9: Born charges violate" in err
    assert not (tmp_path / "error" / "checkpoints").exists()


def test_symmetrize_makes_labels_exact(broken_labels):
    from tensorprop.config import DataConfig
    from tensorprop.data.validate import acoustic_sum_rule_violation
    from tensorprop.train.data import load_training_data

    from tensorprop.errors import LabelWarning

    with pytest.warns(LabelWarning, match="3 structure.* made exact"):
        data = load_training_data(DataConfig(dataset=str(broken_labels), label_check="symmetrize"))
    assert sum(len(data.label_check[f"flagged_{k}"]) for k in ("train", "valid", "test")) == 3
    with pytest.warns(LabelWarning, match="used as they are"):
        raw = load_training_data(DataConfig(dataset=str(broken_labels)))
    for part, raw_part in zip(data[:3], raw[:3]):
        assert part.indices == raw_part.indices  # nothing dropped
        for c, r in zip(part, raw_part):
            assert acoustic_sum_rule_violation(c.born_charges) < 1e-6
            np.testing.assert_allclose(c.epsilon, c.epsilon.T, atol=1e-9)
            if acoustic_sum_rule_violation(r.born_charges) < 1e-6 and np.allclose(r.epsilon, r.epsilon.T):
                np.testing.assert_array_equal(c.born_charges, r.born_charges)  # good labels untouched


@pytest.mark.slow
def test_backbone_per_target_keeps_each_targets_best(small_data, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["fit", "becs-eps", "--data", str(small_data), "--out", str(run), "--max-steps", "12",
                 "--no-progress", "--model.backbone_per_target", "true", *TINY_FLAGS]) == 0
    import tensorprop

    model = tensorprop.load_model(run)
    assert model.config.backbone_per_target
    assert {"backbone_born_charges", "backbone_epsilon"} <= {k.split("/")[0] for k in model.params}
    per_target = model.metadata["per_target"]
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    for target, key in (("born_charges", "valid_born_mae"), ("epsilon", "valid_epsilon_mae")):
        assert per_target[target][key] == min(m[key] for m in metrics)  # each target's own best evaluation
    out = model.predict(_first_structure(small_data))
    assert np.abs(out["born_charges"].sum(0)).max() < 1e-5


def _first_structure(path):
    from tensorprop.data.readers import read_extxyz

    return read_extxyz(path)[0]


def test_checkpoint_refusals(small_data, tmp_path, capsys):
    """An existing run folder without --resume, a corrupt checkpoint and one of another network are each
    refused with one line naming the file (exit 2), and nothing is overwritten."""
    common = ["fit", "becs-eps", "--data", str(small_data), "--max-steps", "2", "--no-progress"]
    run, other = tmp_path / "run", tmp_path / "other"
    assert main([*common, "--out", str(run), *TINY_FLAGS]) == 0
    ckpt = run / "checkpoints" / "last.npz"
    good = ckpt.read_bytes()
    capsys.readouterr()

    assert main([*common, "--out", str(run), *TINY_FLAGS]) == 2
    assert "run folder already holds a checkpoint; use --resume or another --out" in capsys.readouterr().err
    assert ckpt.read_bytes() == good

    ckpt.write_bytes(good[: len(good) // 2])  # cut off, as by a crash outside tensorprop's atomic write
    assert main(["fit", "becs-eps", "--resume", str(run), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"tensorprop: error: {ckpt}: not a readable tensorprop checkpoint"), err

    wider = [*TINY_FLAGS, "--model.hidden_irreps", "6x0e+4x0o+2x1o+2x1e+2x2e+2x2o"]
    assert main([*common, "--out", str(other), *wider]) == 0
    ckpt.write_bytes((other / "checkpoints" / "last.npz").read_bytes())
    capsys.readouterr()
    assert main(["fit", "becs-eps", "--resume", str(run), "--no-progress"]) == 2
    assert "the stored training state does not match this config's model/optimiser" in capsys.readouterr().err


def _petousis_table(path, crystals_and_eps):
    """A dielectric table in the Petousis/matminer split-JSON layout holding the given structures."""
    import gzip

    columns = ["material_id", "formula", "structure", "e_electronic", "e_total", "band_gap", "n"]
    rows = [[f"test-{i}", c.formula, c.to_pymatgen().as_dict(), json.dumps(eps.tolist()), json.dumps(eps.tolist()),
             1.0, 2.0] for i, (c, eps) in enumerate(crystals_and_eps)]
    with gzip.open(path, "wt") as fh:
        json.dump({"columns": columns, "index": list(range(len(rows))), "data": rows}, fh)
    return path


def test_extra_train_joins_training_without_leaking_held_out_compositions(small_data, tmp_path):
    """data.extra_train: eps-only structures join the training part; those whose formula is excluded or
    in the main valid/test parts are left out and counted; the rest train eps_inf (no Z* loss)."""
    from tensorprop.config import DataConfig
    from tensorprop.data.readers import read_extxyz
    from tensorprop.train.data import load_training_data

    held_out = load_training_data(DataConfig(dataset=str(small_data)))
    valid_formula = held_out.valid[0].formula
    train = list(held_out.train)
    excluded = next(c.formula for c in train if c.formula != valid_formula)
    kept = [c for c in read_extxyz(small_data)
            if c.formula not in {excluded} | {x.formula for x in (*held_out.valid, *held_out.test)}][:5]
    assert kept
    eps = np.diag([3.0, 4.0, 5.0])
    extra = [(held_out.valid[0], eps), (next(c for c in train if c.formula == excluded), eps)]
    extra += [(c, eps + 0.1 * k * np.eye(3)) for k, c in enumerate(kept)]
    table = _petousis_table(tmp_path / "extra.json.gz", extra)
    run = tmp_path / "run"
    assert main(["fit", "becs-eps", "--data", str(small_data), "--out", str(run), "--max-steps", "4", "--no-progress",
                 "--data.extra_train", f"[{table}]", "--exclude-formula", excluded, *TINY_FLAGS]) == 0
    report = json.loads((run / "split.json").read_text())["extra_train"]
    assert len(report) == 1 and report[0]["dataset"] == str(table)
    assert report[0]["indices"] == list(range(2, 2 + len(kept)))
    assert report[0]["left_out"] == {"excluded formula": 1, "formula in valid/test": 1}
    summary = json.loads((run / "summary.json").read_text())
    assert summary["n_extra_train"] == len(kept) and summary["n_train"] == len(train) - sum(
        c.formula == excluded for c in train)

    from tensorprop.config import config_from_dict, FitConfig
    from tensorprop.data.batching import collate_labelled
    from tensorprop.train.loop import prepare_training

    import yaml

    setup = prepare_training(config_from_dict(FitConfig, yaml.safe_load((run / "config.yaml").read_text())),
                             adapt_model=False)
    extra_graphs = setup.train_graphs[-len(kept):]
    assert all(g.born_charges is None for g in extra_graphs)
    np.testing.assert_allclose(extra_graphs[1].epsilon, eps + 0.1 * np.eye(3))
    batch = collate_labelled(extra_graphs[:2] + setup.train_graphs[:1], 64, 2048, 4).labels
    assert batch.born_mask.tolist() == [False, False, True, False]
    assert batch.epsilon_mask[:3].all()


NACL_POSCAR = "NaCl\n1.0\n0 2.82 2.82\n2.82 0 2.82\n2.82 2.82 0\nNa Cl\n1 1\nDirect\n0 0 0\n0.5 0.5 0.5\n"


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory):
    """The tiny test model (no element restriction) as a model file."""
    import tensorprop
    from tests.conftest import TINY

    return tensorprop.build_model(TINY, seed=1).save(tmp_path_factory.mktemp("model") / "tiny.npz")


def test_predict_reads_the_names_users_write(tiny_file, tmp_path, capsys):
    """issue 19.1 and 19.16: NaCl_POSCAR, --model, --format; issue 19.10: a left-handed POSCAR is predicted."""
    (tmp_path / "NaCl_POSCAR").write_text(NACL_POSCAR)
    assert main(["predict", str(tiny_file), str(tmp_path / "NaCl_POSCAR")]) == 0
    assert "  0 Na" in capsys.readouterr().out
    assert main(["predict", "--model", str(tiny_file), str(tmp_path / "NaCl_POSCAR")]) == 0
    assert "  1 Cl" in capsys.readouterr().out
    (tmp_path / "notes.dat").write_text(NACL_POSCAR.replace("NaCl\n", "NaCl\n", 1))
    assert main(["predict", str(tiny_file), str(tmp_path / "notes.dat"), "--format", "vasp"]) == 0
    mirror = NACL_POSCAR.replace("0 2.82 2.82\n2.82 0 2.82\n", "2.82 0 2.82\n0 2.82 2.82\n")  # two vectors swapped
    (tmp_path / "mirror_POSCAR").write_text(mirror)
    capsys.readouterr()
    assert main(["predict", str(tiny_file), str(tmp_path / "mirror_POSCAR")]) == 0, capsys.readouterr().err


def test_predict_refusals_say_what_is_wrong(tiny_file, tmp_path, capsys):
    """issue 19.14: swapped arguments; issue 19.4: a molecule for a crystal model; one line, exit 2."""
    (tmp_path / "POSCAR").write_text(NACL_POSCAR)
    assert main(["predict", str(tmp_path / "POSCAR"), "default"]) == 2
    err = capsys.readouterr().err
    assert "POSCAR: a structure file (vasp), not a model; the model comes first" in err and err.count("\n") == 1
    (tmp_path / "water.xyz").write_text("3\nwater\nO 0 0 0\nH 0.76 0.59 0\nH -0.76 0.59 0\n")
    assert main(["predict", str(tiny_file), str(tmp_path / "water.xyz")]) == 2
    err = capsys.readouterr().err
    assert "not periodic in all three directions" in err and "tensorprop fit charges" in err and err.count("\n") == 1
    assert main(["predict", str(tiny_file)]) == 2
    assert "predict needs a model and at least one structure" in capsys.readouterr().err


def test_fit_flags_have_help_and_their_errors_fits_usage(capsys):
    """issue 19.12: every --section.key flag has its doc, default and allowed values; issue 19.14: a mistyped
    flag gets fit's usage and the close flag; issue 19.6: a negative learning rate is refused before training."""
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--train.learning_rate V Peak learning rate" in text and "default 0.005; > 0" in text
    assert "--data.label_check V" in text and "one of warn, error, filter, symmetrize" in text
    assert "--model.radial_hidden V Hidden widths" in text and "default [64, 64]; >= 1" in text
    with pytest.raises(SystemExit) as exc:
        main(["fit", "becs", "--train.learnig_rate", "0.1"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.startswith("usage: tensorprop fit")
    assert "unrecognized arguments: --train.learnig_rate 0.1 (did you mean --train.learning_rate?)" in err
    assert main(["fit", "becs", "--train.learning_rate", "-1", "--out", "/nonexistent/run"]) == 2
    assert capsys.readouterr().err == "tensorprop: error: train.learning_rate must be > 0, got -1.0\n"


def test_version_and_datasets_without_a_name(capsys):
    """issue 19.16 (--version) and 19.7."""
    import tensorprop

    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"tensorprop {tensorprop.__version__}"
    assert main(["datasets", "fetch"]) == 2
    err = capsys.readouterr().err
    assert "datasets fetch needs a data set name; registered: phonon-becs" in err and "None" not in err


def test_evaluate_takes_model_flag_and_writes_into_a_named_folder(tiny_file, small_data, tmp_path, capsys,
                                                                 monkeypatch):
    """issue 19.16: evaluate --model M --out DIR; without --out a model file's results go to ./eval_NAME_SPLIT."""
    assert main(["evaluate", "--model", str(tiny_file), "--data", str(small_data), "--split", "all", "--json",
                 "--out", str(tmp_path / "ev")]) == 0
    assert json.loads(capsys.readouterr().out)["n_structures"] == 40
    assert (tmp_path / "ev" / "metrics.json").is_file() and (tmp_path / "ev" / "parity_born.png").is_file()
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", str(tiny_file), "--data", str(small_data), "--split", "all", "--json"]) == 0
    assert (tmp_path / "eval_tiny_all" / "metrics.json").is_file()
    assert main(["evaluate"]) == 2
    assert "evaluate needs a model" in capsys.readouterr().err


def test_born_reads_format_flag(tiny_file, tmp_path, capsys):
    """issue 19.1: born takes --format for a file whose name says nothing."""
    (tmp_path / "rocksalt.txt").write_text(NACL_POSCAR)
    assert main(["born", str(tmp_path / "rocksalt.txt"), "--format", "vasp", "--model", str(tiny_file)]) == 0
    assert len(capsys.readouterr().out.splitlines()) >= 3


def test_progress_says_compiling_and_wall_time_continues_after_resume(small_data, tmp_path, capsys):
    """issue 19.13: the bar names the first step's compilation; wall_s in metrics.jsonl counts on from the
    checkpoint's figure after --resume instead of restarting at zero."""
    run = tmp_path / "run"
    assert main(["fit", "becs", "--data", str(small_data), "--out", str(run), "--max-steps", "4", *TINY_FLAGS]) == 0
    assert "fit (compiling the first step)" in capsys.readouterr().err
    ckpt = run / "checkpoints" / "last.npz"
    with np.load(ckpt) as z:
        files = {k: z[k] for k in z.files}
    meta = json.loads(files["__meta__"].tobytes())
    assert 0 < meta["wall_s"] < 1000
    meta["wall_s"] = 1000.0  # as if the first part had taken 1000 s
    files["__meta__"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    with open(ckpt, "wb") as f:
        np.savez(f, **files)
    assert main(["fit", "becs", "--resume", str(run), "--max-steps", "8", "--no-progress"]) == 0
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [4, 8]
    assert metrics[0]["wall_s"] < 1000 < metrics[1]["wall_s"]
    assert json.loads((run / "summary.json").read_text())["wall_s"] > 1000


@pytest.mark.slow
def test_predict_says_when_eps_inf_has_no_ensemble_spread(tiny_file, tmp_path, capsys):
    """issue 19.17: in an ensemble where one member predicts eps_inf (the bundled model's case) the output
    says that eps_inf has no spread instead of printing none silently; Z* keep theirs."""
    import tensorprop
    from tests.conftest import TINY

    born_only = tensorprop.build_model({**TINY, "targets": ["born_charges"]}, seed=2)
    path = tensorprop.ensemble([tensorprop.load_model(tiny_file), born_only]).save(tmp_path / "ens.npz")
    (tmp_path / "POSCAR").write_text(NACL_POSCAR)
    assert main(["predict", str(path), str(tmp_path / "POSCAR")]) == 0
    out = capsys.readouterr().out
    assert "eps_inf (no ensemble spread: one member predicts eps_inf):" in out
    assert "each atom's ensemble spread after the first row" in out
