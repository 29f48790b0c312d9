"""Peak memory of streaming `predict --out FILE.jsonl` against file length (issue 22, beyond one machine).

Usage: python benchmarks/screening_memory.py [N ...]   (default 500 4000 frames; tiny test model, seed 1)

Writes ext-xyz files of N frames (NaCl, ZnO, a 4-atom triclinic cell in turn) under a temporary folder and runs
`python -m tensorprop.cli predict MODEL FILE --out FILE.jsonl` in a fresh process under /usr/bin/time; prints the
maximum resident set size and the wall time of each run, and the peak memory traced by Python while only reading
(iter_structures, every frame parsed) a file of 10x the largest N.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import tensorprop
from tensorprop.data.readers import iter_structures
from tensorprop.data.writers import write_extxyz

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.conftest import TINY, rocksalt_nacl, triclinic, wurtzite_zno  # noqa: E402


def frames(n):
    return [(rocksalt_nacl, wurtzite_zno, triclinic)[k % 3]() for k in range(n)]


def main(sizes):
    tmp = Path(tempfile.mkdtemp(prefix="screening_"))
    model = tensorprop.build_model(TINY, seed=1).save(tmp / "tiny.npz")
    for n in sizes:
        write_extxyz(tmp / f"f{n}.xyz", frames(n))
        t = time.time()
        r = subprocess.run(["/usr/bin/time", "-f", "%M", sys.executable, "-m", "tensorprop.cli", "predict", str(model),
                            str(tmp / f"f{n}.xyz"), "--out", str(tmp / f"f{n}.jsonl")], capture_output=True, text=True)
        print(f"{n} frames: max RSS {int(r.stderr.strip().splitlines()[-1]) // 1024} MiB, {time.time() - t:.0f} s wall "
              f"({r.stdout.strip().splitlines()[-1]})", flush=True)
    big = 10 * max(sizes)
    write_extxyz(tmp / "big.xyz", frames(big))
    next(iter_structures(tmp / "big.xyz"))  # imports and first-call allocations outside the trace
    tracemalloc.start()
    count = sum(1 for _ in iter_structures(tmp / "big.xyz"))
    peak = tracemalloc.get_traced_memory()[1]
    print(f"reading {count} frames ({(tmp / 'big.xyz').stat().st_size / 1e6:.1f} MB): peak traced {peak / 1e6:.2f} MB")


if __name__ == "__main__":
    main([int(x) for x in sys.argv[1:]] or [500, 4000])
