"""Statistics of the training set that fix constants of the model before training.

- ``born_shift[Z]``: mean of tr(Z*)/3 over training atoms of element Z (e); the network
  then learns the deviation from an element's typical charge.
- ``born_scale[Z]``: root-mean-square of the remaining components for element Z (e),
  floored at 0.1 and falling back to the global value for rare elements.
- ``epsilon_log_shift``: mean of tr(logm(eps - I))/3 over training structures.
- ``avg_num_neighbors``: mean number of edges per atom within the cutoff.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..data.graph import Graph
from ..physics.assemble import default_stats
from ..physics.tensors import log_epsilon

__all__ = ["training_statistics"]


def training_statistics(graphs: Sequence[Graph], *, min_count: int = 5) -> tuple[dict, float]:
    """-> (stats dict as in ``default_stats``, avg_num_neighbors)."""
    stats = default_stats()
    labelled = [g for g in graphs if g.born_charges is not None]
    if labelled:
        numbers = np.concatenate([g.numbers for g in labelled])
        born = np.concatenate([g.born_charges for g in labelled])  # [n_atoms, 3, 3]
        diag = np.trace(born, axis1=1, axis2=2) / 3.0
        counts = np.bincount(numbers, minlength=len(stats["born_shift"]))
        sums = np.bincount(numbers, weights=diag, minlength=len(stats["born_shift"]))
        shift = np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)
        residual = born - shift[numbers][:, None, None] * np.eye(3)
        sq = np.bincount(numbers, weights=(residual**2).mean(axis=(1, 2)), minlength=len(shift))
        global_rms = float(np.sqrt((residual**2).mean()))
        scale = np.where(counts >= min_count, np.sqrt(sq / np.maximum(counts, 1)), global_rms)
        stats["born_shift"] = shift.astype(np.float32)
        stats["born_scale"] = np.maximum(scale, 0.1).astype(np.float32)
    eps = [g.epsilon for g in graphs if g.epsilon is not None]
    if eps:
        logs = log_epsilon(np.stack(eps))
        stats["epsilon_log_shift"] = np.asarray(np.trace(logs, axis1=1, axis2=2).mean() / 3.0, np.float32)
    n_atoms = sum(g.n_nodes for g in graphs)
    avg = sum(g.n_edges for g in graphs) / max(n_atoms, 1)
    return stats, float(avg)
