"""Faults during training: a non-finite loss is detected, the step is skipped and counted."""

from __future__ import annotations

import jax
import numpy as np

import tensorprop
from tensorprop.config import BatchConfig, TrainConfig
from tensorprop.data.batching import make_batches
from tensorprop.data.graph import build_graph
from tensorprop.train.state import init_state, make_optimizer, make_train_step
from tests.conftest import TINY, rocksalt_nacl, wurtzite_zno


def _labelled(c):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(c.n_atoms, 3, 3))
    return c.replace(born_charges=z - z.mean(0), epsilon=np.eye(3) * 3.0)


def test_nan_batch_is_skipped_and_counted():
    model = tensorprop.build_model(TINY, seed=0)
    graphs = [build_graph(_labelled(c), 4.0) for c in (rocksalt_nacl(), wurtzite_zno())]
    batch = make_batches(graphs, BatchConfig(max_nodes=16, max_edges=512, max_graphs=2))[0][1]
    poisoned = batch._replace(positions=np.where(np.arange(len(batch.positions))[:, None] == 1, np.nan,
                                                 batch.positions).astype(batch.positions.dtype))
    cfg = TrainConfig(max_steps=10, warmup_steps=1, learning_rate=1e-2)
    opt = make_optimizer(cfg)
    step = make_train_step(model.apply, opt, cfg)
    state = init_state(model.params, opt)
    before = jax.tree.map(np.array, state.params)

    state, m = step(state, model.stats, poisoned)
    assert not bool(m["finite"]) and int(state.skipped) == 1 and int(state.step) == 1
    for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(state.params)):
        np.testing.assert_array_equal(a, np.asarray(b))  # untouched: no NaN reached the weights
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(state.ema_params))

    for _ in range(2):  # training goes on with good batches (the first is the warm-up's zero learning rate)
        state, m = step(state, model.stats, batch)
        assert bool(m["finite"]) and int(state.skipped) == 1
    assert any(not np.array_equal(a, np.asarray(b)) for a, b in zip(jax.tree.leaves(before),
                                                                    jax.tree.leaves(state.params)))
