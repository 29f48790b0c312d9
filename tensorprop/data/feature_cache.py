"""On-disk cache of per-atom features of a frozen foundation model, one file per structure.

Layout: ``<cache_dir>/features/<checkpoint sha256>/<structure hash>.npz`` (``cache_dir`` as for data
sets: ``$TENSORPROP_CACHE_DIR`` or ``~/.cache/tensorprop``). Each file holds ``features``
(n_atoms, F) float32 and a JSON header with the checkpoint SHA256, the structure hash and the
feature irreps; an entry whose header, shape or contents do not match, or that cannot be read, is
computed again and overwritten, never reused.

The structure hash is the SHA256 of the atomic numbers, positions, cell and periodicity as float64 /
int64 bytes: any change of the structure is a new entry.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..errors import CheckpointError
from ..model_file import atomic_savez, read_npz_with_header
from .records import Crystal
from .registry import cache_dir

__all__ = ["structure_hash", "FeatureCache", "cached_features"]


def structure_hash(crystal: Crystal) -> str:
    """Hex SHA256 of (numbers, positions, cell, pbc) of ``crystal``."""
    h = hashlib.sha256()
    for array, dtype in ((crystal.numbers, np.int64), (crystal.positions, np.float64), (crystal.cell, np.float64),
                         (crystal.pbc, np.int64)):
        a = np.ascontiguousarray(np.asarray(array, dtype))
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


class FeatureCache:
    """Features of one checkpoint (``checkpoint_sha256``) with irreps ``irreps``, one file per structure.

    ``root``: the cache folder (default ``cache_dir() / "features"``).
    """

    def __init__(self, checkpoint_sha256: str, irreps: str, root: str | Path | None = None):
        self.checkpoint_sha256 = checkpoint_sha256
        self.irreps = str(irreps)
        self.folder = Path(root if root is not None else cache_dir() / "features") / checkpoint_sha256

    def path(self, crystal: Crystal) -> Path:
        return self.folder / f"{structure_hash(crystal)}.npz"

    def load(self, crystal: Crystal) -> np.ndarray | None:
        """The cached features (n_atoms, F) of ``crystal``, or None when absent, unreadable or mismatched."""
        path = self.path(crystal)
        if not path.is_file():
            return None
        try:
            arrays, meta = read_npz_with_header(path, "feature cache entry")
        except CheckpointError:
            return None
        features = arrays.get("features")
        expected = {"checkpoint_sha256": self.checkpoint_sha256, "structure": path.stem, "irreps": self.irreps}
        if any(meta.get(k) != v for k, v in expected.items()) or features is None or features.ndim != 2 \
                or features.shape[0] != crystal.n_atoms or not np.all(np.isfinite(features)):
            return None
        return features

    def store(self, crystal: Crystal, features: np.ndarray) -> Path:
        path = self.path(crystal)
        header = {"checkpoint_sha256": self.checkpoint_sha256, "structure": path.stem, "irreps": self.irreps}
        return atomic_savez(path, {"features": np.asarray(features, np.float32),
                                   "__meta__": np.frombuffer(json.dumps(header).encode(), np.uint8)})


def cached_features(crystals: Sequence[Crystal], compute: Callable[[list], list], cache: FeatureCache | None,
                    *, chunk: int = 16, progress: bool = False) -> list[np.ndarray]:
    """Features (n_atoms, F) of every crystal: from ``cache`` where a valid entry exists, else from
    ``compute(list of crystals) -> list of arrays`` (``chunk`` structures per call), then stored.
    ``cache=None`` computes everything."""
    crystals = list(crystals)
    out: list = [None if cache is None else cache.load(c) for c in crystals]
    missing = [i for i, f in enumerate(out) if f is None]
    starts = range(0, len(missing), chunk)
    if progress and missing:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="foundation features", unit="chunk", leave=False)
    for s in starts:
        part = missing[s:s + chunk]
        for i, f in zip(part, compute([crystals[i] for i in part])):
            out[i] = np.asarray(f, np.float32)
            if cache is not None:
                cache.store(crystals[i], out[i])
    return out
