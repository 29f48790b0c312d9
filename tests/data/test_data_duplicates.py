"""The duplicate finder on hand-made crystals, and the committed phonon-becs split holds no leaking duplicate."""

from __future__ import annotations

import numpy as np
import pytest

from tensorprop.data.duplicates import deduplicate_split, find_duplicates, label_distance, split_duplicates
from tensorprop.data.records import Crystal
from tensorprop.data.splits import SPLIT_PARAMETERS, load_split, make_split
from tensorprop.testing import random_rotation
from tests.conftest import rocksalt_nacl, triclinic


def _labelled(c: Crystal, seed: int = 0) -> Crystal:
    rng = np.random.default_rng(seed)
    born = rng.normal(0.0, 1.0, (c.n_atoms, 3, 3)) + 2.0 * np.eye(3) * np.where(c.numbers % 2, 1, -1)[:, None, None]
    a = rng.normal(0.0, 0.3, (3, 3))
    return c.replace(born_charges=born, epsilon=4.0 * np.eye(3) + a @ a.T)


def _transformed(c: Crystal, q: np.ndarray, order: np.ndarray, shift) -> Crystal:
    """The same crystal rotated (or mirrored) by ``q``, its atoms reordered and shifted: labels follow."""
    born = None if c.born_charges is None else np.einsum("ab,ibc,dc->iad", q, c.born_charges, q)[order]
    eps = None if c.epsilon is None else q @ c.epsilon @ q.T
    return c.replace(positions=(c.positions @ q.T)[order] + shift, cell=c.cell @ q.T, numbers=c.numbers[order],
                     born_charges=born, epsilon=eps)


def _perovskite(dz: float = 0.0, z_b: float = 6.0) -> Crystal:
    """Cubic ABO3 (a = 4 A) with the B atom moved by ``dz`` along z; Z*(B) isotropic ``z_b``."""
    a = 4.0
    frac = np.array([[0, 0, 0], [0.5, 0.5, 0.5 + dz / a], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    z = np.array([2.7, z_b, 0, 0, 0])
    z[2:] = -(z[0] + z[1]) / 3
    return Crystal(numbers=[56, 22, 8, 8, 8], positions=frac * a, cell=np.eye(3) * a, pbc=True,
                   born_charges=z[:, None, None] * np.eye(3), epsilon=6.0 * np.eye(3))


def test_rotated_mirrored_reordered_copies_are_duplicates():
    base = _labelled(triclinic(), seed=1)
    rot = random_rotation(np.random.default_rng(2))
    mirror = np.diag([1.0, 1.0, -1.0]) @ rot
    copies = [_transformed(base, rot, np.array([2, 0, 3, 1]), [0.3, -0.1, 0.7]),
              _transformed(base, mirror, np.array([1, 3, 0, 2]), [1.1, 0.0, 0.0])]
    assert label_distance(base, copies[1]) == pytest.approx((0.0, 0.0), abs=1e-9)
    other = _labelled(rocksalt_nacl(), seed=3)
    assert find_duplicates([other, base, copies[0], copies[1]]) == [[1, 2, 3]]


def test_conventional_cell_matches_primitive():
    prim = _labelled(rocksalt_nacl(), seed=0)
    a = 5.64
    frac = np.array([[0, 0, 0], [0, .5, .5], [.5, 0, .5], [.5, .5, 0]])
    pos = np.concatenate([frac * a, frac * a + [a / 2, 0, 0]])
    conv = Crystal(numbers=[11] * 4 + [17] * 4, positions=pos, cell=np.eye(3) * a, pbc=True,
                   born_charges=np.repeat(prim.born_charges, 4, axis=0), epsilon=prim.epsilon)
    assert find_duplicates([prim, conv]) == [[0, 1]]
    # the same Born charges on a differently shaped conventional cell: labels far apart
    assert find_duplicates([prim, conv.replace(born_charges=conv.born_charges * 1.5)]) == []


def test_distortions_with_different_labels_are_not_duplicates():
    """A small polar distortion matches in structure, but Z* 0.6 e apart: distinct crystals."""
    cubic, polar = _perovskite(0.0, 6.0), _perovskite(0.08, 6.6)
    assert find_duplicates([cubic, polar], use_labels=False) == [[0, 1]]
    assert label_distance(cubic, polar)[0] == pytest.approx(0.6)
    assert find_duplicates([cubic, polar]) == []
    assert find_duplicates([cubic, _perovskite(0.08, 6.05)]) == [[0, 1]]  # labels within 0.1 e
    # unlabelled crystals are compared by structure alone
    assert find_duplicates([cubic.replace(born_charges=None, epsilon=None), polar]) == [[0, 1]]


def test_split_duplicates_and_moves():
    nacl, tri = _labelled(rocksalt_nacl(), 0), _labelled(triclinic(), 1)
    rot = random_rotation(np.random.default_rng(5))
    crystals = [nacl, tri, _transformed(nacl, rot, np.array([1, 0]), [0.2, 0.2, 0.2]),
                _transformed(tri, rot, np.arange(4), 0.0), _perovskite(), _transformed(tri, rot.T, np.arange(4), 0.0)]
    split = {"train": [0, 4], "valid": [1, 2], "test": [3, 5]}
    assert split_duplicates(crystals, split) == [{"train": [0], "valid": [2]}, {"valid": [1], "test": [3, 5]}]
    new, moves = deduplicate_split(crystals, split)
    assert new == {"train": [0, 1, 2, 3, 4, 5], "valid": [], "test": []}
    assert moves[0] == {"index": 1, "from": "valid", "duplicate_of": [3, 5]}
    assert moves[1] == {"index": 2, "from": "valid", "duplicate_of": [0]}
    assert split_duplicates(crystals, new) == []


def test_committed_split_has_no_leaking_duplicates(phonon_becs):
    """The recorded moves are exactly what the finder asks of the seeded split, and leave no leak."""
    params = SPLIT_PARAMETERS["phonon-becs"]
    seeded = make_split(params["n"], params["fractions"], params["seed"])
    _, moves = deduplicate_split(phonon_becs, seeded)
    assert [(m["index"], m["from"], tuple(m["duplicate_of"])) for m in moves] == list(params["moved_to_train"])
    assert split_duplicates(phonon_becs, load_split("phonon-becs")) == []
