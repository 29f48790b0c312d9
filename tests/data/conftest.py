"""Fixtures of the data-layer tests: the shared data folder and small hand-written files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tensorprop.data.records import Crystal


def _shared_datasets() -> Path:
    """The library's rule (tensorprop.data.registry.data_dir), or where it would be."""
    from tensorprop.data.registry import data_dir

    return data_dir() or Path(__file__).resolve().parents[2].parent / "shared" / "datasets"


SHARED_DATASETS = _shared_datasets()
SHARED_PHONOPY = SHARED_DATASETS.parent / "phonopy"


@pytest.fixture
def data_dir(monkeypatch) -> Path:
    """The shared data folder, set as TENSORPROP_DATA_DIR; skips when it is absent."""
    if not (SHARED_DATASETS / "phonon_becs_epsilon.xyz").is_file():
        pytest.skip(f"shared data folder {SHARED_DATASETS} is absent (set TENSORPROP_DATA_DIR)")
    monkeypatch.setenv("TENSORPROP_DATA_DIR", str(SHARED_DATASETS))
    monkeypatch.setenv("TENSORPROP_CACHE_DIR", "/nonexistent/tensorprop-test-cache")
    return SHARED_DATASETS


@pytest.fixture(scope="session")
def phonon_becs():
    """The phonon-becs data set read once from the shared folder; skips when absent."""
    from tensorprop.data.registry import load_dataset

    path = SHARED_DATASETS / "phonon_becs_epsilon.xyz"
    if not path.is_file():
        pytest.skip(f"shared data folder {SHARED_DATASETS} is absent (set TENSORPROP_DATA_DIR)")
    return load_dataset("phonon-becs", path=path)


@pytest.fixture
def phonopy_dir() -> Path:
    """The shared phonopy examples (BORN, POSCAR-unitcell); skips when absent."""
    if not (SHARED_PHONOPY / "NaCl" / "BORN").is_file():
        pytest.skip(f"shared phonopy examples {SHARED_PHONOPY} are absent")
    return SHARED_PHONOPY


def _rocksalt(a: float = 5.64, labels: bool = True) -> Crystal:
    """Conventional 8-atom rock-salt NaCl, optionally with symmetric labels (Z = +-1.1, eps = 2.4)."""
    frac = np.array([[0, 0, 0], [0, .5, .5], [.5, 0, .5], [.5, .5, 0],
                     [.5, .5, .5], [.5, 0, 0], [0, .5, 0], [0, 0, .5]])
    born = np.concatenate([np.tile(1.1 * np.eye(3), (4, 1, 1)), np.tile(-1.1 * np.eye(3), (4, 1, 1))])
    return Crystal(numbers=[11] * 4 + [17] * 4, positions=frac * a, cell=np.eye(3) * a, pbc=True,
                   born_charges=born if labels else None, epsilon=2.4 * np.eye(3) if labels else None,
                   label="NaCl")


@pytest.fixture
def nacl() -> Crystal:
    """Labelled conventional rock-salt NaCl, a = 5.64 A."""
    return _rocksalt()


@pytest.fixture
def make_rocksalt():
    """Factory ``make_rocksalt(a=5.64, labels=True)``."""
    return _rocksalt


@pytest.fixture
def lio2rh() -> Crystal:
    """A low-symmetry 4-atom crystal with full (non-diagonal) labels."""
    cell = np.array([[4.7155, -1.5230, 0.0], [4.7155, 1.5230, 0.0], [4.2236, 0.0, 2.5917]])
    pos = np.array([[6.8273, 0.0, 1.2959], [4.7155, 1.5230, 0.0], [10.1371, 0.0, 1.9241], [3.5175, 0.0, 0.6676]])
    rng = np.random.default_rng(0)
    born = rng.normal(size=(4, 3, 3))
    born -= born.mean(axis=0)
    eps = rng.normal(size=(3, 3))
    eps = eps @ eps.T + 3 * np.eye(3)
    return Crystal(numbers=[3, 45, 8, 8], positions=pos, cell=cell, pbc=True, born_charges=born, epsilon=eps,
                   info={"material_id": "mp-1", "band_gap": 1.5, "e_total": np.arange(9.0).reshape(3, 3)})
