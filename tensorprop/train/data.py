"""Training data: the split, leave-material-out filtering, graphs and the seeded batch stream."""

from __future__ import annotations

from typing import Iterator, NamedTuple, Sequence

import numpy as np

from ..config import BatchConfig, DataConfig
from ..data.batching import GraphBatch, collate_in_budget, pack
from ..data.graph import Graph, build_graph
from ..data.registry import CrystalDataset, load_dataset
from ..data.splits import make_split
from ..errors import DataError

__all__ = ["SplitData", "load_training_data", "build_graphs", "epoch_batches", "batch_stream"]


class SplitData(NamedTuple):
    train: CrystalDataset
    valid: CrystalDataset
    test: CrystalDataset
    excluded: dict  # formula -> number of structures removed from train+valid


def load_training_data(cfg: DataConfig, seed: int = 0) -> SplitData:
    """Load ``cfg.dataset`` and its committed split (a file path gets a seeded 80/10/10 split).

    Structures whose reduced formula is in ``cfg.exclude_formulas`` are removed from train and
    valid (they stay in test); ``cfg.max_train`` keeps a seeded subset of the training part.
    """
    ds = load_dataset(cfg.dataset)
    try:
        parts = [ds.split(w) for w in ("train", "valid", "test")]
    except (DataError, KeyError, FileNotFoundError):
        split = make_split(len(ds))
        parts = [ds.subset(split[w]) for w in ("train", "valid", "test")]
    excluded = {}
    if cfg.exclude_formulas:
        wanted = set(cfg.exclude_formulas)
        for k in (0, 1):
            keep = np.array([c.formula not in wanted for c in parts[k]], bool)
            for c in np.asarray(list(parts[k]), dtype=object)[~keep]:
                excluded[c.formula] = excluded.get(c.formula, 0) + 1
            parts[k] = parts[k].subset(keep)
    if cfg.max_train and cfg.max_train < len(parts[0]):
        pick = np.sort(np.random.default_rng(seed).choice(len(parts[0]), cfg.max_train, replace=False))
        parts[0] = parts[0].subset(pick)
    return SplitData(*parts, excluded=excluded)


def build_graphs(crystals: Sequence, cutoff: float, *, progress: bool = False, desc: str = "graphs") -> list[Graph]:
    """Neighbour graphs of every structure (errors name the structure's index in its file)."""
    items = list(crystals)
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(items, desc=desc, unit="struct", leave=False)
    indices = getattr(crystals, "indices", range(len(crystals)))
    return [build_graph(c, cutoff, index=int(i)) for c, i in zip(items, indices)]


def epoch_batches(graphs: Sequence[Graph], budget: BatchConfig, seed: int, epoch: int) -> list[np.ndarray]:
    """The batches (graph indices) of one epoch: a permutation seeded by (seed, epoch), then packed."""
    order = np.random.default_rng([seed, epoch]).permutation(len(graphs))
    return pack(graphs, budget, order)


def batch_stream(graphs: Sequence[Graph], budget: BatchConfig, seed: int, start_step: int = 0,
                 dtype=np.float32) -> Iterator[tuple[int, GraphBatch]]:
    """Yield (epoch, padded batch) from global step ``start_step`` on.

    The sequence depends only on (graphs, budget, seed), so a resumed run sees exactly
    the batches the uninterrupted run would have seen.
    """
    epoch, skip = 0, start_step
    while True:
        batches = epoch_batches(graphs, budget, seed, epoch)
        if skip >= len(batches):
            skip -= len(batches)
            epoch += 1
            continue
        for idx in batches[skip:]:
            yield epoch, collate_in_budget([graphs[i] for i in idx], budget, dtype)
        skip = 0
        epoch += 1
