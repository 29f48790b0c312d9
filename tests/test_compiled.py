"""Compile once: one jitted function per architecture, ensembles vmapped, the persistent compilation cache."""

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tensorprop
from tensorprop.compiled import TRACES, cache_dir
from tensorprop.physics.tensors import log_epsilon
from tests.conftest import TINY, rocksalt_nacl, triclinic, wurtzite_zno

ensemble_module = importlib.import_module("tensorprop.ensemble")  # the module (tensorprop.ensemble is a function)
ONE_LAYER = {**TINY, "num_layers": 1}  # an architecture of this file's own: its trace counts start at zero here


@pytest.mark.slow
def test_a_second_model_of_the_same_architecture_compiles_nothing(monkeypatch, tmp_path):
    # traced computations of this test's own: another worker may have put this architecture's trace on disk
    monkeypatch.setenv("TENSORPROP_CACHE_DIR", str(tmp_path))
    first = tensorprop.build_model(ONE_LAYER, seed=11)
    key = ("tensors", first.config)
    first.predict(triclinic())
    traced = TRACES[key]
    assert traced >= 1
    second = tensorprop.build_model(ONE_LAYER, seed=12)  # another instance, other weights
    out = second.predict(triclinic())
    assert TRACES[key] == traced  # same architecture and padded shape: the compiled function is reused
    assert second._apply is first._apply
    assert np.abs(out["born_charges"] - first.predict(triclinic())["born_charges"]).max() > 1e-3  # its own weights
    # a loaded copy is the same architecture too
    tensorprop.load_model(second.save(Path(os.environ.get("TMPDIR", "/tmp")) / f"tp-compiled-{os.getpid()}.npz")
                          ).predict(triclinic())
    assert TRACES[key] == traced


def test_one_or_two_structures_compile_one_shape():
    model = tensorprop.build_model(ONE_LAYER, seed=13)
    key = ("tensors", model.config)
    before = TRACES[key]
    model.predict_many([rocksalt_nacl()])
    model.predict_many([rocksalt_nacl(5.5)])  # same atom count, a few more or fewer edges: same bucket
    model.predict_many([rocksalt_nacl(), wurtzite_zno()])
    assert TRACES[key] - before <= 2


@pytest.fixture(scope="module")
def same_architecture_members():
    members = []
    for seed in (21, 22, 23):
        m = tensorprop.build_model(TINY, seed=seed)
        m.stats["born_scale"] = m.stats["born_scale"] * 4.0
        members.append(m)
    return members


@pytest.mark.slow
def test_vmapped_ensemble_equals_the_member_by_member_mean(same_architecture_members, monkeypatch, tmp_path):
    monkeypatch.setenv("TENSORPROP_CACHE_DIR", str(tmp_path))  # nothing traced on disk by another worker
    members = same_architecture_members
    ens = tensorprop.ensemble(members)
    key = ("ensemble", members[0].config)  # the vmapped function of the members' one architecture
    crystals = [triclinic(), wurtzite_zno()]
    before = TRACES[key]
    got = ens.predict_many(crystals)
    assert TRACES[key] - before == 1  # three members, one compiled function for the padded shape
    for crystal, out in zip(crystals, got):
        outs = [m.predict(crystal) for m in members]
        born = np.mean([o["born_charges"] for o in outs], axis=0)
        np.testing.assert_allclose(out["born_charges"], born, atol=2e-5)
        assert np.abs(outs[0]["born_charges"] - born).max() > 1e-2  # the members differ: the mean is a real test
        spread = np.sqrt(sum(((o["born_charges"] - born) ** 2).sum((1, 2)) for o in outs) / 27)
        np.testing.assert_allclose(out["born_charges_spread"], spread, rtol=1e-4)
        log_mean = np.mean([log_epsilon(o["epsilon"]) for o in outs], axis=0)
        np.testing.assert_allclose(log_epsilon(out["epsilon"]), log_mean, atol=2e-4)
    # members one after another (what a very large structure gets) give the same numbers
    sequential_edges = ensemble_module.SEQUENTIAL_EDGES
    monkeypatch.setattr(ensemble_module, "SEQUENTIAL_EDGES", 0)
    for seq, out in zip(ens.predict_many(crystals), got):
        for k in out:
            np.testing.assert_allclose(seq[k], out[k], atol=2e-5, err_msg=k)
    # a second ensemble of the same member architectures reuses the compiled function
    monkeypatch.setattr(ensemble_module, "SEQUENTIAL_EDGES", sequential_edges)
    traced = TRACES[key]
    tensorprop.ensemble(members[::-1]).predict_many(crystals)
    assert TRACES[key] == traced


def test_cache_dir_setting(monkeypatch, tmp_path):
    monkeypatch.setenv("TENSORPROP_COMPILATION_CACHE", "off")
    assert cache_dir() is None
    monkeypatch.delenv("TENSORPROP_COMPILATION_CACHE")
    monkeypatch.setenv("TENSORPROP_CACHE_DIR", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c" / "jax"  # beside the data sets, models and features of the one cache
    monkeypatch.delenv("TENSORPROP_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "tensorprop" / "jax"


CORRUPT_SCRIPT = """
import json, sys, warnings
from pathlib import Path
import jax
import tensorprop
from tensorprop import compiled
from tests.conftest import TINY, triclinic

cache = Path(sys.argv[1])
model = tensorprop.build_model(TINY, seed=5)
first = model.predict(triclinic())["born_charges"]
entries = [p for p in cache.rglob("*") if p.is_file()]
for p in entries:  # every entry now garbage: the next process (or a cleared jit cache) must rebuild, not crash
    p.write_bytes(b"not an executable" * 7)
jax.clear_caches()
compiled._FUNCTIONS.clear()
with warnings.catch_warnings(record=True):
    warnings.simplefilter("always")
    again = tensorprop.build_model(TINY, seed=5).predict(triclinic())["born_charges"]
print(json.dumps({"entries": len(entries), "same": bool(abs(first - again).max() < 1e-6)}))
"""


@pytest.mark.slow
def test_a_corrupt_compilation_cache_does_not_break_predict(tmp_path):
    cache = tmp_path / "cache"
    env = {**os.environ, "TENSORPROP_CACHE_DIR": str(cache), "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")])}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    run = subprocess.run([sys.executable, "-c", CORRUPT_SCRIPT, str(cache)], env=env, capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1], timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["entries"] >= 1  # the cache was used (and then corrupted)
    assert result["same"]
    # a cache folder that cannot be a folder (a file is in the way): predict works without the cache
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code = ("import tensorprop; from tests.conftest import TINY, triclinic; "
            "print(tensorprop.build_model(TINY).predict(triclinic())['born_charges'].shape)")
    run = subprocess.run([sys.executable, "-c", code], env={**env, "TENSORPROP_CACHE_DIR": str(blocker / "sub")},
                         capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1], timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "(4, 3, 3)" in run.stdout and "compilation cache folder unusable" in run.stderr


@pytest.mark.slow
def test_memory_estimate_is_measured_on_the_model_and_readable(same_architecture_members):
    from tensorprop.memory import bytes_per_edge, format_bytes, prediction_bytes

    assert format_bytes(512) == "512 B" and format_bytes(3 * 2**20) == "3 MiB"
    assert format_bytes(2.27e4 * 2**20) == "22.2 GiB"
    members = same_architecture_members
    per_edge = bytes_per_edge(members[0])
    assert 100 < per_edge < 1e6  # bytes per padded edge of this tiny network
    wider = tensorprop.build_model({**TINY, "hidden_irreps": "24x0e + 8x0o + 8x1o + 8x1e + 4x2e + 4x2o"})
    assert bytes_per_edge(wider) > per_edge  # the estimate follows the architecture
    ens = tensorprop.ensemble(members)
    small, large = 1000, ensemble_module.SEQUENTIAL_EDGES * 2
    np.testing.assert_allclose(prediction_bytes(ens, small), 3 * prediction_bytes(members[0], small))  # at once
    np.testing.assert_allclose(prediction_bytes(ens, large), prediction_bytes(members[0], large))  # one by one


def test_parameter_shapes_are_kept_per_architecture_and_a_corrupt_entry_is_rebuilt(monkeypatch, tmp_path):
    from tensorprop.compiled import cached_per_architecture

    monkeypatch.setenv("TENSORPROP_CACHE_DIR", str(tmp_path))
    shapes = {"linear": {"w": (3, 4), "b": (4,)}}
    made = []
    make = lambda: made.append(1) or shapes  # noqa: E731
    assert cached_per_architecture("param_shapes", ("arch", 1), make) == shapes
    assert cached_per_architecture("param_shapes", ("arch", 1), make) == shapes  # read back: tuples, not lists
    assert len(made) == 1
    (entry,) = (tmp_path / "shapes").glob("param_shapes-*.json")
    entry.write_text("{not json")
    assert cached_per_architecture("param_shapes", ("arch", 1), make) == shapes  # rebuilt, not a crash
    assert cached_per_architecture("param_shapes", ("arch", 2), make) == shapes  # another architecture: its own
    assert len(made) == 3
    monkeypatch.setenv("TENSORPROP_COMPILATION_CACHE", "off")
    cached_per_architecture("param_shapes", ("arch", 1), make)
    assert len(made) == 4


@pytest.mark.slow
def test_a_traced_network_is_kept_on_disk_and_a_new_function_does_not_trace_it_again(monkeypatch, tmp_path):
    from tensorprop import compiled

    monkeypatch.setenv("TENSORPROP_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("TENSORPROP_COMPILATION_CACHE", raising=False)
    config = {**TINY, "num_layers": 1, "num_radial_basis": 5}  # this test's own architecture: nothing in memory
    first = tensorprop.build_model(config, seed=31)
    key = ("tensors", first.config)
    expected = first.predict(triclinic())["born_charges"]
    assert TRACES[key] == 1
    (entry,) = (tmp_path / "exported").glob("*.bin")
    monkeypatch.delitem(compiled._FUNCTIONS, key)  # what a new process starts with
    again = tensorprop.build_model(config, seed=31).predict(triclinic())["born_charges"]
    assert TRACES[key] == 1  # read from disk, not traced
    np.testing.assert_array_equal(again, expected)
    entry.write_bytes(b"garbage")  # an unreadable entry: traced again with a warning, same numbers
    monkeypatch.delitem(compiled._FUNCTIONS, key)
    with pytest.warns(UserWarning, match="unreadable traced computation"):
        again = tensorprop.build_model(config, seed=31).predict(triclinic())["born_charges"]
    assert TRACES[key] == 2
    np.testing.assert_array_equal(again, expected)
    assert entry.read_bytes() != b"garbage"  # rewritten


def test_a_file_whose_parameters_do_not_fit_its_config_is_refused_naming_it(monkeypatch, tmp_path):
    """Parameter shapes unknown (nothing traced, empty cache): load_model defers the check to the first
    prediction, whose trace refuses the file; once the shapes are known, load_model refuses it at once."""
    from tensorprop.api import param_shapes
    from tensorprop.errors import CheckpointError
    from tensorprop.model_file import read_model_file, write_model_file

    monkeypatch.setenv("TENSORPROP_CACHE_DIR", str(tmp_path))
    model = tensorprop.build_model({**TINY, "num_layers": 1, "num_radial_basis": 7}, seed=5)  # this test's own
    params, stats, meta = read_model_file(model.save(tmp_path / "good.npz"))
    module = sorted(params)[0]
    name = sorted(params[module])[0]
    params[module][name] = np.concatenate([params[module][name]] * 2, axis=-1)  # one weight of another shape
    bad = write_model_file(tmp_path / "bad.npz", params, stats, meta)
    loaded = tensorprop.load_model(bad)  # shapes not known without a trace: not checked yet
    with pytest.raises(CheckpointError, match=r"bad\.npz: parameter shapes do not match .*retrieved shape"):
        loaded.predict(triclinic())
    param_shapes(model.config)
    with pytest.raises(CheckpointError, match=r"bad\.npz: parameter shapes do not match the network"):
        tensorprop.load_model(bad)


WARM_LOAD_SCRIPT = """
import json, sys
import tensorprop
imported_at_import = "e3nn_jax" in sys.modules
model = tensorprop.load_model()  # the bundled ensemble: own backbones and heads on embedded Nequix weights
print(json.dumps({"at_import": imported_at_import, "after_load": "e3nn_jax" in sys.modules,
                  "members": len(model.members)}))
"""


@pytest.mark.slow
def test_a_warm_load_of_the_bundled_model_imports_no_e3nn(tmp_path):
    """e3nn-jax (about 1 s of imports) is imported on first use (tensorprop._lazy): not by ``import tensorprop``,
    and not by loading a model once its parameter shapes and weight layouts are in the user cache; the first
    load in a cache traces (and needs e3nn)."""
    env = {**os.environ, "TENSORPROP_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    runs = []
    for _ in range(2):
        run = subprocess.run([sys.executable, "-c", WARM_LOAD_SCRIPT], env=env, capture_output=True, text=True,
                             cwd=tmp_path, timeout=600)
        assert run.returncode == 0, run.stderr[-3000:]
        runs.append(json.loads(run.stdout.strip().splitlines()[-1]))
    cold, warm = runs
    assert not cold["at_import"] and not warm["at_import"]
    assert cold["after_load"]  # shapes traced: the cache was empty
    assert not warm["after_load"] and warm["members"] == cold["members"] >= 2
