"""The Cartesian (non-equivariant) tensor head for crystals and rotation augmentation of crystal batches."""

from __future__ import annotations

import numpy as np
import pytest

import tensorprop
from tensorprop import testing
from tensorprop.config import BatchConfig
from tensorprop.data.batching import make_labelled_batches, rotate_batch, tensor_collate, training_stream
from tensorprop.data.graph import build_graph
from tensorprop.errors import ConfigError
from tests.conftest import TINY, rocksalt_nacl, triclinic, wurtzite_zno


@pytest.fixture(scope="module")
def cartesian():
    return tensorprop.build_model({**TINY, "head": "cartesian"}, seed=4)


def test_cartesian_head_keeps_the_physical_constraints(cartesian):
    c = triclinic()
    testing.check_sum_rule(cartesian.predict, c)
    testing.check_epsilon_physical(cartesian.predict, c)
    testing.check_permutation(cartesian.predict, c, np.array([2, 0, 3, 1]))
    testing.check_translation(cartesian.predict, c, np.array([0.3, -1.2, 2.0]))


def test_cartesian_head_is_measurably_not_equivariant(cartesian):
    c, r = triclinic(), testing.random_rotation(5)
    z0, z1 = cartesian.predict(c)["born_charges"], cartesian.predict(testing.rotate(c, r))["born_charges"]
    assert np.abs(z1 - r @ z0 @ r.T).max() > 1e-2
    with pytest.raises(AssertionError):
        testing.check_rotation(cartesian.predict, c, r)


def test_unknown_head_is_a_config_error():
    with pytest.raises(ConfigError, match="model.head"):
        tensorprop.build_model({**TINY, "head": "spherical"})


def _labelled(c, seed):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(c.n_atoms, 3, 3))
    a = rng.normal(size=(3, 3))
    return c.replace(born_charges=z - z.mean(0), epsilon=np.eye(3) * 2 + a @ a.T)


def _stream(graphs, budget, seed, start_step=0, **augmentation):
    """The crystal-tensor training stream (as the tensors task builds it) of ``graphs``."""
    return training_stream(graphs, budget, seed, tensor_collate(graphs, budget, seed, **augmentation), start_step)


def test_rotate_batch_equals_batch_of_rotated_structures(tiny_model):
    crystals = [_labelled(c, i) for i, c in enumerate((rocksalt_nacl(), wurtzite_zno(), triclinic()))]
    budget = BatchConfig(max_nodes=16, max_edges=1024, max_graphs=3)
    batch = make_labelled_batches([build_graph(c, 4.0) for c in crystals], budget)[0][1]
    rots = np.stack([testing.random_rotation(s, improper=s == 1) for s in range(4)])
    rotated = rotate_batch(batch, rots)
    direct = make_labelled_batches([build_graph(testing.rotate(c, r), 4.0) for c, r in zip(crystals, rots)],
                                   budget)[0][1]
    n = int(batch.inputs.node_mask.sum())
    for part, field, real in (("inputs", "positions", n), ("labels", "born_charges", n), ("inputs", "cell", 3),
                              ("labels", "epsilon", 3)):
        np.testing.assert_allclose(getattr(getattr(rotated, part), field)[:real],
                                   getattr(getattr(direct, part), field)[:real], atol=1e-5, err_msg=field)
    pr = tiny_model.apply(tiny_model.params, tiny_model.stats, rotated.inputs)
    pd = tiny_model.apply(tiny_model.params, tiny_model.stats, direct.inputs)
    np.testing.assert_allclose(np.asarray(pr["born_charges"])[:n], np.asarray(pd["born_charges"])[:n], atol=1e-4)


def test_crystal_augmentation_stream_is_deterministic():
    graphs = [build_graph(_labelled(c, i), 4.0) for i, c in enumerate((rocksalt_nacl(), wurtzite_zno(), triclinic()))]
    budget = BatchConfig(max_nodes=8, max_edges=1024, max_graphs=2)
    a = [b for _, (_, b) in zip(range(5), _stream(graphs, budget, 3, augment_rotations=True))]
    b = [b for _, (_, b) in zip(range(3), _stream(graphs, budget, 3, start_step=2, augment_rotations=True))]
    plain = [b for _, (_, b) in zip(range(5), _stream(graphs, budget, 3))]
    for x, y in zip(a[2:], b):
        np.testing.assert_array_equal(x.inputs.positions, y.inputs.positions)
    for (xi, x), (pi, p) in zip(a, plain):  # rotated: same traces of Z* and eps, different components
        np.testing.assert_allclose(np.trace(x.epsilon, axis1=1, axis2=2), np.trace(p.epsilon, axis1=1, axis2=2),
                                   rtol=1e-5)
        assert not np.allclose(x.born_charges[xi.node_mask], p.born_charges[pi.node_mask])


def test_position_noise_moves_real_atoms_only_and_resumes_identically():
    graphs = [build_graph(_labelled(c, i), 4.0) for i, c in enumerate((rocksalt_nacl(), wurtzite_zno(), triclinic()))]
    budget = BatchConfig(max_nodes=8, max_edges=1024, max_graphs=2)
    noisy = [b for _, (_, b) in zip(range(5), _stream(graphs, budget, 3, position_noise=0.02))]
    resumed = [b for _, (_, b) in zip(range(3), _stream(graphs, budget, 3, start_step=2, position_noise=0.02))]
    plain = [b for _, (_, b) in zip(range(5), _stream(graphs, budget, 3))]
    for x, y in zip(noisy[2:], resumed):
        np.testing.assert_array_equal(x.inputs.positions, y.inputs.positions)
    for (x, xl), (p, pl) in zip(noisy, plain):
        shift = x.positions - p.positions
        real = x.node_mask
        assert np.all(shift[~real] == 0), "padding moved"
        assert 0.005 < np.sqrt(np.mean(shift[real] ** 2)) < 0.05
        np.testing.assert_array_equal(xl.born_charges, pl.born_charges)  # labels kept
        np.testing.assert_array_equal(xl.epsilon, pl.epsilon)
    assert not np.array_equal(noisy[0].inputs.positions - plain[0].inputs.positions,
                              noisy[1].inputs.positions - plain[1].inputs.positions)
