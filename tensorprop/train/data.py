"""Training data: the split, leave-material-out filtering and graphs (the batch stream is
:func:`tensorprop.data.batching.training_stream`)."""

from __future__ import annotations

import warnings
from typing import NamedTuple, Sequence

import numpy as np

from ..config import DataConfig
from ..data.batching import epoch_batches
from ..data.graph import Graph, build_graph
from ..data.molecules import load_molecules
from ..data.registry import CrystalDataset, load_dataset
from ..data.splits import make_split
from ..data.validate import screen_labels
from ..errors import DataError, LabelWarning

__all__ = ["SplitData", "load_training_data", "load_molecule_data", "build_graphs", "epoch_batches"]


class SplitData(NamedTuple):
    train: CrystalDataset
    valid: CrystalDataset
    test: CrystalDataset
    excluded: dict  # formula -> number of structures removed from train+valid
    label_check: dict = {}  # what the label screen found and did (crystal data sets)
    extra_train: tuple = ()  # CrystalDatasets of data.extra_train that join the training part
    extra_report: tuple = ()  # per extra data set: name, indices used, counts left out (split.json)


#: what fit did with structures whose labels break a rule, per data.label_check (the warning's words)
_LABEL_ACTIONS = {"warn": "used as they are (data.label_check: filter or symmetrize acts on them)",
                  "filter": "removed from train and valid", "symmetrize": "made exact"}


def _split_parts(ds: CrystalDataset, cfg: DataConfig, seed: int) -> SplitData:
    """train/valid/test of ``ds``: ``cfg.split`` ("auto": the committed split if the data set has one,
    else a seeded 80/10/10 split; "random"; "even-odd": train on even indices, valid on indices
    1 mod 4, test on 3 mod 4), then formula exclusion and the ``max_train`` subset."""
    if cfg.split == "even-odd":
        idx = np.arange(len(ds))
        parts = [ds.subset(idx[idx % 2 == 0]), ds.subset(idx[idx % 4 == 1]), ds.subset(idx[idx % 4 == 3])]
    else:
        try:
            if cfg.split != "auto":
                raise KeyError(cfg.split)
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


def load_training_data(cfg: DataConfig, seed: int = 0, **reader_kwargs) -> SplitData:
    """Load ``cfg.dataset`` and split it (see :func:`_split_parts`).

    Structures whose reduced formula is in ``cfg.exclude_formulas`` are removed from train and
    valid (they stay in test); ``cfg.max_train`` keeps a seeded subset of the training part.
    """
    data = _split_parts(load_dataset(cfg.dataset, **reader_kwargs), cfg, seed)
    data = _screen_split(data, cfg)
    if not cfg.extra_train:
        return data
    extras, reports = zip(*(_extra_part(name, data, cfg, **reader_kwargs) for name in cfg.extra_train))
    return data._replace(extra_train=extras, extra_report=reports)


def _extra_part(name: str, data: SplitData, cfg: DataConfig, **reader_kwargs) -> tuple:
    """The structures of extra data set ``name`` that may join training: those whose reduced formula is
    neither excluded nor present in the main valid/test parts; labels screened like the main data."""
    ds = load_dataset(name, **reader_kwargs)
    held_out = {c.formula for part in (data.valid, data.test) for c in part}
    excluded = set(cfg.exclude_formulas)
    reason = ["excluded formula" if c.formula in excluded else "formula in valid/test" if c.formula in held_out
              else "" for c in ds]
    keep = np.array([not r for r in reason], bool)
    part = ds.subset(keep)
    part, screen = _screen_part(part, cfg.label_check, cfg)
    if screen.flagged:
        warnings.warn(f"{len(screen.flagged)} structure(s) of extra data set {name} have labels that break the "
                      f"acoustic sum rule or eps symmetry; {_LABEL_ACTIONS[cfg.label_check]}; worst: "
                      f"{'; '.join(screen.worst)}", LabelWarning, stacklevel=3)
    report = {"dataset": name, "indices": list(part.indices),
              "left_out": {r: reason.count(r) for r in sorted(set(reason) - {""})},
              "flagged": list(screen.flagged)}
    return part, report


def _screen_split(data: SplitData, cfg: DataConfig) -> SplitData:
    """Apply ``cfg.label_check`` to every part (``filter`` drops from train and valid only: the test
    split stays whole) and warn once, with the count and the worst structure, when labels break a rule."""
    parts, report = [], {"policy": cfg.label_check, "asr_tolerance": cfg.asr_tolerance,
                         "symmetry_tolerance": cfg.symmetry_tolerance, "worst": []}
    for name, part in zip(("train", "valid", "test"), data[:3]):
        policy = "warn" if (cfg.label_check == "filter" and name == "test") else cfg.label_check
        part, screen = _screen_part(part, policy, cfg)
        report[f"flagged_{name}"] = list(screen.flagged)
        report["worst"] += list(screen.worst)
        parts.append(part)
    n = sum(len(report[f"flagged_{k}"]) for k in ("train", "valid", "test"))
    if n and cfg.label_check != "error":
        warnings.warn(f"{n} structure(s) of {cfg.dataset} have labels that break the acoustic sum rule or eps "
                      f"symmetry; {_LABEL_ACTIONS[cfg.label_check]}; worst: {'; '.join(report['worst'])}",
                      LabelWarning, stacklevel=3)
    return SplitData(*parts, excluded=data.excluded, label_check=report)


def _screen_part(part: CrystalDataset, policy: str, cfg: DataConfig):
    """(part after ``policy``, the screen): ``filter`` drops flagged structures, ``symmetrize`` fixes them."""
    screen = screen_labels(part, part.source or part.name, part.indices, policy=policy,
                           asr_tol=cfg.asr_tolerance, symmetry_tol=cfg.symmetry_tolerance)
    if policy == "filter":
        part = part.subset(list(screen.kept))
    elif policy == "symmetrize" and screen.flagged:
        part = CrystalDataset(screen.crystals, name=part.name, source=part.source, indices=part.indices)
    return part, screen


def load_molecule_data(cfg: DataConfig, seed: int = 0) -> SplitData:
    """Molecules of ``cfg.dataset`` (an ESP ``.npz``, a molecule ext-xyz, or ``water-dipoles``), split
    like :func:`load_training_data` (a seeded 80/10/10 split unless ``cfg.split`` says otherwise)."""

    molecules = load_molecules(cfg.dataset)
    return _split_parts(CrystalDataset(molecules, name=str(cfg.dataset), source=str(cfg.dataset)), cfg, seed)


def build_graphs(crystals: Sequence, cutoff: float, *, progress: bool = False, desc: str = "graphs") -> list[Graph]:
    """Neighbour graphs of every structure (errors name the structure's index in its file)."""
    items = list(crystals)
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(items, desc=desc, unit="struct", leave=False)
    indices = getattr(crystals, "indices", range(len(crystals)))
    return [build_graph(c, cutoff, index=int(i)) for c, i in zip(items, indices)]
