"""Shared fixtures: tiny models and small hand-built crystals."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tensorprop.data.records import Crystal

SHARED = Path(os.environ.get("TENSORPROP_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))

TINY = {
    "hidden_irreps": "6x0e + 4x0o + 3x1o + 3x1e + 2x2e + 2x2o",
    "head_irreps": "4x0e + 2x1e + 2x2e",
    "num_layers": 2,
    "radial_hidden": [16],
    "cutoff": 4.0,
    "num_radial_basis": 6,
}


def rocksalt_nacl(a: float = 5.64) -> Crystal:
    return Crystal(numbers=[11, 17], positions=[[0, 0, 0], [a / 2, 0, 0]],
                   cell=[[0, a / 2, a / 2], [a / 2, 0, a / 2], [a / 2, a / 2, 0]], pbc=True, label="NaCl")


def wurtzite_zno(a: float = 3.25, c: float = 5.21, u: float = 0.382) -> Crystal:
    cell = np.array([[a, 0, 0], [-a / 2, a * np.sqrt(3) / 2, 0], [0, 0, c]])
    frac = np.array([[1 / 3, 2 / 3, 0], [2 / 3, 1 / 3, 0.5], [1 / 3, 2 / 3, u], [2 / 3, 1 / 3, 0.5 + u]])
    return Crystal(numbers=[30, 30, 8, 8], positions=frac @ cell, cell=cell, pbc=True, label="ZnO")


def triclinic(seed: int = 3) -> Crystal:
    """A low-symmetry 4-atom cell: outputs are generic, so transformation tests bite."""
    rng = np.random.default_rng(seed)
    cell = np.diag([4.1, 4.6, 5.0]) + rng.uniform(-0.6, 0.6, (3, 3))
    frac = np.array([[0.0, 0.0, 0.0], [0.48, 0.11, 0.27], [0.21, 0.57, 0.66], [0.73, 0.38, 0.81]])
    return Crystal(numbers=[8, 22, 8, 3], positions=frac @ cell, cell=cell, pbc=True, label="triclinic")


@pytest.fixture(scope="session")
def tiny_model():
    import tensorprop

    model = tensorprop.build_model(TINY, seed=1)
    # non-trivial statistics so that the species scale/shift path is exercised
    model.stats["born_shift"] = model.stats["born_shift"].copy()
    model.stats["born_shift"][[3, 8, 11, 17, 22, 30]] = [0.9, -1.7, 1.1, -1.1, 3.0, 2.1]
    model.stats["born_scale"] = model.stats["born_scale"] * 5.0
    return model


@pytest.fixture(scope="session")
def variant_tiny_model():
    """The tiny model with the options on: species-dependent self-connections, one backbone per
    target and the weighted acoustic sum rule."""
    import tensorprop

    model = tensorprop.build_model({**TINY, "species_self_connection": 3, "backbone_per_target": True,
                                    "sum_rule": "weighted"}, seed=4)  # test_outputs_are_generic checks the seed
    model.stats["born_scale"] = model.stats["born_scale"] * 5.0
    return model


@pytest.fixture
def shared_datasets() -> Path:
    from tensorprop.data.registry import data_dir

    path = data_dir() or SHARED / "datasets"
    if not (path / "phonon_becs_epsilon.xyz").is_file():
        pytest.skip(f"shared datasets not found at {path} (set TENSORPROP_DATA_DIR)")
    return path


def small_phonon_becs_file(directory: Path, *, max_atoms: int, count: int, name: str = "small.xyz") -> Path:
    """The first ``count`` crystals of phonon-becs (among its first 200) with at most ``max_atoms`` atoms, written
    to ``directory/name`` as an ext-xyz file of their own; skips the test when the data set is not found."""
    from tensorprop.data.readers import read_extxyz, write_extxyz
    from tensorprop.data.registry import data_dir

    src = (data_dir() or SHARED / "datasets") / "phonon_becs_epsilon.xyz"
    if not src.is_file():
        pytest.skip(f"{src} not found (set TENSORPROP_DATA_DIR)")
    path = Path(directory) / name
    write_extxyz(path, [c for c in read_extxyz(src)[:200] if c.n_atoms <= max_atoms][:count])
    return path


def pytest_collection_modifyitems(config, items):
    """Mark the notebooks as slow (nbmake runs each from the first cell to the last)."""
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.slow)
