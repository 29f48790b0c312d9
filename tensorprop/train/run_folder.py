"""The run folder of ``fit``: where a run's config, split, metrics, checkpoint, best model and summary live.

Layout::

    RUN/config.yaml          resolved FitConfig (avg_num_neighbors filled in from data)
    RUN/split.json           dataset indices of train/valid/test actually used, excluded formulas,
                             the structures of data.extra_train used (and how many were left out)
    RUN/metrics.jsonl        one JSON line per validation
    RUN/checkpoints/last.npz full training state (atomic; see train/checkpoint.py)
    RUN/model.npz            EMA weights with the best validation loss (a tensorprop model file)
    RUN/summary.json         final figures

Several processes training one model (``train.distributed``): only process 0 writes these files (the others
hold the same replicated state); all of them read the folder (resume, rollback), so it must be on a file system
every process sees.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jax
import yaml

from ..config import FitConfig, config_from_dict, config_to_dict
from ..errors import ConfigError
from ..model_file import read_model_file
from .checkpoint import load_checkpoint, save_checkpoint

__all__ = ["RunFolder", "read_run_config", "truncate_metrics"]


def read_run_config(run: str | Path) -> FitConfig:
    path = Path(run) / "config.yaml"
    if not path.is_file():
        raise ConfigError(f"{path}: no config in run folder {run}")
    return config_from_dict(FitConfig, yaml.safe_load(path.read_text()))


def truncate_metrics(path: Path, step: int) -> None:
    """Keep the metrics lines up to ``step`` (a killed or rolled-back run wrote later ones; a line cut
    off by a kill does not parse and goes too)."""
    if not path.exists():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= step:
                keep.append(line)
        except (ValueError, KeyError, TypeError):
            continue
    path.write_text("".join(line + "\n" for line in keep))


class RunFolder:
    """The files of one run folder (layout in the module docstring). ``writes``: whether this process writes
    them (default: it is process 0 of ``jax.process_count()``, asked at the first write, i.e. after
    ``jax.distributed.initialize``); the write methods of the other processes do nothing."""

    def __init__(self, path: str | Path, *, writes: bool | None = None):
        self.path = Path(path)
        self.checkpoint = self.path / "checkpoints" / "last.npz"
        self.metrics = self.path / "metrics.jsonl"
        self.model = self.path / "model.npz"
        self._writes = writes

    @property
    def writes(self) -> bool:
        if self._writes is None:
            self._writes = jax.process_index() == 0
        return self._writes

    def run_config(self, cfg: FitConfig | None, *, resume: bool, max_steps: int | None) -> FitConfig:
        """The config to train: the folder's own when resuming (``cfg`` ignored), else ``cfg`` (defaults if None),
        refused when the folder already holds a checkpoint; ``max_steps`` overrides ``train.max_steps``."""
        if resume:
            cfg = read_run_config(self.path)
        elif self.checkpoint.exists():
            raise ConfigError(f"{self.path}: run folder already holds a checkpoint; use --resume or another --out")
        cfg = cfg or FitConfig()
        if max_steps is not None:
            cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, max_steps=int(max_steps)))
        return cfg

    def write_start(self, cfg: FitConfig, data) -> None:
        """config.yaml and split.json of a run about to train on ``data`` (SplitData)."""
        if not self.writes:
            return
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / "config.yaml").write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
        (self.path / "split.json").write_text(json.dumps({
            "dataset": cfg.data.dataset, "train": list(data.train.indices), "valid": list(data.valid.indices),
            "test": list(data.test.indices), "excluded_formulas": data.excluded,
            "label_check": data.label_check, "extra_train": list(data.extra_report)}))

    def truncate_metrics(self, step: int) -> None:
        if not self.writes:
            return
        truncate_metrics(self.metrics, step)

    def append_metrics(self, record: dict) -> None:
        if not self.writes:
            return
        with self.metrics.open("a") as f:
            f.write(json.dumps(record) + "\n")

    def save_checkpoint(self, state, header: dict) -> None:
        if not self.writes:
            return
        save_checkpoint(self.checkpoint, state, header)

    def load_checkpoint(self, state):
        """-> (state, header) of the last checkpoint."""
        return load_checkpoint(self.checkpoint, state)

    def best_params(self):
        """The parameters of the best model saved so far (None if there is none)."""
        return read_model_file(self.model)[0] if self.model.exists() else None

    def save_model(self, model) -> None:
        if not self.writes:
            return
        model.save(self.model)

    def write_summary(self, summary: dict) -> None:
        if not self.writes:
            return
        (self.path / "summary.json").write_text(json.dumps(summary, indent=2))
