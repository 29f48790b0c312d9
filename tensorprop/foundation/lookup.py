"""Where a foundation checkpoint is found: a path, or a published name looked up like a data set.

``resolve_foundation_model(name_or_path)``:

1. an existing file path (any ``.nqx``; its sha256 is checked only when one is passed);
2. a published name (:data:`PUBLISHED`) as ``models/NAME.nqx`` beside the shared data folder
   (:func:`~tensorprop.data.registry.data_dir`: ``$TENSORPROP_DATA_DIR/../models``, else ``../shared/models``
   beside the checkout);
3. the user cache, ``$TENSORPROP_CACHE_DIR/models/NAME.nqx`` (default ``~/.cache/tensorprop/models``);
4. a download from the public source (``atomicarchitects/nequix`` at commit 0ffdf88) into the cache.

A found published file is checked against its sha256 in :data:`PUBLISHED`: a mismatch is one
:class:`~tensorprop.errors.CheckpointError` line naming the file.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..data.registry import cache_dir, data_dir, download_checked, sha256_of
from ..errors import CheckpointError

__all__ = ["PUBLISHED", "SOURCE_URL", "resolve_foundation_model", "model_search_paths"]

SOURCE_URL = "https://raw.githubusercontent.com/atomicarchitects/nequix/0ffdf88/models/{name}.nqx"

#: name -> sha256 of the published Nequix checkpoints (MIT; see tensorprop/foundation/LICENSE-nequix)
PUBLISHED: dict[str, str] = {
    "nequix-mp-1": "1647af8e627e1afa11e2bfadeab0797326513a521afd7dd01606a96f56783eee",
    "nequix-mp-1-pft": "a88aeaed71fd447572dc57af21d469207d7737b85a6dbb66f8c38156f175c5f1",
    "nequix-oam-1-pft": "4ce693d68886512aab50c84ea2400efd68163e11155f7c7babe98e695177e809",
}


def model_search_paths(name: str) -> list[Path]:
    """The local places a checkpoint ``name`` is looked for, in order (data dir's models/, then the cache)."""
    paths = []
    shared = data_dir()  # $TENSORPROP_DATA_DIR, else ../shared/datasets beside the checkout
    if shared is not None:
        paths.append(shared.expanduser().resolve().parent / "models" / f"{name}.nqx")
    paths.append(cache_dir() / "models" / f"{name}.nqx")
    return paths


def _checked(path: Path, sha256: str) -> Path:
    got = sha256_of(path)
    if got != sha256:
        raise CheckpointError(f"{path}: sha256 mismatch: expected {sha256}, got {got}; the file is damaged or "
                              f"not the published checkpoint (delete it to download it again)")
    return path


def _download_error(url: str, problem: str) -> CheckpointError:
    return CheckpointError(f"{url}: {problem}")


def resolve_foundation_model(name_or_path: str | os.PathLike, *, sha256: str | None = None,
                             download: bool = True) -> tuple[Path, str]:
    """The checkpoint file of a foundation model and its sha256.

    Parameters
    ----------
    name_or_path : str or PathLike
        A ``.nqx`` file, or a published name (``"nequix-mp-1"``, ``"nequix-mp-1-pft"``, ``"nequix-oam-1-pft"``).
    sha256 : str, optional
        Expected hex digest (default: the published one for a name, none for a path).
    download : bool
        Allow the download step.

    Raises
    ------
    CheckpointError
        Unknown name that is no file; checksum mismatch; download failure or disabled.
    """
    key = os.fspath(name_or_path)
    path = Path(key).expanduser()
    if path.is_file():
        return (_checked(path, sha256) if sha256 else path), sha256 or sha256_of(path)
    if key not in PUBLISHED:
        raise CheckpointError(f"{key}: no such checkpoint file and not a published foundation model "
                              f"({', '.join(PUBLISHED)})")
    expected = sha256 or PUBLISHED[key]
    local = model_search_paths(key)
    for candidate in local:
        if candidate.is_file():
            return _checked(candidate, expected), expected
    if not download:
        raise CheckpointError(f"{key}: {key}.nqx not found in {' or '.join(map(str, local))} and downloads are "
                              f"disabled; put the file there")
    target = local[-1]
    download_checked(SOURCE_URL.format(name=key), target, expected, what=f"foundation model {key!r}",
                     hint=f"download it by hand into {target.parent}", error=_download_error)
    return target, expected
