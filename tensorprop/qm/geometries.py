"""Equilibrium-like geometries of small molecules (Angstrom), the seeds of conformer sampling.

Approximate experimental / CCCBDB structures; the generator distorts them, so only the
topology and rough bond lengths matter.
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError

__all__ = ["GEOMETRIES", "reference_geometry", "distorted_conformers", "conformer_jobs"]

GEOMETRIES: dict[str, tuple[list[int], list[list[float]]]] = {
    "water": ([8, 1, 1], [[0.0, 0.0, 0.1173], [0.0, 0.7572, -0.4692], [0.0, -0.7572, -0.4692]]),
    "hf": ([1, 9], [[0.0, 0.0, 0.0], [0.0, 0.0, 0.9168]]),
    "co2": ([6, 8, 8], [[0.0, 0.0, 0.0], [0.0, 0.0, 1.1621], [0.0, 0.0, -1.1621]]),
    "ammonia": ([7, 1, 1, 1], [[0.0, 0.0, 0.1162], [0.0, 0.9397, -0.2711], [0.8138, -0.4699, -0.2711],
                               [-0.8138, -0.4699, -0.2711]]),
    "formaldehyde": ([6, 8, 1, 1], [[0.0, 0.0, -0.5297], [0.0, 0.0, 0.6786], [0.0, 0.9376, -1.1133],
                                    [0.0, -0.9376, -1.1133]]),
    "methane": ([6, 1, 1, 1, 1], [[0.0, 0.0, 0.0], [0.6291, 0.6291, 0.6291], [-0.6291, -0.6291, 0.6291],
                                  [-0.6291, 0.6291, -0.6291], [0.6291, -0.6291, -0.6291]]),
    "methanol": ([6, 8, 1, 1, 1, 1], [[-0.0465, 0.6626, 0.0], [-0.0465, -0.7547, 0.0], [-1.0868, 0.9760, 0.0],
                                      [0.4379, 1.0713, 0.8897], [0.4379, 1.0713, -0.8897], [0.8622, -1.0858, 0.0]]),
    "ethanol": ([6, 6, 8, 1, 1, 1, 1, 1, 1], [[1.1879, -0.3829, 0.0], [0.0, 0.5526, 0.0], [-1.1867, -0.2472, 0.0],
                                              [-1.9237, 0.3850, 0.0], [2.1227, 0.1873, 0.0], [1.1587, -1.0215, 0.8833],
                                              [1.1587, -1.0215, -0.8833], [0.0662, 1.2051, 0.8772],
                                              [0.0662, 1.2051, -0.8772]]),
}


def reference_geometry(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(numbers (n,), positions (n, 3) Angstrom) of a named molecule."""
    if name not in GEOMETRIES:
        raise DataError(name, f"unknown molecule; known: {', '.join(GEOMETRIES)}")
    numbers, positions = GEOMETRIES[name]
    return np.array(numbers), np.array(positions, dtype=float)


def distorted_conformers(name: str, n: int, sigma: float = 0.05, seed: int = 0,
                         min_distance: float = 0.6) -> list[np.ndarray]:
    """``n`` geometries (n_atoms, 3) Angstrom: the reference plus Gaussian displacements of width
    ``sigma`` on every Cartesian coordinate (seeded); draws with two atoms closer than
    ``min_distance`` are redrawn. The molecule keeps its reference orientation."""
    _, ref = reference_geometry(name)
    rng = np.random.default_rng([seed, sum(map(ord, name))])
    out = []
    while len(out) < n:
        x = ref + rng.normal(scale=sigma, size=ref.shape)
        d = np.linalg.norm(x[:, None] - x[None], axis=-1) + 1e9 * np.eye(len(x))
        if d.min() >= min_distance:
            out.append(x)
    return out


def conformer_jobs(molecules, n_conformers: int, sigma: float, seed: int, *, desc: str = "", progress: bool = False):
    """(name, index, numbers, positions) of ``n_conformers`` distorted conformers of each molecule,
    wrapped in a progress bar when asked."""
    jobs = [(name, i, reference_geometry(name)[0], x) for name in molecules
            for i, x in enumerate(distorted_conformers(name, n_conformers, sigma, seed))]
    if progress:
        from tqdm.auto import tqdm

        return tqdm(jobs, desc=desc, unit="conf")
    return jobs
