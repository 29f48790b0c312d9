"""The user-facing molecular charge model: distributed charges, dipole and ESP of molecules.

>>> import numpy as np, tensorprop
>>> from tensorprop.charges import build_charge_model
>>> model = build_charge_model({"hidden_irreps": "8x0e+4x1o", "head_irreps": "8x0e+4x1o", "num_layers": 1},
...                            {"n_dcm": 2})
>>> water = tensorprop.Molecule(numbers=[8, 1, 1], positions=[[0, 0, 0], [0.76, 0.59, 0], [-0.76, 0.59, 0]])
>>> out = model.predict(water)
>>> out["charges"].shape, out["sites"].shape, out["dipole"].shape, round(float(out["charges"].sum()), 6)
((3, 2), (3, 2, 3), (3,), 0.0)
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

from .api import Model
from .config import ChargesConfig, ModelConfig, config_from_dict
from .loading import register_kind
from .outputs import CHARGES
from .tasks import CHARGES_TASK, init_params

__all__ = ["ChargeModel", "build_charge_model", "MODEL_KIND"]

MODEL_KIND = CHARGES_TASK.model_kind


class ChargeModel(Model):
    """A :class:`~tensorprop.api.Model` of the charges task, with the constructor it always had:
    ``ChargeModel(config, charges, params, elements=..., metadata=...)``; its ``load`` refuses other kinds.

    ``predict(molecule)`` returns ``charges`` (n_atoms, n_dcm) e, ``sites`` (n_atoms, n_dcm, 3)
    Angstrom, ``dipole`` (3,) e*Angstrom; :meth:`esp` gives the potential at any points.
    """

    MODEL_KIND = MODEL_KIND

    def __init__(self, config: ModelConfig, charges: ChargesConfig, params, *, elements=None, metadata=None):
        super().__init__(config, params, {}, elements=elements, metadata=metadata, charges=charges)

    @classmethod
    def _create(cls, config, params, stats, *, charges=None, elements=None, metadata=None) -> "ChargeModel":
        return cls(config, charges, params, elements=elements, metadata=metadata)

    @classmethod
    def _wrong_kind(cls, path, kind: str) -> str:
        return f"{path}: not a charge model (kind {kind!r})"


register_kind(MODEL_KIND, ChargeModel)


def init_charge_params(config: ModelConfig, charges: ChargesConfig, seed: int = 0):
    return init_params((config, charges), seed)


def build_charge_model(config: ModelConfig | Mapping | None = None, charges: ChargesConfig | Mapping | None = None,
                       seed: int = 0) -> ChargeModel:
    """A charge model with random weights; ``config``/``charges`` as dataclasses, dicts of their fields, or None."""
    if not isinstance(config, ModelConfig):
        config = config_from_dict(ModelConfig, {"hidden_irreps": "32x0e + 16x1o + 8x2e", "head_irreps": "16x0e + 8x1o",
                                                "cutoff": 4.0, **dict(config or {}), "targets": [CHARGES]})
    else:  # a charge model whatever targets the config names
        config = dataclasses.replace(config, targets=(CHARGES,), task=CHARGES_TASK.name)
    if not isinstance(charges, ChargesConfig):
        charges = config_from_dict(ChargesConfig, dict(charges or {}))
    return ChargeModel(config, charges, init_charge_params(config, charges, seed))
