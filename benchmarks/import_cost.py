"""What ``import tensorprop`` and the CLI's start load, and how long it takes, for one or more checkouts.

    python benchmarks/import_cost.py CODE_A [CODE_B ...] [--runs 15]

For each checkout (a folder put first on PYTHONPATH) and each run, in a new process: ``python -X importtime``
of ``import tensorprop`` (the package's cumulative import time) and of the CLI's start (``tensorprop.cli``
imported and its parser built, as every command does, beyond the package). Runs alternate between the
checkouts so that load on a shared machine hits them alike. Also, once per checkout: how many tensorprop
modules each loads and which optional dependencies (phonopy, pymatgen, matplotlib, pyscf) are among them.
Prints JSON with the machine and date.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys

OPTIONAL = ("phonopy", "pymatgen", "matplotlib", "pyscf")
CLI_START = "import tensorprop.cli; tensorprop.cli.build_parser()"
LOADED = ("import sys, json; {code}; print(json.dumps(sorted(m for m in sys.modules "
          "if m.split('.')[0] in ('tensorprop',) + {optional})))")


def _run(code_dir: str, code: str, *flags: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=code_dir, MPLBACKEND="Agg")
    return subprocess.run([sys.executable, *flags, "-c", code], env=env, capture_output=True, text=True, check=True)


def import_ms(importtime: str) -> tuple[float, float]:
    """(ms importing the package ``tensorprop``, ms of every other import from the first tensorprop one on) from
    ``-X importtime`` output: the package's cumulative time, and the sum of the cumulative times of the
    top-level lines (one space of indent) from the first ``tensorprop...`` one on, less the package's."""
    rows = [(p[2], int(p[1]) / 1e3) for p in (line.split("|") for line in importtime.splitlines())
            if len(p) == 3 and p[1].strip().isdigit()]
    package = next(ms for name, ms in rows if name.strip() == "tensorprop")
    top = [(name.strip(), ms) for name, ms in rows if not name.startswith("  ")]
    first = next(i for i, (name, _) in enumerate(top) if name.startswith("tensorprop"))
    return package, sum(ms for _, ms in top[first:]) - package


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkouts", nargs="+")
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args(argv)
    times = {c: {"import tensorprop": [], "cli start beyond the package": []} for c in args.checkouts}
    for _ in range(args.runs):
        for c in args.checkouts:
            package, rest = import_ms(_run(c, CLI_START, "-X", "importtime").stderr)
            times[c]["import tensorprop"].append(package)
            times[c]["cli start beyond the package"].append(rest)
    out = {"machine": platform.node(), "cpus": os.cpu_count(), "load": os.getloadavg(),
           "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "runs": args.runs}
    for c in args.checkouts:
        row = {k: {"median_ms": round(statistics.median(v), 1), "min_ms": round(min(v), 1)}
               for k, v in times[c].items()}
        for label, code in (("import tensorprop", "import tensorprop"), ("cli start", CLI_START)):
            mods = json.loads(_run(c, LOADED.format(code=code, optional=OPTIONAL)).stdout)
            row[f"{label}: loads"] = {"tensorprop modules": sum(m.startswith("tensorprop") for m in mods),
                                      "optional": sorted({m.split(".")[0] for m in mods} - {"tensorprop"})}
        out[c] = row
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
