"""The registry of known data sets, where their files are found, and :class:`CrystalDataset`.

A registered data file is looked up in this order:

1. an explicit path (``load_dataset(path)`` or ``load_dataset(name, path=...)``);
2. the shared data folder, :func:`data_dir`: ``$TENSORPROP_DATA_DIR``, else ``../shared/datasets`` beside
   the project checkout (trusted without hashing; see :func:`verify_dataset`);
3. the user cache, ``$TENSORPROP_CACHE_DIR`` or else ``~/.cache/tensorprop``;
4. a download from the registered url into the cache (temporary file, sha256 check,
   atomic rename).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
import urllib.request
from pathlib import Path
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from tensorprop.data.petousis import read_petousis
from tensorprop.data.readers import detect_format, read_extxyz
from tensorprop.data.records import Crystal
from tensorprop.data.splits import SPLIT_NAMES, load_split
from tensorprop.errors import DataError

__all__ = ["DatasetSpec", "REGISTRY", "CrystalDataset", "list_datasets", "data_dir", "resolve_dataset_file",
           "verify_dataset", "load_dataset", "cache_dir", "sha256_of", "download_checked"]


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """What tensorprop knows about one data set.

    Attributes
    ----------
    name : str
        Registry key, e.g. ``"phonon-becs"``.
    filename : str
        File name in the data/cache directory.
    url : str or None
        Download address (None: the file must be provided by the user).
    sha256 : str
        Hex digest of the file.
    reader : callable
        ``reader(path, **kwargs) -> list[Crystal]``.
    description, citation, license : str
    """

    name: str
    filename: str
    url: str | None
    sha256: str
    reader: Callable[..., list]
    description: str
    citation: str
    license: str


def _read_water(path, **kwargs) -> list[Crystal]:
    """Water molecules: per-frame ``dipole``/``energy`` and per-atom ``forces`` (n, 3) in ``info``."""
    kwargs.setdefault("require_labels", False)
    out = []
    for c in read_extxyz(path, **kwargs):
        info = dict(c.info)
        if "force" in info and "forces" not in info:
            info["forces"] = np.asarray(info.pop("force"), dtype=float).reshape(-1, 3)
        out.append(c.replace(info=info))
    return out


REGISTRY: dict[str, DatasetSpec] = {spec.name: spec for spec in (
    DatasetSpec(
        name="phonon-becs",
        filename="phonon_becs_epsilon.xyz",
        url="https://raw.githubusercontent.com/shiangfang/e3nn-models/main/data/phonon_becs_epsilon.xyz",
        sha256="0f3db1972e983ff690586cd87050af2d03edf9c9c16688362198830d65166f54",
        reader=read_extxyz,
        description="1520 crystals with DFPT Born effective charges (becs) and electronic dielectric "
                    "tensors (eps), ABINIT PBEsol",
        citation="G. Petretto et al., High-throughput density-functional perturbation theory phonons for "
                 "inorganic materials, Sci. Data 5, 180065 (2018)",
        license="CC-BY 4.0",
    ),
    DatasetSpec(
        name="petousis-dielectric",
        filename="dielectric_constant.json.gz",
        url="https://ndownloader.figshare.com/files/13213475",
        sha256="8eb24812148732786cd7c657eccfc6b5ee66533429c2cfbcc4f0059c0295e8b6",
        reader=read_petousis,
        description="1056 crystals with DFPT electronic and total dielectric tensors, VASP PBE "
                    "(matminer 'dielectric_constant')",
        citation="I. Petousis et al., High-throughput screening of inorganic compounds for the discovery of "
                 "novel dielectric and optical materials, Sci. Data 4, 160134 (2017)",
        license="CC-BY 4.0",
    ),
    DatasetSpec(
        name="water-dipoles",
        filename="water-dipoles.xyz",
        url=None,
        sha256="a784d5bdf9439e884786cdb0d96786482a15089c61c800f7ff5cb8ce9137b86b",
        reader=_read_water,
        description="121 water molecules with dipoles, energies and forces (Partridge-Schwenke fits)",
        citation="Swiss Equivariant Learning Workshop 2022, tutorial data",
        license="see the workshop material",
    ),
)}


def list_datasets() -> list[str]:
    """Names of the registered data sets."""
    return list(REGISTRY)


def _spec(name: str) -> DatasetSpec:
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        raise DataError(str(name), f"unknown data set; registered: {', '.join(REGISTRY)}") from None


def data_dir() -> Path | None:
    """The shared data folder, one rule for the library, the tests and the notebooks.

    ``$TENSORPROP_DATA_DIR`` when set; else ``../shared/datasets`` beside the project checkout (the folder
    with ``pyproject.toml`` that holds this package, as in an editable install) when that folder exists;
    else None (registered data sets then come from the cache or a download).
    """
    env = os.environ.get("TENSORPROP_DATA_DIR")
    if env:
        return Path(env).expanduser()
    checkout = Path(__file__).resolve().parents[2]
    shared = checkout.parent / "shared" / "datasets"
    if (checkout / "pyproject.toml").is_file() and shared.is_dir():
        return shared
    return None


def cache_dir() -> Path:
    """tensorprop's user cache: ``$TENSORPROP_CACHE_DIR``, else ``$XDG_CACHE_HOME/tensorprop``, else
    ``~/.cache/tensorprop``. Downloaded data sets sit in it, foundation checkpoints in ``models/``, frozen
    features in ``features/`` and JAX's compiled code in ``jax/``."""
    env = os.environ.get("TENSORPROP_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tensorprop"


def sha256_of(path: str | os.PathLike) -> str:
    """Hex sha256 digest of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def download_checked(url: str, target: Path, sha256: str, *, what: str, hint: str, error=DataError) -> Path:
    """Download ``url`` to ``target`` through a temporary file, check its sha256, rename atomically.

    Raises ``error(url, ...)`` (a :class:`DataError` by default) naming ``what`` when the download fails
    (with ``hint``) or the checksum differs (the download is deleted).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        h = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=120) as response:
                for block in iter(lambda: response.read(1 << 20), b""):
                    h.update(block)
                    out.write(block)
        except OSError as exc:
            raise error(url, f"cannot download {what}: {exc}; {hint}") from None
        got = h.hexdigest()
        if got != sha256:
            raise error(url, f"checksum mismatch for {target.name}: expected sha256 {sha256}, "
                             f"got {got}; the download was deleted")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _download(spec: DatasetSpec, target: Path) -> Path:
    return download_checked(spec.url, target, spec.sha256, what=f"data set {spec.name!r}",
                            hint="download it by hand and set TENSORPROP_DATA_DIR to its folder")


def resolve_dataset_file(name: str, *, download: bool = True) -> Path:
    """Path of a registered data file, downloading it into the cache if needed.

    Parameters
    ----------
    name : str
        Registered name (see :func:`list_datasets`).
    download : bool
        Allow the download step.

    Raises
    ------
    DataError
        Unknown name, file not found and not downloadable, download failure or checksum mismatch.
    """
    spec = _spec(name)
    shared = data_dir()
    if shared is not None and (shared / spec.filename).is_file():
        return shared / spec.filename
    cached = cache_dir() / spec.filename
    if cached.is_file():
        return cached
    where = (f"the data folder {shared} ($TENSORPROP_DATA_DIR, else ../shared/datasets beside the checkout) "
             f"or the cache {cache_dir()}")
    if spec.url is None:
        raise DataError(name, f"{spec.filename} is not downloadable and was not found in {where}; put it "
                              f"there or pass its path: load_dataset({name!r}, path=...)")
    if not download:
        raise DataError(name, f"{spec.filename} not found in {where} and downloads are disabled")
    return _download(spec, cached)


def verify_dataset(name: str) -> Path:
    """Resolve a registered data file and check its sha256; returns its path."""
    spec = _spec(name)
    path = resolve_dataset_file(name)
    got = sha256_of(path)
    if got != spec.sha256:
        raise DataError(str(path), f"checksum mismatch for data set {name!r}: expected sha256 {spec.sha256}, "
                                   f"got {got}")
    return path


class CrystalDataset(Sequence):
    """An immutable sequence of :class:`Crystal` with a name and a source.

    Parameters
    ----------
    crystals : iterable of Crystal
    name : str
        Registered name or the file's name.
    source : str
        File the crystals came from.
    indices : sequence of int, optional
        Position of each crystal in the full data set (default ``0..n-1``).
    """

    __slots__ = ("_crystals", "_indices", "name", "source")

    def __init__(self, crystals: Iterable[Crystal], *, name: str, source: str = "",
                 indices: Sequence[int] | None = None):
        self._crystals = tuple(crystals)
        self._indices = tuple(range(len(self._crystals)) if indices is None else (int(i) for i in indices))
        if len(self._indices) != len(self._crystals):
            raise ValueError("indices must have one entry per crystal")
        self.name = str(name)
        self.source = str(source)

    def __setattr__(self, key, value):
        if hasattr(self, key):
            raise AttributeError(f"CrystalDataset is immutable (cannot set {key!r})")
        object.__setattr__(self, key, value)

    def __len__(self) -> int:
        return len(self._crystals)

    def __getitem__(self, item):
        if isinstance(item, (int, np.integer)):
            return self._crystals[int(item)]  # IndexError as for a tuple
        if isinstance(item, slice):
            return self.subset(range(len(self))[item])
        return self.subset(item)

    def __iter__(self):
        return iter(self._crystals)

    @property
    def indices(self) -> tuple[int, ...]:
        """Position of each crystal in the full data set."""
        return self._indices

    def subset(self, indices) -> "CrystalDataset":
        """A dataset of the crystals at ``indices`` (ints or a boolean mask), in that order."""
        idx = np.asarray(indices)
        if idx.dtype == bool:
            if idx.shape != (len(self),):
                raise IndexError(f"boolean mask has shape {idx.shape}, expected ({len(self)},)")
            idx = np.flatnonzero(idx)
        if idx.size and idx.dtype.kind not in "iu":
            raise TypeError(f"indices must be integers or a boolean mask, got dtype {idx.dtype}")
        idx = idx.astype(np.int64).reshape(-1)
        if idx.size and (idx.max() >= len(self) or idx.min() < -len(self)):
            raise IndexError(f"index out of range for a dataset of {len(self)} structures")
        return CrystalDataset([self._crystals[i] for i in idx], name=self.name, source=self.source,
                              indices=[self._indices[i] for i in idx])

    def split(self, which: str) -> "CrystalDataset":
        """The ``"train"``, ``"valid"`` or ``"test"`` part of the registered split of this data set."""

        if which not in SPLIT_NAMES:
            raise ValueError(f"which must be one of {SPLIT_NAMES}, got {which!r}")
        parts = load_split(self.name)
        n = sum(len(p) for p in parts.values())
        if self._indices != tuple(range(n)):
            raise DataError(self.source or self.name, f"split() needs the full {n}-structure data set "
                                                      f"{self.name!r}; this one has {len(self)} structures")
        return self.subset(parts[which])

    def to_ase(self) -> list:
        """The crystals as ``ase.Atoms`` (see :meth:`Crystal.to_ase`)."""
        return [c.to_ase() for c in self._crystals]

    @property
    def elements(self) -> list[int]:
        """Sorted atomic numbers present in the data set."""
        if not self._crystals:
            return []
        return sorted(int(z) for z in np.unique(np.concatenate([c.numbers for c in self._crystals])))

    def __repr__(self) -> str:
        return f"CrystalDataset(name={self.name!r}, n_structures={len(self)}, source={self.source!r})"


def _reader_for_path(path: Path) -> tuple[str, Callable[..., list]]:
    for spec in REGISTRY.values():
        if path.name == spec.filename:
            return spec.name, spec.reader
    name = path.name.lower()
    if name.endswith((".xyz", ".extxyz")):
        return path.name, read_extxyz
    if name.endswith((".json.gz", ".json")):
        return path.name, read_petousis
    try:
        if detect_format(path) == "extxyz":  # ext-xyz content under another name (e.g. `data field --out wf`)
            return path.name, read_extxyz
    except DataError:
        pass
    raise DataError(str(path), "cannot tell the data-set format from the file name or contents; expected "
                               ".xyz/.extxyz (ext-xyz) or .json.gz (pandas split-JSON)")


def load_dataset(name_or_path: str | os.PathLike, *, path: str | os.PathLike | None = None,
                 **reader_kwargs) -> CrystalDataset:
    """Load a registered data set or a data file.

    Parameters
    ----------
    name_or_path : str or PathLike
        A registered name (:func:`list_datasets`) or the path of an ``.xyz``/``.extxyz``
        or ``.json.gz`` file (a file named like a registered one is read as that data set).
    path : str or PathLike, optional
        With a registered name: read this file instead of looking it up.
    **reader_kwargs
        Passed to the reader (e.g. ``require_labels=False`` for ext-xyz).

    Raises
    ------
    DataError
        Unknown name that is not an existing file (the message lists the registered
        names), missing or invalid file.
    """
    key = os.fspath(name_or_path)
    if isinstance(key, bytes):
        key = key.decode()
    if key in REGISTRY:
        spec = REGISTRY[key]
        file = Path(path) if path is not None else resolve_dataset_file(key)
        if not file.is_file():
            raise DataError(str(file), "no such file")
        return CrystalDataset(spec.reader(file, **reader_kwargs), name=key, source=str(file))
    if path is not None:
        _spec(key)
    file = Path(key).expanduser()
    if not file.is_file():
        raise DataError(key, f"unknown data set and no such file; registered data sets: {', '.join(REGISTRY)}")
    name, reader = _reader_for_path(file)
    return CrystalDataset(reader(file, **reader_kwargs), name=name, source=str(file))
