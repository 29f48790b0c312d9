"""Faults during training: a non-finite loss is detected, the step is skipped and counted."""

from __future__ import annotations

import json

import jax
import numpy as np

import tensorprop
from tensorprop.config import BatchConfig, TrainConfig
from tensorprop.data.batching import make_labelled_batches
from tensorprop.data.graph import build_graph
from tensorprop.train.state import init_state, make_optimizer, make_train_step
from tests.conftest import TINY, rocksalt_nacl, wurtzite_zno


def _labelled(c):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(c.n_atoms, 3, 3))
    return c.replace(born_charges=z - z.mean(0), epsilon=np.eye(3) * 3.0)


def test_nan_batch_is_skipped_and_counted():
    model = tensorprop.build_model(TINY, seed=0)
    graphs = [build_graph(_labelled(c), 4.0) for c in (rocksalt_nacl(), wurtzite_zno())]
    batch = make_labelled_batches(graphs, BatchConfig(max_nodes=16, max_edges=512, max_graphs=2))[0][1]
    x = batch.inputs
    poisoned = batch._replace(inputs=x._replace(positions=np.where(np.arange(len(x.positions))[:, None] == 1, np.nan,
                                                                   x.positions).astype(x.positions.dtype)))
    cfg = TrainConfig(max_steps=10, warmup_steps=1, learning_rate=1e-2)
    opt = make_optimizer(cfg)
    step = make_train_step(model.apply, opt, cfg)
    state = init_state(model.params, opt)
    before = jax.tree.map(np.array, state.params)

    state, m = step(state, model.stats, poisoned)
    assert not bool(m["finite"]) and int(state.skipped) == 1 and int(state.step) == 1
    for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(state.params)):
        np.testing.assert_array_equal(a, np.asarray(b))  # untouched: no NaN reached the weights
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(state.ema_params))

    for _ in range(2):  # training goes on with good batches (the first is the warm-up's zero learning rate)
        state, m = step(state, model.stats, batch)
        assert bool(m["finite"]) and int(state.skipped) == 1
    assert any(not np.array_equal(a, np.asarray(b)) for a, b in zip(jax.tree.leaves(before),
                                                                    jax.tree.leaves(state.params)))


def _rattled_set(tmp_path, n=20):
    """n labelled, rattled copies of NaCl and ZnO as an ext-xyz file (a data set of its own)."""
    from tensorprop.data.readers import write_extxyz

    rng = np.random.default_rng(1)
    crystals = []
    for k in range(n):
        c = _labelled(rocksalt_nacl() if k % 2 else wurtzite_zno())
        crystals.append(c.replace(positions=c.positions + rng.normal(scale=0.05, size=c.positions.shape)))
    path = tmp_path / "rattled.xyz"
    write_extxyz(path, crystals)
    return path


def _poisoning(monkeypatch, steps, once: bool):
    """Make fit's batch stream yield a NaN position at the given steps: only the first time
    (a transient fault) or every time the step is replayed (a persistent one)."""
    from tensorprop.train import loop

    real = loop.prepare_training
    fired = set()

    def prepare(*args, **kwargs):
        setup = real(*args, **kwargs)

        def stream(start):
            for step, (epoch, batch) in enumerate(setup.stream(start), start=start + 1):
                if step in steps and not (once and step in fired):
                    fired.add(step)
                    x = batch.inputs
                    batch = batch._replace(inputs=x._replace(positions=np.full_like(x.positions, np.nan)))
                yield epoch, batch
        return setup._replace(stream=stream)

    monkeypatch.setattr(loop, "prepare_training", prepare)


def _fit_config(path, **train):
    from tensorprop.config import FitConfig, config_from_dict

    return config_from_dict(FitConfig, {"model": {**TINY, "num_layers": 1},
                             "batch": {"max_nodes": 32, "max_edges": 1024, "max_graphs": 4},
                             "train": {"max_steps": 30, "warmup_steps": 2, "eval_every": 10, "checkpoint_every": 10,
                                       "nan_policy": "rollback", **train},
                             "data": {"dataset": str(path)}})


def test_nan_rolls_back_to_checkpoint_with_lower_learning_rate(tmp_path, monkeypatch):
    from tensorprop.train.loop import fit

    _poisoning(monkeypatch, {15}, once=True)
    lines = []
    summary = fit(_fit_config(_rattled_set(tmp_path)), tmp_path / "run", progress=False, log=lines.append)
    assert summary["rollbacks"] == 1 and summary["lr_scale"] == 0.5 and summary["steps"] == 30
    assert summary["skipped_steps"] == 0  # the skipped step was undone by the rollback
    assert any("non-finite loss or gradient at step(s) [15]" in ln for ln in lines)
    assert any("rollback 1/5: back to step 10, learning rate x0.5" in ln for ln in lines)
    steps = [json.loads(ln)["step"] for ln in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [10, 20, 30]  # nothing duplicated by the replay
    model = tensorprop.load_model(tmp_path / "run" / "model.npz")
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(model.params))


def test_persistent_nan_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    from tensorprop.train.loop import fit

    _poisoning(monkeypatch, {15}, once=False)
    lines = []
    summary = fit(_fit_config(_rattled_set(tmp_path), max_rollbacks=2), tmp_path / "run", progress=False,
                  log=lines.append)
    assert summary["stopped_by"] == "non-finite loss" and summary["rollbacks"] == 2
    assert summary["lr_scale"] == 0.25
    assert any("stopping: still non-finite after 2 rollback(s)" in ln for ln in lines)
    files = np.load(tmp_path / "run" / "checkpoints" / "last.npz")
    header = json.loads(bytes(files["__meta__"]).decode())
    assert header["step"] == 10  # the good state from before the fault, never overwritten
    assert all(np.all(np.isfinite(files[k])) for k in files.files if k.startswith("leaf_"))


def test_skip_policy_reports_the_step(tmp_path, monkeypatch):
    from tensorprop.train.loop import fit

    _poisoning(monkeypatch, {7}, once=True)
    lines = []
    summary = fit(_fit_config(_rattled_set(tmp_path), nan_policy="skip", max_steps=10), tmp_path / "run",
                  progress=False, log=lines.append)
    assert summary["skipped_steps"] == 1 and summary["rollbacks"] == 0
    assert any("non-finite loss or gradient at step(s) [7]" in ln for ln in lines)
    metrics = [json.loads(ln) for ln in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert metrics[-1]["skipped"] == 1


def test_full_disk_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    """A write that fails with ENOSPC half-way leaves the last checkpoint as it was, no temporary file,
    and a one-line CheckpointError that says so."""
    import errno

    import pytest

    from tensorprop.errors import CheckpointError
    from tensorprop.model_file import atomic_savez

    path = tmp_path / "checkpoints" / "last.npz"
    atomic_savez(path, {"a": np.arange(5)})
    before = path.read_bytes()
    real = np.savez

    def savez_until_disk_full(f, **arrays):
        real(f, **arrays)  # the bytes go out, then the disk fills up
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", savez_until_disk_full)
    with pytest.raises(CheckpointError, match=r"last\.npz: cannot write: No space left on device; the previous "
                                              r"file there is intact"):
        atomic_savez(path, {"a": np.arange(1000)})
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.npz"]  # no temporary file left


def test_full_disk_during_fit_is_a_clear_error(tmp_path, monkeypatch, capsys):
    """The CLI reports the failed checkpoint write on one line (exit 2); the run folder keeps the checkpoint
    written before the disk filled up."""
    import errno

    from tensorprop import model_file
    from tensorprop.cli import main

    data = _rattled_set(tmp_path)
    real = model_file.np.savez
    calls = {"n": 0}

    def fill_disk_on_second_checkpoint(f, **arrays):
        if any(k.startswith("leaf_") for k in arrays):
            calls["n"] += 1
            if calls["n"] == 2:
                raise OSError(errno.ENOSPC, "No space left on device")
        real(f, **arrays)

    monkeypatch.setattr(model_file.np, "savez", fill_disk_on_second_checkpoint)
    run = tmp_path / "run"
    code = main(["fit", "becs-eps", "--data", str(data), "--out", str(run), "--no-progress", "--max-steps", "20",
                 "--model.hidden_irreps", "4x0e+2x1o+2x1e+2x2e", "--model.num_layers", "1",
                 "--model.radial_hidden", "[8]", "--model.head_irreps", "4x0e+2x1e+2x2e",
                 "--batch.max_nodes", "32", "--batch.max_edges", "1024", "--batch.max_graphs", "4",
                 "--train.warmup_steps", "2", "--train.eval_every", "5", "--train.checkpoint_every", "5"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("tensorprop: error: ") and err.count("\n") == 1
    assert "last.npz: cannot write: No space left on device; the previous file there is intact" in err
    files = np.load(run / "checkpoints" / "last.npz")
    assert json.loads(bytes(files["__meta__"]).decode())["step"] == 5


def test_metrics_log_cut_off_by_a_kill_is_repaired(tmp_path):
    """Resume keeps the metrics lines up to the checkpoint's step; a half-written last line goes too."""
    from tensorprop.train.run_folder import truncate_metrics

    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 10, "a": 1}\n{"step": 20, "a": 2}\n{"step": 30, "a": 3}\n{"step": 40, "a"')
    truncate_metrics(path, 30)
    assert [json.loads(x)["step"] for x in path.read_text().splitlines()] == [10, 20, 30]
    truncate_metrics(path, 20)
    assert [json.loads(x)["step"] for x in path.read_text().splitlines()] == [10, 20]
