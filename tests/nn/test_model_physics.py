"""Equivariance, invariance and constraint tests of the untrained (random-weight) network.

A random network is a generic function: if its outputs transform correctly, the
architecture is equivariant. Each test also checks that the property is not trivially
satisfied (outputs non-zero, anisotropic), so that it could fail.
"""

import numpy as np
import pytest

from tensorprop import testing as tpt
from tests.conftest import rocksalt_nacl, triclinic, wurtzite_zno

CRYSTALS = {"triclinic": triclinic(), "ZnO": wurtzite_zno(), "NaCl": rocksalt_nacl()}


@pytest.fixture(params=["tiny_model", "variant_tiny_model"])
def net(request):
    """Every test runs on the default network and on the one with every model option on."""
    return request.getfixturevalue(request.param)


def predictor(model):
    return lambda c: model.predict(c)


def test_outputs_are_generic(net):
    out = net.predict(triclinic())
    z, eps = out["born_charges"], out["epsilon"]
    assert np.abs(z).max() > 0.1
    r = tpt.random_rotation(5)
    # a rotated tensor differs from the original: the equivariance tests below are not vacuous
    assert np.abs(r @ z[1] @ r.T - z[1]).max() > 1e-2
    assert np.abs(r @ eps @ r.T - eps).max() > 1e-3
    assert np.abs(z[1] - z[1].T).max() > 1e-3, "Z* must be allowed to be non-symmetric"


@pytest.mark.parametrize("name", list(CRYSTALS))
@pytest.mark.parametrize("improper", [False, True])
def test_rotation_equivariance(net, name, improper):
    for seed in range(2):
        r = tpt.random_rotation(100 + seed, improper=improper)
        tpt.check_rotation(predictor(net), CRYSTALS[name], r)


def test_rotation_check_catches_a_wrong_transformation(net):
    """The check itself fails for a model whose output does not rotate."""
    frozen = net.predict(triclinic())
    with pytest.raises(AssertionError, match="rotation"):
        tpt.check_rotation(lambda c: frozen, triclinic(), tpt.random_rotation(1))


@pytest.mark.parametrize("name", ["triclinic", "ZnO"])
def test_permutation_equivariance(net, name):
    c = CRYSTALS[name]
    order = np.random.default_rng(0).permutation(c.n_atoms)
    assert not np.all(order == np.arange(c.n_atoms))
    tpt.check_permutation(predictor(net), c, order)


@pytest.mark.parametrize("name", list(CRYSTALS))
def test_translation_invariance(net, name):
    tpt.check_translation(predictor(net), CRYSTALS[name], np.array([0.37, -1.21, 2.9]))


@pytest.mark.parametrize("matrix", [np.diag([2, 1, 1]), np.diag([1, 2, 2]), [[1, 1, 0], [0, 1, 0], [0, 0, 1]],
                                    [[0, 1, 0], [1, 0, 0], [0, 0, -1]]])
@pytest.mark.parametrize("name", ["triclinic", "ZnO"])
def test_cell_choice_invariance(net, name, matrix):
    tpt.check_supercell(predictor(net), CRYSTALS[name], matrix)


@pytest.mark.parametrize("name", list(CRYSTALS))
def test_sum_rule_exact_and_epsilon_physical(net, name):
    tpt.check_sum_rule(predictor(net), CRYSTALS[name])
    tpt.check_epsilon_physical(predictor(net), CRYSTALS[name])


def test_epsilon_eigenvalues_above_one_for_extreme_weights(net):
    import jax

    from tensorprop.api import TensorModel

    loud = jax.tree.map(lambda p: p * 4.0, net.params)
    model = TensorModel(net.config, loud, net.stats)
    for c in CRYSTALS.values():
        w = np.linalg.eigvalsh(model.predict(c)["epsilon"].astype(np.float64))
        assert np.all(np.isfinite(w))
        # eps = I + expm(S) >= 1 exactly; in float32 the smallest eigenvalue is resolved to ~1e-7 of the
        # largest (these weights push eps_inf up to ~1e7, far outside physics)
        assert w.min() >= 1.0 - 1e-7 * w.max()


def test_batched_equals_single(net):
    """Padding and batching do not change predictions (masks are complete)."""
    crystals = list(CRYSTALS.values()) + [tpt.supercell(triclinic(), np.diag([2, 1, 1]))[0]]
    many = net.predict_many(crystals)
    for c, m in zip(crystals, many):
        one = net.predict(c)
        tpt.assert_tensors_close(m["born_charges"], one["born_charges"], what="batched born_charges")
        tpt.assert_tensors_close(m["epsilon"], one["epsilon"], what="batched epsilon")


def test_smooth_at_cutoff(net):
    """Two atoms crossing the cutoff: outputs continuous (the envelope vanishes there)."""
    from tensorprop.data.records import Crystal

    cut = net.config.cutoff

    def dimer_in_box(d):
        return Crystal(numbers=[11, 17, 11], positions=[[0, 0, 0], [1.9, 0, 0], [1.9 + d, 0.0, 0.0]],
                       cell=np.eye(3) * 30, pbc=True)

    below = net.predict(dimer_in_box(cut - 1.9 - 1e-4))
    above = net.predict(dimer_in_box(cut - 1.9 + 1e-4))
    # atom 0 sees atom 2 only below the cutoff; its tensor must not jump
    np.testing.assert_allclose(below["born_charges"][0], above["born_charges"][0], atol=1e-4)


def test_weighted_sum_rule_shares_are_generic(variant_tiny_model):
    """The weighted sum rule's shares differ between atoms, so the equivariance tests above check a
    correction that is not the plain mean; the sum over the atoms is still exactly zero."""
    from tensorprop.config import BatchConfig
    from tensorprop.data.batching import make_batches
    from tensorprop.data.graph import build_graph

    model = variant_tiny_model
    [(_, batch)] = make_batches([build_graph(triclinic(), model.config.cutoff)], BatchConfig(pad_mode="pow2"))
    raw = model._network.apply(model.params, batch)
    w = np.asarray(raw["born_sum_rule_weights"])[np.asarray(batch.node_mask)]
    assert w.shape == (4,) and w.min() > 0
    assert w.max() / w.min() > 1.05, w
    z = model.predict(triclinic())["born_charges"]
    np.testing.assert_allclose(z.sum(0), 0, atol=1e-5)
