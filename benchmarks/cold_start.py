"""Cold and warm start of ``tensorprop predict``, compiled shapes and ensemble throughput.

    PYTHONPATH=CODE python benchmarks/cold_start.py [--split all|test|none] [--repeat 1]

1. ``python -c "import tensorprop"`` in a new process (wall seconds, CPU seconds user+sys, peak RSS);
2. ``python -m tensorprop.cli predict default POSCAR`` (2-atom MgO) in a new process with an empty
   compilation cache (``TENSORPROP_CACHE_DIR`` a fresh folder), then again with that cache warm;
   ``--phases``: also the same prediction's phases timed inside a new process, cold and warm
   (import, model load, first predict = trace + XLA compile or their cache reads, run, second predict);
3. in this process, with another fresh cache folder: the bundled model's first ``predict_many`` over
   phonon-becs (``--split``; compile included), a second pass (structures/s) and the number of padded
   shapes compiled for the data set and for one structure (``_cache_size`` of the shared functions).

Children inherit PYTHONPATH, so the same script times any checkout. Prints JSON with the machine and date.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

POSCAR = "MgO\n1.0\n0 2.1 2.1\n2.1 0 2.1\n2.1 2.1 0\nMg O\n1 1\nDirect\n0 0 0\n0.5 0.5 0.5\n"


def timed_child(args: list[str], env: dict) -> dict:
    """Wall seconds, CPU seconds and peak resident memory (MiB) of one child process."""
    t = time.perf_counter()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    if status != 0:
        raise RuntimeError(f"{args} failed: {proc.stderr.read().decode()[-2000:]}")
    return {"wall_s": round(wall, 2), "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            "peak_rss_mib": round(usage.ru_maxrss / 1024)}


PHASES = """
import json, resource, sys, time
marks, last = [], [time.perf_counter(), 0.0]
def mark(name):
    r = resource.getrusage(resource.RUSAGE_SELF)
    cpu, now = r.ru_utime + r.ru_stime, time.perf_counter()
    marks.append({"phase": name, "wall_s": round(now - last[0], 2), "cpu_s": round(cpu - last[1], 2)})
    last[:] = [now, cpu]
import tensorprop
mark("import tensorprop")
from tensorprop.data.readers import read_structures
model = tensorprop.load_model("default")
mark("load_model")
crystal = read_structures([sys.argv[1]])[0]
model.predict(crystal)
mark("first predict (trace + compile, or their disk caches)")
model.predict(crystal)
mark("second predict (run only)")
print(json.dumps(marks))
"""


def phases_child(poscar: Path, env: dict) -> list:
    """Wall and CPU seconds of each phase of one prediction in a new process."""
    run = subprocess.run([sys.executable, "-c", PHASES, str(poscar)], env=env, capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(f"phases failed: {run.stderr[-2000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def compiled_count(model) -> int:
    """Padded shapes compiled so far: by the model's shared function, or for an ensemble by each architecture
    group's (they see the same batches)."""
    fns = [group[0] for group in model.compiled_groups()] if hasattr(model, "compiled_groups") else [model._apply]
    return max(fn._cache_size() if hasattr(fn, "_cache_size") else -1 for fn in fns)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser()
    p.add_argument("--split", default="all", choices=["all", "test", "none"])
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--phases", action="store_true", help="also time the phases of a cold and a warm prediction")
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="tp-cold-"))
    poscar = work / "POSCAR"
    poscar.write_text(POSCAR)
    env = {**os.environ, "TENSORPROP_CACHE_DIR": str(work / "cache")}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    out: dict = {"date": datetime.date.today().isoformat(), "machine": platform.processor() or platform.machine(),
                 "cpus": os.cpu_count(), "load_avg": os.getloadavg()[0]}
    predict = [sys.executable, "-m", "tensorprop.cli", "predict", "default", str(poscar)]
    runs = []
    for _ in range(args.repeat):
        import_run = timed_child([sys.executable, "-c", "import tensorprop"], env)
        env["TENSORPROP_CACHE_DIR"] = str(work / f"cache{len(runs)}")  # empty: a cold start
        cold = timed_child(predict, env)
        print(json.dumps({"import": import_run, "cold_predict": cold}), flush=True)  # partial results as they come
        runs.append({"import": import_run, "cold_predict": cold, "warm_predict": timed_child(predict, env)})
        print(json.dumps(runs[-1]), flush=True)
    out["runs"] = runs
    if args.phases:
        env["TENSORPROP_CACHE_DIR"] = str(work / "cache-phases")
        out["phases"] = {"cold": phases_child(poscar, env), "warm": phases_child(poscar, env)}
        print(json.dumps(out["phases"]), flush=True)
    if args.split != "none":
        os.environ["TENSORPROP_CACHE_DIR"] = str(work / "cache-inprocess")
        import tensorprop

        model = tensorprop.load_model()
        data = tensorprop.load_dataset("phonon-becs")
        structures = list(data) if args.split == "all" else list(data.split("test"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.predict(structures[0])
            one = compiled_count(model)
            t = time.perf_counter()
            model.predict_many(structures, unseen_elements="warn")
            first = time.perf_counter() - t
            print(json.dumps({"first_call_s": round(first, 1), "shapes_one_structure": one}), flush=True)
            t = time.perf_counter()
            model.predict_many(structures, unseen_elements="warn")
            second = time.perf_counter() - t
        out["predict_many"] = {"structures": len(structures), "first_call_s": round(first, 1),
                               "second_call_s": round(second, 1),
                               "structures_per_s": round(len(structures) / second, 1),
                               "shapes_one_structure": one, "shapes_after_data_set": compiled_count(model)}
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
