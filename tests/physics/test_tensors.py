import e3nn_jax as e3nn
import jax
import numpy as np
import pytest

from tensorprop.physics.tensors import (BORN_IRREPS, EPSILON_IRREPS, antisymmetric_pseudovector,
                                        apply_acoustic_sum_rule, cartesian_to_irreps, epsilon_from_log,
                                        irreps_to_cartesian, log_epsilon)
from tensorprop.testing import random_rotation

RNG = np.random.default_rng(0)


def test_general_round_trip_and_irreps():
    z = RNG.normal(size=(5, 3, 3))
    x = cartesian_to_irreps(z)
    assert x.irreps == BORN_IRREPS and x.shape == (5, 9)
    np.testing.assert_allclose(irreps_to_cartesian(x), z, atol=1e-5)


def test_symmetric_round_trip_keeps_symmetric_part_only():
    a = RNG.normal(size=(4, 3, 3))
    x = cartesian_to_irreps(a, symmetric=True)
    assert x.irreps == EPSILON_IRREPS and x.shape == (4, 6)
    np.testing.assert_allclose(irreps_to_cartesian(x), 0.5 * (a + a.transpose(0, 2, 1)), atol=1e-5)


def test_scalar_part_is_scaled_trace_and_1e_is_antisymmetric_part():
    z = RNG.normal(size=(3, 3))
    x = cartesian_to_irreps(z)
    np.testing.assert_allclose(x.filter(keep="0e").array[0], np.trace(z) / np.sqrt(3), atol=1e-5)
    w = np.asarray(antisymmetric_pseudovector(z))
    # the 1e block has the norm of the antisymmetric part: |A|_F^2 = 2 |w|^2
    np.testing.assert_allclose(np.linalg.norm(x.filter(keep="1e").array), np.sqrt(2) * np.linalg.norm(w), rtol=1e-5)
    sym = 0.5 * (z + z.T) - np.trace(z) / 3 * np.eye(3)
    np.testing.assert_allclose(np.linalg.norm(x.filter(keep="2e").array), np.linalg.norm(sym), rtol=1e-5)


@pytest.mark.parametrize("improper", [False, True])
@pytest.mark.parametrize("symmetric", [False, True])
def test_wigner_d_acts_like_cartesian_rotation(improper, symmetric):
    """D(R) x(T) = x(R T R^T): the block-diagonal irreps action equals R (x) R on 9 components."""
    r = random_rotation(7, improper=improper)
    t = RNG.normal(size=(3, 3))
    t = t + t.T if symmetric else t
    x = cartesian_to_irreps(t, symmetric=symmetric)
    rotated = x.transform_by_matrix(r)
    np.testing.assert_allclose(rotated.array, cartesian_to_irreps(r @ t @ r.T, symmetric=symmetric).array,
                               atol=1e-5)


def test_pseudovector_transforms_with_determinant():
    r = random_rotation(11, improper=True)
    t = RNG.normal(size=(3, 3))
    w = np.asarray(antisymmetric_pseudovector(t))
    np.testing.assert_allclose(antisymmetric_pseudovector(r @ t @ r.T), np.linalg.det(r) * r @ w, atol=1e-5)


def test_acoustic_sum_rule_per_structure_and_padding():
    z = RNG.normal(size=(7, 3, 3)).astype(np.float32)
    node_graph = np.array([0, 0, 0, 1, 1, 2, 2])
    mask = np.array([1, 1, 1, 1, 1, 0, 0], bool)
    out = np.asarray(apply_acoustic_sum_rule(z, node_graph, mask, 3))
    np.testing.assert_allclose(out[:3].sum(0), 0, atol=1e-5)
    np.testing.assert_allclose(out[3:5].sum(0), 0, atol=1e-5)
    assert np.all(out[5:] == 0)
    np.testing.assert_allclose(out[0] - out[1], z[0] - z[1], atol=1e-5)  # differences untouched


def test_weighted_acoustic_sum_rule_shares_the_correction_by_weight():
    z = RNG.normal(size=(7, 3, 3)).astype(np.float32)
    node_graph = np.array([0, 0, 0, 1, 1, 2, 2])
    mask = np.array([1, 1, 1, 1, 1, 0, 0], bool)
    w = np.array([1.0, 3.0, 0.5, 2.0, 2.0, 7.0, 7.0], np.float32)
    out = np.asarray(apply_acoustic_sum_rule(z, node_graph, mask, 3, w))
    np.testing.assert_allclose(out[:3].sum(0), 0, atol=1e-5)
    np.testing.assert_allclose(out[3:5].sum(0), 0, atol=1e-5)
    assert np.all(out[5:] == 0)
    total = z[:3].sum(0)
    np.testing.assert_allclose(z[:3] - out[:3], (w[:3] / w[:3].sum())[:, None, None] * total, atol=1e-5)
    # equal weights (any scale) are the plain mean
    same = np.asarray(apply_acoustic_sum_rule(z, node_graph, mask, 3, np.full(7, 2.5, np.float32)))
    np.testing.assert_allclose(same, np.asarray(apply_acoustic_sum_rule(z, node_graph, mask, 3)), atol=1e-6)


def test_epsilon_positive_definite_and_equivariant():
    for seed in range(5):
        s = np.random.default_rng(seed).normal(scale=1.0, size=(3, 3))  # log(eps - 1) of real crystals
        s = s + s.T
        eps = np.asarray(epsilon_from_log(s), np.float64)
        assert np.linalg.eigvalsh(eps).min() >= 1.0
        np.testing.assert_allclose(log_epsilon(eps), s, atol=1e-3 * np.abs(s).max())
        r = random_rotation(seed, improper=bool(seed % 2))
        np.testing.assert_allclose(epsilon_from_log(r @ s @ r.T), r @ eps @ r.T, rtol=1e-4, atol=1e-4 * eps.max())


def test_epsilon_gradient_finite_at_degenerate_eigenvalues():
    g = jax.grad(lambda s: epsilon_from_log(s)[0, 0])(np.eye(3, dtype=np.float32) * 0.7)
    assert np.all(np.isfinite(g))
    assert abs(float(g[0, 0]) - np.exp(0.7)) < 1e-4


def test_irreps_to_cartesian_rejects_wrong_irreps():
    with pytest.raises(ValueError, match="expected irreps"):
        irreps_to_cartesian(e3nn.IrrepsArray("1x0e+1x1o", np.zeros(4)))


def test_log_epsilon_bound_is_identity_for_real_values_and_finite_for_wild_ones():
    from tensorprop.physics.tensors import bound_log_epsilon

    s = np.diag([1.0, 2.0, -1.0]).astype(np.float32)  # eps ~ 3.7, 8.4, 1.4
    np.testing.assert_allclose(bound_log_epsilon(s), s, rtol=6e-3)  # |S| = 2.45: 1 - tanh(x)/x = 0.5%
    wild = np.diag([300.0, -50.0, 10.0]).astype(np.float32)
    eps = np.asarray(epsilon_from_log(bound_log_epsilon(wild)))
    assert np.all(np.isfinite(eps)) and np.linalg.eigvalsh(eps).min() >= 1.0
    r = random_rotation(3)
    np.testing.assert_allclose(bound_log_epsilon(r @ wild @ r.T), r @ np.asarray(bound_log_epsilon(wild)) @ r.T,
                               atol=1e-3)
    assert np.all(np.isfinite(jax.grad(lambda x: bound_log_epsilon(x).sum())(np.zeros((3, 3), np.float32))))
