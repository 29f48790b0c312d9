"""The versioned model file: one ``.npz`` holding parameters, statistics and a JSON header.

No pickle: arrays are stored under ``params/<module>/<name>`` and ``stats/<name>``;
``__meta__`` is UTF-8 JSON with the format version, the tensorprop version, the model
config and free metadata (training set, elements seen, metrics...).
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from ._version import __version__
from .errors import CheckpointError

__all__ = ["FORMAT_VERSION", "atomic_savez", "read_npz_with_header", "write_model_file", "read_model_file"]

FORMAT_VERSION = 1


def atomic_savez(path: str | Path, arrays: dict[str, np.ndarray]) -> Path:
    """``np.savez`` to a temporary file in the target folder, fsync, then rename over ``path``.

    A crash or a full disk while writing leaves any previous file at ``path`` intact; an
    ``OSError`` (full disk, no permission) becomes a :class:`CheckpointError` that says so.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # the permissions a plain open() would give, not mkstemp's 0600
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            kept = "the previous file there is intact" if path.exists() else "nothing was written"
            raise CheckpointError(f"{path}: cannot write: {exc.strerror or exc}; {kept}") from exc
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass  # some file systems cannot fsync a folder; the file itself is on disk
    return path


def write_model_file(path: str | Path, params: dict, stats: dict, meta: dict) -> Path:
    """Write a model file atomically (see :func:`atomic_savez`)."""
    arrays = {f"params/{m}/{k}": np.asarray(v) for m, d in params.items() for k, v in d.items()}
    arrays.update({f"stats/{k}": np.asarray(v) for k, v in stats.items()})
    header = {"format_version": FORMAT_VERSION, "tensorprop_version": __version__, **meta}
    arrays["__meta__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    return atomic_savez(path, arrays)


def read_npz_with_header(path: str | Path, what: str) -> tuple[dict[str, np.ndarray], dict]:
    """-> (arrays, JSON header) of an ``.npz`` written with a ``__meta__`` entry.

    ``what`` names the kind of file ("model file", "checkpoint") in the :class:`CheckpointError`.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such {what}")
    if not zipfile.is_zipfile(path):  # numpy would advise allow_pickle=True, which would be wrong here
        raise CheckpointError(f"{path}: not a readable tensorprop {what} (not an .npz archive)")
    try:
        with np.load(path, allow_pickle=False) as z:
            files = {k: z[k] for k in z.files}
    except Exception as exc:
        raise CheckpointError(f"{path}: not a readable tensorprop {what} ({exc})") from None
    if "__meta__" not in files:
        raise CheckpointError(f"{path}: no __meta__ header; not a tensorprop {what}")
    try:
        meta = json.loads(files.pop("__meta__").tobytes().decode())
    except ValueError as exc:
        raise CheckpointError(f"{path}: corrupt header ({exc})") from None
    return files, meta


def read_model_file(path: str | Path) -> tuple[dict, dict, dict]:
    """-> (params, stats, meta). :class:`CheckpointError` names the file and the problem."""
    files, meta = read_npz_with_header(path, "model file")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(f"{path}: model file format {version}, this tensorprop reads format {FORMAT_VERSION}")
    params, stats = {}, {}
    for key, value in files.items():
        kind, _, rest = key.partition("/")
        if kind == "params":
            module, _, name = rest.rpartition("/")
            params.setdefault(module, {})[name] = value
        elif kind == "stats":
            stats[rest] = value
    return params, stats, meta
