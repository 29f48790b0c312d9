"""Training checkpoints: the whole :class:`TrainState` plus a JSON header, written atomically.

The leaves of the state pytree are stored in order as ``leaf_00000``...; loading
unflattens them into the structure of a freshly initialised state of the same config, so
a checkpoint of another architecture or optimiser is refused with a clear message.
Writing goes to a temporary file in the same folder, flushed to disk, then renamed over
the previous checkpoint: a crash or a full disk leaves the old checkpoint intact.
"""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np

from ..errors import CheckpointError
from ..model_file import atomic_savez, read_npz_with_header

__all__ = ["save_checkpoint", "load_checkpoint"]

CHECKPOINT_VERSION = 1


def save_checkpoint(path: str | Path, state, meta: dict) -> Path:
    leaves = jax.device_get(jax.tree.leaves(state))
    arrays = {f"leaf_{i:05d}": np.asarray(x) for i, x in enumerate(leaves)}
    header = {"checkpoint_version": CHECKPOINT_VERSION, **meta}
    arrays["__meta__"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    return atomic_savez(path, arrays)


def load_checkpoint(path: str | Path, template) -> tuple[object, dict]:
    """-> (state with the structure of ``template``, header dict)."""
    files, meta = read_npz_with_header(path, "checkpoint")
    if meta.get("checkpoint_version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"{path}: checkpoint version {meta.get('checkpoint_version')}, "
                              f"this tensorprop reads version {CHECKPOINT_VERSION}")
    leaves, treedef = jax.tree.flatten(template)
    stored = [files.get(f"leaf_{i:05d}") for i in range(len(files))]
    if len(stored) != len(leaves) or any(s is None or s.shape != np.shape(t) for s, t in zip(stored, leaves)):
        raise CheckpointError(f"{path}: the stored training state does not match this config's model/optimiser")
    return jax.tree.unflatten(treedef, [np.asarray(s, dtype=np.asarray(t).dtype) for s, t in zip(stored, leaves)]), meta
