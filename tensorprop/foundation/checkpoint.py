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
from typing import Iterable

import numpy as np

from ..errors import CheckpointError
from .architecture import NequixArchitecture, weight_layout

__all__ = ["read_checkpoint", "params_from_records", "records_of"]


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
    with open(source, "rb") as fh:
        config = _read_config(fh, source)
        arch = NequixArchitecture.from_config(config, source)

        def records():
            for k, (key_path, _) in enumerate(weight_layout(arch)):
                try:
                    yield np.load(fh, allow_pickle=False)
                except EOFError:
                    raise CheckpointError(f"{source}: truncated checkpoint: the file ends before "
                                          f"{_where(arch, k)}") from None
                except (ValueError, OSError) as exc:
                    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                    raise CheckpointError(f"{source}: corrupt checkpoint at {_where(arch, k)}: {first}") from None

        params = params_from_records(arch, records(), source)
        extra = len(fh.read().rstrip())  # the published nequix-mp-1.nqx ends with one newline
    if extra:
        raise CheckpointError(f"{source}: corrupt checkpoint: {extra} unexpected bytes after the last weight")
    return config, arch, params


def _where(arch: NequixArchitecture, k: int) -> str:
    layout = weight_layout(arch)
    return f"weight {k + 1} of {len(layout)} ({'/'.join(map(str, layout[k][0]))})"


def params_from_records(arch: NequixArchitecture, records: Iterable[np.ndarray], source: str) -> dict:
    """The params pytree of ``arch`` from its weights in the checkpoint's leaf order (:func:`weight_layout`).

    ``records``: the arrays, one per leaf, from a ``.nqx`` file or from :func:`records_of`; ``source`` names
    them in errors. CheckpointError: too few records, a wrong shape, non-finite values, too many records."""
    params: dict = {}
    layout = weight_layout(arch)
    records = iter(records)
    for k, (key_path, shape) in enumerate(layout):
        value = next(records, None)
        if value is None:
            raise CheckpointError(f"{source}: truncated checkpoint: no {_where(arch, k)}")
        if value.shape != shape:
            raise CheckpointError(f"{source}: corrupt checkpoint: {_where(arch, k)} has shape {value.shape}, "
                                  f"expected {shape}")
        if not np.all(np.isfinite(value)):
            raise CheckpointError(f"{source}: corrupt checkpoint: {_where(arch, k)} holds non-finite values")
        _set(params, key_path, np.asarray(value, np.float32))
    if next(records, None) is not None:
        raise CheckpointError(f"{source}: corrupt checkpoint: more weights than the architecture has ({len(layout)})")
    return params


def records_of(arch: NequixArchitecture, params: dict) -> list[np.ndarray]:
    """The weights of the params pytree in the checkpoint's leaf order: the inverse of :func:`params_from_records`."""
    out = []
    for key_path, _ in weight_layout(arch):
        node = params
        for key in key_path:
            node = node[key]
        out.append(np.asarray(node, np.float32))
    return out
