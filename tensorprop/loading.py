"""``load_model``: a model file (or run folder, or the bundled model) -> the model object its ``model_kind`` names.

Each model class registers the kind of file it reads (:func:`register_kind`) where it is defined
(``tensors``: :class:`~tensorprop.api.TensorModel`, ``charges``: :class:`~tensorprop.charges.ChargeModel`,
``foundation``: :class:`~tensorprop.foundation_model.FoundationTensorModel`, ``ensemble``:
:class:`~tensorprop.ensemble.EnsembleModel`); importing :mod:`tensorprop` registers them all.
This module imports none of them, so any of them can load files through it.
"""

from __future__ import annotations

from pathlib import Path

from .errors import CheckpointError
from .model_file import read_model_file

__all__ = ["load_model", "register_kind", "MODEL_FILE_KINDS", "BUNDLED_MODEL"]

#: model-file kind -> the class whose ``from_file_contents`` reads it
MODEL_FILE_KINDS: dict[str, type] = {}
#: the pretrained model shipped with the package
BUNDLED_MODEL = Path(__file__).parent / "pretrained" / "becs-eps.npz"


def register_kind(kind: str, cls: type) -> type:
    """Make :func:`load_model` read files of ``model_kind == kind`` with ``cls.from_file_contents``."""
    MODEL_FILE_KINDS[kind] = cls
    return cls


def load_model(path: str | Path | None = None):
    """Load a trained model file (a :class:`~tensorprop.api.TensorModel`, or the
    :class:`~tensorprop.charges.ChargeModel`, :class:`~tensorprop.foundation_model.FoundationTensorModel` or
    :class:`~tensorprop.ensemble.EnsembleModel` the file holds); a run folder means its ``model.npz``; with no
    path (or ``"default"``), the pretrained model bundled with the package."""
    if path is None or str(path) == "default":
        if not BUNDLED_MODEL.is_file():
            raise CheckpointError(f"{BUNDLED_MODEL}: no pretrained model is bundled with this installation")
        path = BUNDLED_MODEL
    path = Path(path)
    if path.is_dir():
        path = path / "model.npz"
    contents = read_model_file(path)
    kind = contents[2].get("model_kind", "tensors")
    if kind not in MODEL_FILE_KINDS:
        raise CheckpointError(f"{path}: unknown model kind {kind!r} (this tensorprop reads "
                              f"{', '.join(sorted(MODEL_FILE_KINDS))})")
    return MODEL_FILE_KINDS[kind].from_file_contents(path, *contents)
