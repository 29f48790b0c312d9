"""Physics test battery for any model that predicts Born charges and eps_inf.

Each ``check_*`` function takes ``predict``, a callable ``Crystal -> {"born_charges":
(n, 3, 3), "epsilon": (3, 3)}`` (either key may be absent), transforms the crystal, and
asserts that the outputs transform as the physics says. Used by tensorprop's own tests and
usable on any model a user builds.

Tolerances suit float32: errors are measured relative to the largest entry of the
reference output (``rtol``, default 1e-4), with the same bound as an absolute floor.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .data.records import Crystal

__all__ = [
    "random_rotation",
    "rotate",
    "permute",
    "translate",
    "supercell",
    "assert_tensors_close",
    "check_rotation",
    "check_permutation",
    "check_translation",
    "check_supercell",
    "check_sum_rule",
    "check_epsilon_physical",
]

Predict = Callable[[Crystal], dict]


def random_rotation(seed: int | np.random.Generator, *, improper: bool = False) -> np.ndarray:
    """A Haar-random rotation (3, 3); with ``improper`` a rotoinversion (det = -1)."""
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return -q if improper else q


def rotate(crystal: Crystal, rotation: np.ndarray) -> Crystal:
    """Rotate positions, cell and labels: r -> R r, Z -> R Z R^T, eps -> R eps R^T."""
    r = np.asarray(rotation)
    born = None if crystal.born_charges is None else r @ crystal.born_charges @ r.T
    eps = None if crystal.epsilon is None else r @ crystal.epsilon @ r.T
    return crystal.replace(positions=crystal.positions @ r.T, cell=crystal.cell @ r.T, born_charges=born,
                           epsilon=eps)


def permute(crystal: Crystal, order: np.ndarray) -> Crystal:
    """Reorder atoms: new atom k is old atom ``order[k]``."""
    order = np.asarray(order)
    born = None if crystal.born_charges is None else crystal.born_charges[order]
    return crystal.replace(numbers=crystal.numbers[order], positions=crystal.positions[order], born_charges=born)


def translate(crystal: Crystal, shift: np.ndarray) -> Crystal:
    """Rigidly translate all atoms by ``shift`` (Angstrom); labels unchanged."""
    return crystal.replace(positions=crystal.positions + np.asarray(shift))


def supercell(crystal: Crystal, matrix) -> tuple[Crystal, np.ndarray]:
    """Cell choice ``new_cell = matrix @ cell`` (integer matrix, det != 0).

    Returns the new crystal (atoms wrapped into the new cell) and ``parent`` (n_new,):
    the index of the original atom each new atom is an image of. Works for supercells
    (det > 1) and for other choices of the same lattice (det = +-1).
    """
    m = np.asarray(matrix, dtype=int).reshape(3, 3)
    det = int(round(abs(np.linalg.det(m))))
    if det == 0:
        raise ValueError("the supercell matrix must be non-singular")
    new_cell = m @ crystal.cell
    frac_old = crystal.positions @ np.linalg.inv(crystal.cell)  # [n, 3]
    # lattice points of the old lattice inside the new cell: search a box of translations
    reach = int(np.abs(m).sum(axis=0).max())
    grid = np.stack(np.meshgrid(*[np.arange(-reach, reach + 1)] * 3, indexing="ij"), -1).reshape(-1, 3)
    inv_new = np.linalg.inv(new_cell)
    positions, parent = [], []
    for i, f in enumerate(frac_old):
        cart = (f + grid) @ crystal.cell  # [k, 3]
        frac_new = cart @ inv_new
        inside = np.all((frac_new >= -1e-9) & (frac_new < 1 - 1e-9), axis=1)
        # wrapping of images lying on the boundary: keep unique fractional positions
        kept = np.unique(np.round(np.mod(frac_new[inside], 1.0), 8), axis=0)
        positions.append(kept @ new_cell)
        parent += [i] * len(kept)
    positions = np.concatenate(positions)
    parent = np.asarray(parent)
    if len(parent) != det * crystal.n_atoms:
        raise AssertionError(f"supercell construction found {len(parent)} atoms, expected {det * crystal.n_atoms}")
    born = None if crystal.born_charges is None else crystal.born_charges[parent]
    return crystal.replace(numbers=crystal.numbers[parent], positions=positions, cell=new_cell,
                           born_charges=born), parent


def assert_tensors_close(actual, expected, *, rtol: float = 1e-4, what: str = "tensor"):
    """|actual - expected| <= rtol * max(1, max|expected|) elementwise, with a readable message."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    scale = max(1.0, float(np.max(np.abs(expected))) if expected.size else 1.0)
    err = float(np.max(np.abs(actual - expected))) if expected.size else 0.0
    if not err <= rtol * scale:
        raise AssertionError(f"{what}: max deviation {err:.3g} exceeds {rtol:g} x scale {scale:.3g}")


def _compare(out, ref, rtol, what, born_index=None, transform=None):
    t = transform or (lambda x: x)
    if "born_charges" in ref:
        expected = t(ref["born_charges"])
        if born_index is not None:
            expected = expected[born_index]
        assert_tensors_close(out["born_charges"], expected, rtol=rtol, what=f"born_charges ({what})")
    if "epsilon" in ref:
        assert_tensors_close(out["epsilon"], t(ref["epsilon"]), rtol=rtol, what=f"epsilon ({what})")
    # invariant outputs (an ensemble's spread): permuted with the atoms, unchanged by rotations
    if "born_charges_spread" in ref:
        expected = ref["born_charges_spread"] if born_index is None else ref["born_charges_spread"][born_index]
        assert_tensors_close(out["born_charges_spread"], expected, rtol=rtol, what=f"born_charges_spread ({what})")
    if "epsilon_spread" in ref:
        assert_tensors_close(out["epsilon_spread"], ref["epsilon_spread"], rtol=rtol, what=f"epsilon_spread ({what})")


def check_rotation(predict: Predict, crystal: Crystal, rotation: np.ndarray, *, rtol: float = 1e-4):
    """Z*_i(R x) = R Z*_i(x) R^T and eps(R x) = R eps(x) R^T (proper or improper R)."""
    r = np.asarray(rotation)
    ref, out = predict(crystal), predict(rotate(crystal, r))
    _compare(out, ref, rtol, f"rotation det={np.linalg.det(r):+.0f}", transform=lambda x: r @ x @ r.T)


def check_permutation(predict: Predict, crystal: Crystal, order: np.ndarray, *, rtol: float = 1e-4):
    """Permuting atoms permutes Z* the same way and leaves eps unchanged."""
    ref, out = predict(crystal), predict(permute(crystal, order))
    _compare(out, ref, rtol, "permutation", born_index=np.asarray(order))


def check_translation(predict: Predict, crystal: Crystal, shift: np.ndarray, *, rtol: float = 1e-4):
    """A rigid translation changes nothing."""
    _compare(predict(translate(crystal, shift)), predict(crystal), rtol, "translation")


def check_supercell(predict: Predict, crystal: Crystal, matrix, *, rtol: float = 1e-4):
    """A supercell or another cell choice gives the tiled Z* and the same eps."""
    big, parent = supercell(crystal, matrix)
    _compare(predict(big), predict(crystal), rtol, f"cell choice {np.asarray(matrix).tolist()}", born_index=parent)


def check_sum_rule(predict: Predict, crystal: Crystal, *, atol: float = 1e-5):
    """sum_i Z*_i = 0 (acoustic sum rule), to float32 rounding of the largest charge."""
    z = np.asarray(predict(crystal)["born_charges"])
    total = np.abs(z.sum(axis=0)).max()
    bound = atol * max(1.0, np.abs(z).max()) * max(1, len(z))
    if not total <= bound:
        raise AssertionError(f"acoustic sum rule violated: |sum Z*| = {total:.3g} > {bound:.3g}")


def check_epsilon_physical(predict: Predict, crystal: Crystal, *, atol: float = 1e-5):
    """eps_inf symmetric with every eigenvalue >= 1."""
    eps = np.asarray(predict(crystal)["epsilon"])
    assert_tensors_close(eps, eps.T, rtol=atol, what="epsilon symmetry")
    w = np.linalg.eigvalsh(0.5 * (eps + eps.T))
    if not w.min() >= 1.0 - atol:
        raise AssertionError(f"epsilon has eigenvalue {w.min():.6g} < 1")
