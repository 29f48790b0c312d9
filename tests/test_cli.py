"""The command line end to end on a tiny model: fit -> evaluate -> predict, interrupt -> resume."""

from __future__ import annotations

import json
import os
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
    from tensorprop.data.readers import read_extxyz, write_extxyz
    from tests.conftest import SHARED

    src = Path(os.environ.get("TENSORPROP_DATA_DIR", SHARED / "datasets")) / "phonon_becs_epsilon.xyz"
    if not src.is_file():
        pytest.skip(f"{src} not found (set TENSORPROP_DATA_DIR)")
    crystals = [c for c in read_extxyz(src)[:200] if c.n_atoms <= 6][:40]
    path = tmp_path_factory.mktemp("data") / "small.xyz"
    write_extxyz(path, crystals)
    return path


def _run_cli(*args):
    return subprocess.Popen([sys.executable, "-m", "tensorprop.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


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


@pytest.mark.parametrize("how", ["SIGINT", "SIGKILL"])
def test_interrupted_then_resumed_equals_uninterrupted(small_data, tmp_path, how):
    """Ctrl-C (clean checkpoint and exit) or SIGKILL (no chance to react: resume from the last periodic
    checkpoint; lines a killed run logged after it are dropped) -> --resume -> the uninterrupted result."""
    common = ["fit", "becs-eps", "--data", str(small_data), "--max-steps", "12", "--no-progress", *TINY_FLAGS]
    straight = tmp_path / "straight"
    assert main([*common, "--out", str(straight)]) == 0

    broken = tmp_path / "broken"
    proc = _run_cli(*common, "--out", str(broken))
    ckpt = broken / "checkpoints" / "last.npz"
    deadline = time.time() + 300
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    if how == "SIGINT":
        proc.send_signal(signal.SIGINT)  # Ctrl-C: checkpoint the current step and exit cleanly
        output = proc.communicate(timeout=300)[0]
        assert proc.returncode == 0, output
        summary = json.loads((broken / "summary.json").read_text())
        assert summary["stopped_by"] == "SIGINT" and summary["steps"] < 12, summary
    else:
        time.sleep(0.3)  # somewhere after the first periodic checkpoint, maybe during the next one
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
