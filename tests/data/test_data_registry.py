"""Registry: the real data sets, the look-up order, downloads with checksums, CrystalDataset."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pytest

from tensorprop.data import registry
from tensorprop.data.readers import write_extxyz
from tensorprop.data.registry import (CrystalDataset, DatasetSpec, list_datasets, load_dataset,
                                      resolve_dataset_file, verify_dataset)
from tensorprop.data.validate import acoustic_sum_rule_violation
from tensorprop.errors import DataError


def test_phonon_becs(phonon_becs):
    ds = phonon_becs
    assert len(ds) == 1520 and ds.name == "phonon-becs"
    first = ds[0]
    assert first.label == "phonon_becs_epsilon.xyz#0" and first.formula == "LiRhO2"
    assert first.numbers.tolist() == [3, 45, 8, 8]
    assert all(c.born_charges.shape == (c.n_atoms, 3, 3) and c.epsilon.shape == (3, 3) for c in ds)
    assert min(c.n_atoms for c in ds) == 2 and max(c.n_atoms for c in ds) == 40
    assert len(ds.elements) == 64
    symmetric = [np.abs(c.epsilon - c.epsilon.T).max() < 1e-6 for c in ds]
    assert np.mean(symmetric) > 0.99
    assert max(acoustic_sum_rule_violation(c.born_charges) for c in ds) < 1e-3


def test_registered_names_load_from_data_dir(data_dir, phonon_becs):
    assert list_datasets() == ["phonon-becs", "petousis-dielectric", "water-dipoles"]
    assert resolve_dataset_file("phonon-becs") == data_dir / "phonon_becs_epsilon.xyz"
    pet = load_dataset("petousis-dielectric")
    assert len(pet) == 1056 and pet[0].born_charges is None and pet[0].epsilon.shape == (3, 3)
    assert pet[0].info["material_id"] == "mp-441" and pet[0].info["e_total"].shape == (3, 3)
    assert {"formula", "band_gap", "n"} <= set(pet[0].info)
    water = load_dataset("water-dipoles")
    assert len(water) == 121 and not water[0].pbc.any() and water[0].epsilon is None
    assert water[0].info["dipole"].shape == (3,) and water[0].info["forces"].shape == (3, 3)
    assert water.elements == [1, 8]
    # a path to a registered file is read as that data set
    assert load_dataset(data_dir / "water-dipoles.xyz").name == "water-dipoles"
    assert verify_dataset("water-dipoles") == data_dir / "water-dipoles.xyz"


def test_unknown_name_lists_registered(tmp_path):
    with pytest.raises(DataError) as err:
        load_dataset("phonon-becz")
    msg = str(err.value)
    assert msg.startswith("phonon-becz: unknown data set") and "phonon-becs, petousis-dielectric" in msg
    with pytest.raises(DataError, match="unknown data set"):
        resolve_dataset_file("nope")
    (tmp_path / "x.csv").write_text("1,2\n")
    with pytest.raises(DataError, match="cannot tell the data-set format from the file name or contents"):
        load_dataset(tmp_path / "x.csv")


@pytest.fixture
def tiny(tmp_path, monkeypatch, nacl, lio2rh):
    """A registered 'tiny' data set with a file:// url, empty data and cache dirs."""
    (tmp_path / "src").mkdir()
    src = write_extxyz(tmp_path / "src" / "tiny.xyz", [nacl, lio2rh])
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    spec = DatasetSpec(name="tiny", filename="tiny.xyz", url=src.as_uri(), sha256=digest,
                       reader=registry.read_extxyz, description="", citation="", license="")
    monkeypatch.setitem(registry.REGISTRY, "tiny", spec)
    monkeypatch.setenv("TENSORPROP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TENSORPROP_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "data").mkdir()
    return spec, tmp_path


def test_lookup_order(tiny, nacl, lio2rh):
    spec, root = tiny
    # download into the cache
    path = resolve_dataset_file("tiny")
    assert path == root / "cache" / "tiny.xyz"
    assert path.read_bytes() == (root / "src" / "tiny.xyz").read_bytes()
    assert sorted(p.name for p in (root / "cache").iterdir()) == ["tiny.xyz"]  # no temporary file left
    # the cache wins over the download (the url no longer works)
    registry.REGISTRY["tiny"] = dataclasses.replace(spec, url=(root / "gone.xyz").as_uri())
    assert resolve_dataset_file("tiny") == path
    # the data dir wins over the cache
    write_extxyz(root / "data" / "tiny.xyz", [nacl])
    assert resolve_dataset_file("tiny") == root / "data" / "tiny.xyz"
    assert len(load_dataset("tiny")) == 1
    # an explicit path wins over everything
    write_extxyz(root / "other.xyz", [lio2rh, nacl, lio2rh])
    assert len(load_dataset("tiny", path=root / "other.xyz")) == 3
    assert len(load_dataset(root / "other.xyz")) == 3
    with pytest.raises(DataError, match="checksum mismatch"):
        verify_dataset("tiny")  # the data-dir copy is not the registered file


def test_download_checksum_mismatch(tiny):
    spec, root = tiny
    registry.REGISTRY["tiny"] = dataclasses.replace(spec, sha256="0" * 64)
    with pytest.raises(DataError) as err:
        resolve_dataset_file("tiny")
    msg = str(err.value)
    assert "checksum mismatch" in msg and f"expected sha256 {'0' * 64}" in msg and f"got {spec.sha256}" in msg
    assert list((root / "cache").iterdir()) == []  # the temporary file was deleted


def test_download_failure_and_not_downloadable(tiny):
    spec, root = tiny
    registry.REGISTRY["tiny"] = dataclasses.replace(spec, url=(root / "missing.xyz").as_uri())
    with pytest.raises(DataError, match="cannot download data set 'tiny'"):
        resolve_dataset_file("tiny")
    assert list((root / "cache").iterdir()) == []
    with pytest.raises(DataError, match="downloads are disabled"):
        resolve_dataset_file("tiny", download=False)
    registry.REGISTRY["tiny"] = dataclasses.replace(spec, url=None)
    with pytest.raises(DataError, match="not downloadable"):
        load_dataset("tiny")


def test_crystal_dataset_sequence(nacl, lio2rh):
    ds = CrystalDataset([nacl, lio2rh, nacl], name="toy", source="toy.xyz")
    assert len(ds) == 3 and ds[1] is lio2rh and ds[-1] is nacl
    assert isinstance(ds[1:], CrystalDataset) and ds[1:].indices == (1, 2)
    assert ds[np.array([2, 0])].indices == (2, 0) and ds[[True, False, True]].indices == (0, 2)
    assert ds.subset([1]).subset([0])[0] is lio2rh and ds.subset([1]).subset([0]).indices == (1,)
    assert ds.elements == [3, 8, 11, 17, 45]
    assert [a.get_chemical_formula() for a in ds.to_ase()] == ["Cl4Na4", "LiO2Rh", "Cl4Na4"]
    assert repr(ds) == "CrystalDataset(name='toy', n_structures=3, source='toy.xyz')"
    with pytest.raises(IndexError):
        ds[3]
    with pytest.raises(IndexError):
        ds[[0, 5]]
    with pytest.raises(AttributeError, match="immutable"):
        ds.name = "other"
    with pytest.raises(DataError, match="no train/valid/test split is defined for data set 'toy'"):
        ds.split("train")
    with pytest.raises(ValueError, match="which must be one of"):
        ds.split("validation")


def test_data_files_without_a_suffix_read_back(tmp_path, nacl, lio2rh):
    """issue 19.3: an ext-xyz file the project wrote under a bare name (``data field --out wf``) loads."""
    write_extxyz(tmp_path / "wf", [nacl, lio2rh])
    ds = load_dataset(tmp_path / "wf")
    assert len(ds) == 2 and ds.name == "wf"


def test_one_data_dir_rule(tmp_path, monkeypatch):
    """issue 19.8: $TENSORPROP_DATA_DIR, else ../shared/datasets beside the checkout (what the tests and the
    notebooks' load_dataset calls rely on), else the cache or a download."""
    from pathlib import Path

    from tensorprop.data.registry import data_dir

    monkeypatch.setenv("TENSORPROP_DATA_DIR", str(tmp_path))
    assert data_dir() == tmp_path
    monkeypatch.delenv("TENSORPROP_DATA_DIR")
    monkeypatch.setenv("TENSORPROP_CACHE_DIR", str(tmp_path / "empty-cache"))
    beside = Path(registry.__file__).resolve().parents[2].parent / "shared" / "datasets"
    if not (beside / "phonon_becs_epsilon.xyz").is_file():
        pytest.skip(f"no shared data folder beside this checkout ({beside})")
    assert data_dir() == beside
    assert resolve_dataset_file("phonon-becs", download=False) == beside / "phonon_becs_epsilon.xyz"
