"""The committed phonon-becs split equals the regenerated one (seeded 80/10/10 cut, then the recorded
duplicates moved into train) and is a partition."""

from __future__ import annotations

import json

import pytest

from tensorprop.data.splits import SPLIT_PARAMETERS, SPLITS_DIR, load_split, make_split, move_to_train, write_split
from tensorprop.errors import DataError


def test_committed_split_matches_regeneration():
    path = SPLITS_DIR / "phonon-becs.json"
    assert path.is_file(), f"{path} is missing: run python -m tensorprop.data.splits"
    doc = json.loads(path.read_text())
    params = SPLIT_PARAMETERS["phonon-becs"]
    assert doc["dataset"] == "phonon-becs" and doc["n"] == params["n"] == 1520
    assert doc["seed"] == params["seed"] == 20181101 and tuple(doc["fractions"]) == params["fractions"]
    assert doc["sha256"] == params["sha256"]
    seeded = make_split(doc["n"], doc["fractions"], doc["seed"])
    moved = [m["index"] for m in doc["moved_to_train"]]
    assert moved == [m[0] for m in params["moved_to_train"]]
    assert all(i in seeded[m["from"]] for i, m in zip(moved, doc["moved_to_train"]))
    regenerated = move_to_train(seeded, moved)
    assert {k: doc[k] for k in ("train", "valid", "test")} == regenerated == load_split("phonon-becs")
    # the split as first committed: the seeded cut alone
    assert [len(seeded[k]) for k in ("train", "valid", "test")] == [1216, 152, 152]


def test_split_is_a_partition():
    split = load_split("phonon-becs")
    sizes = {k: len(v) for k, v in split.items()}
    assert sizes == {"train": 1222, "valid": 150, "test": 148}
    allidx = split["train"] + split["valid"] + split["test"]
    assert len(set(allidx)) == len(allidx) and sorted(allidx) == list(range(1520))
    assert all(v == sorted(v) for v in split.values())


def test_regeneration_without_committed_file(tmp_path):
    assert load_split("phonon-becs", directory=tmp_path) == load_split("phonon-becs")
    path = write_split("phonon-becs", tmp_path)
    assert path.read_text() == (SPLITS_DIR / "phonon-becs.json").read_text()
    with pytest.raises(DataError, match="no train/valid/test split"):
        load_split("petousis-dielectric", directory=tmp_path)


def test_make_split_arguments():
    s = make_split(10, (0.5, 0.3, 0.2), seed=1)
    assert [len(s[k]) for k in ("train", "valid", "test")] == [5, 3, 2]
    assert make_split(10, (0.5, 0.3, 0.2), seed=1) == s != make_split(10, (0.5, 0.3, 0.2), seed=2)
    with pytest.raises(ValueError):
        make_split(10, (0.5, 0.5, 0.5))


def test_dataset_split(phonon_becs):
    train, valid, test = (phonon_becs.split(k) for k in ("train", "valid", "test"))
    assert (len(train), len(valid), len(test)) == (1222, 150, 148)
    assert list(test.indices) == load_split("phonon-becs")["test"]
    assert test[0] is phonon_becs[test.indices[0]]
    with pytest.raises(DataError, match="needs the full 1520-structure data set"):
        train.split("test")
