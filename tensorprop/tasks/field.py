"""Field energy E(R, F) of molecules in uniform fields (``model.task: field``): trained on energies, forces and
dipoles at each structure's own field (and Z* where labelled); its tensors are derivatives of that energy."""

from __future__ import annotations

import dataclasses

import numpy as np

from ..data.batching import training_stream
from ..data.field_batching import FieldInputs, field_collate, make_field_batches
from ..errors import ConfigError
from ..nn.backbone import NUM_ELEMENTS
from ..outputs import BORN_CHARGES, EPSILON
from ..outputs import ENERGY
from ..train.data import build_graphs, load_training_data
from ..train.field_losses import field_loss_fn
from ..train.model_evaluation import evaluate_field
from .base import TrainingData, refuse_extra_train, register
from .tensors import TensorsTask, field_model_response

__all__ = ["FieldTask", "FIELD", "energy_shift_per_species"]


def energy_shift_per_species(crystals) -> np.ndarray:
    """Least-squares reference energy of each element (eV), E ~ sum_i e_Z(i), from labelled structures (119,)."""
    rows = [(np.bincount(c.numbers, minlength=NUM_ELEMENTS), float(c.info[ENERGY])) for c in crystals
            if c.info.get(ENERGY) is not None]
    shift = np.zeros(NUM_ELEMENTS, np.float32)
    if rows:
        counts = np.array([r[0] for r in rows], float)
        present = counts.sum(0) > 0
        sol = np.linalg.lstsq(counts[:, present], np.array([r[1] for r in rows]), rcond=None)[0]
        shift[present] = sol
    return shift


@dataclasses.dataclass(frozen=True)
class FieldTask(TensorsTask):
    """The field-energy network of :class:`~tensorprop.tasks.tensors.TensorsTask` (``head: field``) on
    :class:`~tensorprop.data.field_batching.FieldInputs`: everything at each structure's own field."""

    def check_targets(self, config) -> None:
        """``model.targets: [field]`` (energies, forces, dipoles under fields) needs the field head."""
        if config.head != "field":
            raise ConfigError("model.targets [field] (energies/forces/dipoles under fields) needs model.head: field")

    def apply(self, config, params, stats, inputs: FieldInputs) -> dict:
        return field_model_response(config, params, stats, inputs.graph, inputs.field, want=(BORN_CHARGES,))

    def check_fit(self, cfg) -> None:
        refuse_extra_train(cfg, f"model.targets {list(cfg.model.targets)} with head {cfg.model.head!r}")

    def training_data(self, cfg, *, dtype, progress: bool = False) -> TrainingData:
        tc = cfg.train
        data = load_training_data(cfg.data, tc.seed, require_labels=False)
        train_graphs = build_graphs(data.train, cfg.model.cutoff, progress=progress, desc="train graphs")
        valid_graphs = build_graphs(data.valid, cfg.model.cutoff, progress=progress, desc="valid graphs")

        collate = field_collate(list(data.train), train_graphs, cfg.batch, dtype)

        def stream(start):
            return training_stream(train_graphs, cfg.batch, tc.seed, collate, start)

        return TrainingData(data, train_graphs, valid_graphs, data.train.elements,
                            {"dataset": cfg.data.dataset, "n_train": len(data.train)}, stream,
                            make_field_batches(list(data.valid), valid_graphs, cfg.batch, dtype))

    def training_stats(self, stats: dict, data, cfg) -> dict:
        """Adds ``energy_shift`` (per-species reference energies); without Z* in the loss, no Z* in the fixed charges."""
        stats["energy_shift"] = energy_shift_per_species(data.train)
        if cfg.train.born_weight == 0:  # Z* labels unused: keep them out of the fixed charges too
            stats["born_shift"] = np.zeros_like(stats["born_shift"])
        return stats

    def ensemble_member_ok(self, config) -> bool:
        return False


FIELD = register(FieldTask(name="field", model_kind="tensors", outputs=(BORN_CHARGES, EPSILON), loss=field_loss_fn,
                           evaluate=evaluate_field, periodic=False))
