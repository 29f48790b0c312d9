"""Checks of tensorprop.data.validate: hard errors name file, structure and problem; soft ones warn."""

from __future__ import annotations

import numpy as np
import pytest

from tensorprop.data.records import Crystal
from tensorprop.data.validate import acoustic_sum_rule_violation, check_crystal, check_labels
from tensorprop.errors import DataError


def _fails(crystal, *words, index=3):
    with pytest.raises(DataError) as err:
        check_crystal(crystal, "file.xyz", index)
    msg = str(err.value)
    assert msg.startswith(f"file.xyz, structure {index}: "), msg
    for w in words:
        assert w in msg, (w, msg)
    return msg


def test_valid_crystal_passes(nacl, lio2rh):
    check_crystal(nacl, "x")
    check_crystal(lio2rh, "x")


def test_invalid_atomic_number(nacl):
    _fails(nacl.replace(numbers=[11, 0, 11, 11, 17, 17, 17, 17]), "atomic number 0", "atom 1")
    _fails(nacl.replace(numbers=[11, 11, 11, 119, 17, 17, 17, 17]), "atomic number 119", "atom 3")


@pytest.mark.parametrize("field, where, words", [
    ("positions", (2, 0), ["NaN", "positions of atom 2"]),
    ("cell", (1, 1), ["NaN", "cell (lattice vector 1)"]),
    ("born_charges", (2, 0, 1), ["NaN", "born_charges of atom 2"]),
    ("epsilon", (0, 0), ["NaN", "epsilon"]),
])
def test_non_finite_fields(nacl, field, where, words):
    value = np.array(getattr(nacl, field), dtype=float)
    value[where] = np.nan
    _fails(nacl.replace(**{field: value}), *words)


def test_inf_is_named(nacl):
    eps = nacl.epsilon.copy()
    eps[1, 2] = np.inf
    _fails(nacl.replace(epsilon=eps), "inf", "epsilon", "[1, 2]")


def test_degenerate_cells(nacl):
    cell = nacl.cell.copy()
    cell[2] = 0.0
    _fails(nacl.replace(cell=cell), "lattice vector 2 is zero")
    cell = nacl.cell.copy()
    cell[2] = cell[0] + cell[1]
    _fails(nacl.replace(cell=cell), "volume")
    cell = nacl.cell.copy()
    cell[[0, 1]] = cell[[1, 0]]
    _fails(nacl.replace(cell=cell), "negative volume")


def test_slab_with_zero_vacuum_vector_is_fine():
    c = Crystal(numbers=[6, 6], positions=[[0, 0, 0], [1.42, 0, 0]],
                cell=[[2.46, 0, 0], [-1.23, 2.13, 0], [0, 0, 0]], pbc=[True, True, False])
    check_crystal(c, "graphene")


def test_overlap_direct_and_across_boundary(make_rocksalt):
    c = make_rocksalt(labels=False)
    pos = c.positions.copy()
    pos[1] = pos[0] + [0.1, 0, 0]
    _fails(c.replace(positions=pos), "atoms 0 and 1", "0.1 A", "overlap")
    pos = c.positions.copy()
    pos[0] = [0.05, 0.0, 0.0]
    pos[1] = [5.59, 0.0, 0.0]  # 0.1 A apart through the x boundary of the 5.64 A cell
    msg = _fails(c.replace(positions=pos), "atoms 0 and 1", "0.1 A", "periodic boundary")
    assert "distance 0.1 A" in msg
    # far outside the cell, still found
    pos[1] = [5.59 + 100 * 5.64, 3 * 5.64, 0.0]
    _fails(c.replace(positions=pos), "atoms 0 and 1", "0.1 A")


def test_too_short_lattice_vector():
    c = Crystal(numbers=[1], positions=[[0, 0, 0]], cell=np.diag([0.3, 5, 5]), pbc=True)
    _fails(c, "own periodic image", "0.3 A")


def test_pathological_cells_do_not_crash():
    # vesin 0.6 raises SIGFPE on boxes like diag(1e6, 3, 3); check_crystal must answer in Python
    check_crystal(Crystal(numbers=[1, 1], positions=[[0, 0, 0], [1, 1, 1]], cell=np.diag([1e4, 3, 3]), pbc=True), "x")
    check_crystal(Crystal(numbers=[1, 1, 1], positions=[[0, 0, 0], [1e4, 0, 0], [0, 1, 0]], cell=np.zeros((3, 3)),
                          pbc=False), "x")
    check_crystal(Crystal(numbers=[1, 1], positions=[[0, 0, 0], [0, 0, 9998.3]], cell=np.diag([3, 3, 3]),
                          pbc=True), "x")
    check_crystal(Crystal(numbers=[1, 1], positions=[[0, 0, 0], [1, 1, 1]], cell=[[3, 0, 0], [9e3, 3, 0], [0, 0, 3]],
                          pbc=True), "x")
    for pos, cell in [([[0, 0, 0], [0, 0, 1e300]], np.eye(3) * 3), ([[0, 0, 0], [0, 0, 2e4]], np.eye(3) * 3),
                      ([[0, 0, 0], [1, 1, 1]], np.diag([1e6, 3, 3]))]:
        with pytest.raises(DataError, match="unphysical (positions|cell)"):
            check_crystal(Crystal(numbers=[1, 1], positions=pos, cell=cell, pbc=True), "x")


def test_large_structure_uses_same_answer(make_rocksalt):
    big = make_rocksalt(labels=False)
    reps = np.array([[i, j, k] for i in range(4) for j in range(4) for k in range(3)])  # 384 atoms
    pos = (big.positions[None] + (reps * 5.64)[:, None]).reshape(-1, 3)
    sc = Crystal(numbers=np.tile(big.numbers, len(reps)), positions=pos, cell=np.diag([4, 4, 3]) * 5.64, pbc=True)
    check_crystal(sc, "big")
    pos = pos.copy()
    pos[17] = pos[200] + [0, 0.2, 0]
    _fails(sc.replace(positions=pos), "atoms 17 and 200", "0.2 A")


def test_label_shapes(nacl):
    bad = Crystal.__new__(Crystal)
    for f in ("numbers", "positions", "cell", "pbc", "label", "info"):
        object.__setattr__(bad, f, getattr(nacl, f))
    object.__setattr__(bad, "born_charges", np.zeros((7, 3, 3)))
    object.__setattr__(bad, "epsilon", np.eye(3))
    _fails(bad, "born_charges have shape (7, 3, 3)")
    object.__setattr__(bad, "born_charges", None)
    object.__setattr__(bad, "epsilon", np.zeros(6))
    _fails(bad, "epsilon has shape (6,)")


def test_acoustic_sum_rule_and_label_warnings(nacl):
    assert acoustic_sum_rule_violation(nacl.born_charges) == pytest.approx(0.0)
    assert check_labels(nacl, "f", 0) == []
    born = nacl.born_charges.copy()
    born[0, 1, 1] += 0.5
    assert acoustic_sum_rule_violation(born) == pytest.approx(0.5)
    eps = nacl.epsilon.copy()
    eps[0, 1] = 0.2
    warnings = check_labels(nacl.replace(born_charges=born, epsilon=eps), "f", 4)
    assert len(warnings) == 2
    assert warnings[0].startswith("f, structure 4: ") and "acoustic sum rule by 0.5" in warnings[0]
    assert "not symmetric" in warnings[1] and "0.2" in warnings[1]
    assert check_labels(nacl.replace(born_charges=born), "f", 4, asr_tol=1.0) == []
