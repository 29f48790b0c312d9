"""Wall time of energy + forces with the Nequix foundation calculator on CPU.

    cd /path/to/tensorprop && TENSORPROP_DATA_DIR=../shared/datasets python benchmarks/foundation_speed.py [MODEL]

For rattled rock-salt NaCl supercells of 64 and 216 atoms (conventional cell a = 5.64 A, 2x2x2 and 3x3x3):
the first call (neighbour graph + jit compile + run) and the warm call (new positions, same padded shape:
median of 3), as wall time and as this process's CPU time (all threads; a better figure when other jobs share
the cores). Prints one line per size.
"""

from __future__ import annotations

import sys
import time

import numpy as np
from ase.build import bulk

from tensorprop.foundation import calculator


def main(model: str = "nequix-mp-1-pft") -> None:
    calc = calculator(model)
    for reps in (2, 3):
        atoms = bulk("NaCl", "rocksalt", a=5.64, cubic=True) * (reps, reps, reps)
        atoms.rattle(0.02, seed=0)
        atoms.calc = calc
        t0, c0 = time.perf_counter(), time.process_time()
        atoms.get_forces()
        first, first_cpu = time.perf_counter() - t0, time.process_time() - c0
        warm, warm_cpu = [], []
        for k in range(3):
            atoms.positions += np.random.default_rng(k).normal(0.0, 0.01, atoms.positions.shape)
            t0, c0 = time.perf_counter(), time.process_time()
            atoms.get_forces()
            warm.append(time.perf_counter() - t0)
            warm_cpu.append(time.process_time() - c0)
        print(f"{model}: {len(atoms)} atoms, padded (nodes, edges) {calc.sizes[:2]}: first call {first:.1f} s wall "
              f"/ {first_cpu:.1f} s CPU (graph + compile + run), warm {np.median(warm):.2f} s wall / "
              f"{np.median(warm_cpu):.2f} s CPU (median of 3)", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:2])
