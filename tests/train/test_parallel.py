"""Data-parallel training on two (forced) CPU devices equals one device with the same global batch."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository root

SCRIPT = textwrap.dedent("""
    import json, sys
    import jax, numpy as np
    import tensorprop
    from tensorprop.config import BatchConfig, TrainConfig
    from tensorprop.data.batching import make_labelled_batches
    from tensorprop.data.graph import build_graph
    from tensorprop.train.losses import loss_fn
    from tensorprop.train.parallel import data_mesh, make_parallel_train_step, stack_batches
    from tensorprop.train.state import init_state, make_optimizer
    from tests.conftest import TINY, rocksalt_nacl, triclinic, wurtzite_zno

    assert jax.device_count() == 2, jax.devices()
    rng = np.random.default_rng(0)
    def label(c):
        z = rng.normal(size=(c.n_atoms, 3, 3)); a = rng.normal(size=(3, 3))
        return c.replace(born_charges=z - z.mean(0), epsilon=np.eye(3) * 2 + a @ a.T)
    crystals = [label(c) for c in (rocksalt_nacl(), wurtzite_zno(), triclinic(), triclinic(5))]
    graphs = [build_graph(c, 4.0) for c in crystals]
    budget = BatchConfig(max_nodes=12, max_edges=1024, max_graphs=2)
    batches = [b for _, b in make_labelled_batches(graphs, budget)]
    assert len(batches) == 2
    model = tensorprop.build_model(TINY, seed=0)
    cfg = TrainConfig(max_steps=10, warmup_steps=1, learning_rate=3e-3)
    opt = make_optimizer(cfg)
    out = {}
    for n in (1, 2):
        step = make_parallel_train_step(model.apply, opt, cfg, loss_fn, data_mesh(n))
        state = init_state(jax.tree.map(np.array, model.params), opt)
        for _ in range(3):
            state, m = step(state, model.stats, stack_batches(batches))
        out[n] = [np.asarray(x).ravel().tolist() for x in jax.tree.leaves(state.params)]
        out[f"sharding{n}"] = str(jax.device_put(stack_batches(batches).inputs.positions,
                                                  jax.sharding.NamedSharding(data_mesh(n), jax.sharding.PartitionSpec("data"))).sharding)
    print(json.dumps(out))
""")


def _xla_flags(*extra: str) -> str:
    """XLA_FLAGS for a subprocess: this process's flags (the suite's, see the repository's conftest.py) without
    any forced device count, plus ``extra``."""
    kept = [f for f in os.environ.get("XLA_FLAGS", "").split() if "xla_force_host_platform_device_count" not in f]
    return " ".join(kept + list(extra))


@pytest.mark.slow
def test_two_devices_equal_one_device_with_the_same_global_batch(tmp_path):
    import json

    import numpy as np

    env = {**os.environ, "XLA_FLAGS": _xla_flags("--xla_force_host_platform_device_count=2"), "JAX_PLATFORMS": "cpu"}
    root = ROOT
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, cwd=root,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "data" in out["sharding2"]
    for a, b in zip(out["1"], out["2"]):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    assert any(np.abs(np.asarray(a)).max() > 0 for a in out["1"])


@pytest.mark.slow
def test_fit_with_two_devices_runs_end_to_end(tmp_path):
    """`tensorprop fit ... --train.devices 2` on two forced CPU devices: the CLI path of data parallelism."""
    env = {**os.environ, "XLA_FLAGS": _xla_flags("--xla_force_host_platform_device_count=2"), "JAX_PLATFORMS": "cpu"}
    root = ROOT
    script = textwrap.dedent(f"""
        import numpy as np
        from tensorprop.data.writers import write_extxyz
        from tensorprop.cli import main
        from tests.conftest import rocksalt_nacl, wurtzite_zno, triclinic
        rng = np.random.default_rng(0)
        out = []
        for k in range(10):
            c = (rocksalt_nacl, wurtzite_zno, triclinic)[k % 3]()
            z = rng.normal(size=(c.n_atoms, 3, 3)); a = rng.normal(size=(3, 3))
            out.append(c.replace(born_charges=z - z.mean(0), epsilon=np.eye(3) * 2 + a @ a.T, label=f"s{{k}}"))
        write_extxyz("{tmp_path}/d.xyz", out)
        raise SystemExit(main(["fit", "becs-eps", "--data", "{tmp_path}/d.xyz", "--out", "{tmp_path}/run",
                               "--max-steps", "3", "--no-progress", "--train.devices", "2", "--train.eval_every", "3",
                               "--model.hidden_irreps", "4x0e+2x1o+2x1e+2x2e", "--model.head_irreps", "4x0e+2x1e+2x2e",
                               "--model.num_layers", "1", "--model.radial_hidden", "[8]", "--model.cutoff", "4.0",
                               "--batch.max_nodes", "8", "--batch.max_edges", "1024", "--batch.max_graphs", "2"]))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=root,
                          timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert "data-parallel over 2 devices" in proc.stdout
    assert (tmp_path / "run" / "model.npz").is_file()


WORKER = textwrap.dedent("""
    import json, sys
    import jax, numpy as np
    import tensorprop
    from tensorprop.config import BatchConfig, TrainConfig
    from tensorprop.data.batching import make_labelled_batches
    from tensorprop.data.graph import build_graph
    from tensorprop.train.losses import loss_fn
    from tensorprop.train.parallel import data_mesh, initialize_distributed, make_parallel_train_step, stack_batches
    from tensorprop.train.state import init_state, make_optimizer
    from tests.conftest import TINY, rocksalt_nacl, triclinic, wurtzite_zno

    n_mesh = int(sys.argv[1])
    if n_mesh == 2:
        initialize_distributed()  # from JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID
        assert jax.process_count() == 2 and jax.device_count() == 2 and jax.local_device_count() == 1
    rng = np.random.default_rng(0)
    def label(c):
        z = rng.normal(size=(c.n_atoms, 3, 3)); a = rng.normal(size=(3, 3))
        return c.replace(born_charges=z - z.mean(0), epsilon=np.eye(3) * 2 + a @ a.T)
    crystals = [label(c) for c in (rocksalt_nacl(), wurtzite_zno(), triclinic(), triclinic(5))]
    budget = BatchConfig(max_nodes=12, max_edges=1024, max_graphs=2)
    batches = [b for _, b in make_labelled_batches([build_graph(c, 4.0) for c in crystals], budget)]
    assert len(batches) == 2
    model = tensorprop.build_model({**TINY, "num_layers": 1, "hidden_irreps": "4x0e+2x1o+2x1e+2x2e",
                                    "radial_hidden": [8]}, seed=0)  # smaller than TINY: three compiles
    cfg = TrainConfig(max_steps=10, warmup_steps=1, learning_rate=3e-3)
    opt = make_optimizer(cfg)
    step = make_parallel_train_step(model.apply, opt, cfg, loss_fn, data_mesh(n_mesh))
    state = init_state(jax.tree.map(np.array, model.params), opt)
    for _ in range(3):
        state, m = step(state, model.stats, stack_batches(batches))
    params = [np.asarray(x).ravel().tolist() for x in jax.tree.leaves(state.params)]
    if len(sys.argv) > 2:  # fit's run folder: only process 0 writes (each process here names its own folder)
        from tensorprop.train.run_folder import RunFolder
        run = RunFolder(f"{sys.argv[2]}/run{jax.process_index()}")
        run.path.mkdir(parents=True)
        run.write_summary({"process": jax.process_index()})
        run.save_checkpoint(state, {"step": 3})
    print(json.dumps({"process": jax.process_index(), "loss": float(m["loss"]), "params": params}))
""")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_with_jax_distributed_equal_one_process(tmp_path):
    """train.distributed for real: two processes on 127.0.0.1, one CPU device each, gloo collectives.

    The data-parallel result after 3 steps equals one process on one device with the same global batch, and
    only process 0 writes run-folder files.
    """
    import json

    import numpy as np

    root = ROOT
    base = {**os.environ, "XLA_FLAGS": _xla_flags()}
    base.update(JAX_PLATFORMS="cpu", JAX_CPU_COLLECTIVES_IMPLEMENTATION="gloo")
    port = _free_port()
    procs = []
    try:
        for k in range(2):
            env = {**base, "JAX_COORDINATOR_ADDRESS": f"127.0.0.1:{port}", "JAX_NUM_PROCESSES": "2",
                   "JAX_PROCESS_ID": str(k)}
            procs.append(subprocess.Popen([sys.executable, "-c", WORKER, "2", str(tmp_path)], stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True, env=env, cwd=root))
        outs = [p.communicate(timeout=480) for p in procs]
        single = subprocess.run([sys.executable, "-c", WORKER, "1"], capture_output=True, text=True, env=base,
                                cwd=root, timeout=480)
    finally:
        for p in procs:  # a hung worker never outlives the test
            if p.poll() is None:
                p.kill()
                p.communicate()
    assert single.returncode == 0, single.stderr[-3000:]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    ref = json.loads(single.stdout.strip().splitlines()[-1])
    results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
    assert sorted(r["process"] for r in results) == [0, 1]
    # the run-folder files come from process 0 only
    assert json.loads((tmp_path / "run0" / "summary.json").read_text()) == {"process": 0}
    assert (tmp_path / "run0" / "checkpoints" / "last.npz").is_file()
    assert list((tmp_path / "run1").iterdir()) == []
    assert any(np.abs(np.asarray(a)).max() > 0 for a in ref["params"])
    for r in results:
        np.testing.assert_allclose(r["loss"], ref["loss"], rtol=1e-5)
        for a, b in zip(ref["params"], r["params"]):
            np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
