"""Reading a Nequix ``.nqx`` checkpoint without the nequix package.

The file is one JSON line (the training config: architecture fields, ``atomic_numbers``, ...) followed
by the network's weights as consecutive ``.npy`` records (``numpy.save``), one per leaf of the equinox
module in its tree order; :func:`tensorprop.foundation.architecture.weight_layout` rebuilds that order
from the config alone. Every problem (missing, truncated or corrupt file, a weight of the wrong shape,
trailing bytes) is one :class:`~tensorprop.errors.CheckpointError` line naming the file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..errors import CheckpointError
from .architecture import NequixArchitecture, weight_layout

__all__ = ["read_checkpoint"]


def _set(tree: dict, path: tuple, value) -> None:
    node = tree
    for key, nxt in zip(path[:-1], path[1:]):
        if isinstance(node, list):
            while len(node) <= key:
                node.append([] if isinstance(nxt, int) else {})
            node = node[key]
        else:
            node = node.setdefault(key, [] if isinstance(nxt, int) else {})
    if isinstance(node, list):
        node.append(value)
    else:
        node[path[-1]] = value


def _read_config(fh, source: str) -> dict:
    line = fh.readline()
    try:
        config = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CheckpointError(f"{source}: not a Nequix checkpoint: the first line is not a JSON config") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{source}: not a Nequix checkpoint: the first line is not a JSON object")
    return config


def read_checkpoint(path: str | os.PathLike) -> tuple[dict, NequixArchitecture, dict]:
    """Read a ``.nqx`` file.

    Returns
    -------
    config : dict
        The JSON config line as written by nequix.
    arch : NequixArchitecture
        The static architecture.
    params : dict
        The weights (float32 numpy arrays) in the pytree of :func:`weight_layout`.

    Raises
    ------
    CheckpointError
        Missing file; not a Nequix checkpoint; truncated or corrupt (a record that does not parse, has
        the wrong shape or is not finite); bytes other than whitespace after the last weight.
    """
    source = os.fspath(path)
    if not Path(source).is_file():
        raise CheckpointError(f"{source}: no such checkpoint file")
    params: dict = {}
    with open(source, "rb") as fh:
        config = _read_config(fh, source)
        arch = NequixArchitecture.from_config(config, source)
        layout = weight_layout(arch)
        for k, (key_path, shape) in enumerate(layout):
            where = f"weight {k + 1} of {len(layout)} ({'/'.join(map(str, key_path))})"
            try:
                value = np.load(fh, allow_pickle=False)
            except EOFError:
                raise CheckpointError(f"{source}: truncated checkpoint: the file ends before {where}") from None
            except (ValueError, OSError) as exc:
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise CheckpointError(f"{source}: corrupt checkpoint at {where}: {first}") from None
            if value.shape != shape:
                raise CheckpointError(f"{source}: corrupt checkpoint: {where} has shape {value.shape}, "
                                      f"expected {shape}")
            if not np.all(np.isfinite(value)):
                raise CheckpointError(f"{source}: corrupt checkpoint: {where} holds non-finite values")
            _set(params, key_path, np.asarray(value, np.float32))
        extra = len(fh.read().rstrip())  # the published nequix-mp-1.nqx ends with one newline
    if extra:
        raise CheckpointError(f"{source}: corrupt checkpoint: {extra} unexpected bytes after the last weight")
    return config, arch, params
