import numpy as np
import pytest

from tensorprop.config import BatchConfig
from tensorprop.data.batching import collate_labelled, make_batches, pack, padding_efficiency
from tensorprop.data.graph import build_graph
from tensorprop.errors import BatchBudgetError
from tensorprop.testing import supercell
from tests.conftest import rocksalt_nacl, triclinic, wurtzite_zno


@pytest.fixture(scope="module")
def graphs():
    crystals = [rocksalt_nacl(), wurtzite_zno(), triclinic(), supercell(triclinic(), np.diag([2, 2, 1]))[0]] * 3
    return [build_graph(c, 4.0) for c in crystals]


def test_packing_respects_budget_and_keeps_every_structure(graphs):
    budget = BatchConfig(max_nodes=24, max_edges=1200, max_graphs=4)
    batches = pack(graphs, budget)
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(graphs)))
    for idx in batches:
        assert sum(graphs[i].n_nodes for i in idx) <= 24
        assert sum(graphs[i].n_edges for i in idx) <= 1200
        assert len(idx) <= 4


def test_budget_mode_gives_one_shape_and_masks(graphs):
    budget = BatchConfig(max_nodes=24, max_edges=1200, max_graphs=4)
    batches = make_batches(graphs, budget)
    shapes = {(b.positions.shape, b.senders.shape, b.cell.shape) for _, b in batches}
    assert shapes == {((25, 3), (1201,), (5, 3, 3))}
    for idx, b in batches:
        n = sum(graphs[i].n_nodes for i in idx)
        assert b.node_mask.sum() == n and not b.node_mask[n:].any()
        assert b.graph_mask.sum() == len(idx)
        assert np.all(b.node_graph[~b.node_mask] == b.n_graphs - 1)  # padding belongs to the padding graph
        # padded edges stay inside the padding and have a finite, non-zero vector
        pad = ~b.edge_mask
        assert np.all(~b.node_mask[b.senders[pad]]) and np.all(np.linalg.norm(b.shifts[pad], axis=1) > 0)
        # real edges never touch padding nodes
        assert np.all(b.node_mask[b.senders[b.edge_mask]]) and np.all(b.node_mask[b.receivers[b.edge_mask]])
    eff = padding_efficiency(b for _, b in batches)
    assert 0 < eff["nodes"] <= 1 and 0 < eff["edges"] <= 1


def test_pow2_mode_pads_less(graphs):
    big = BatchConfig(max_nodes=256, max_edges=8192, max_graphs=16)
    eff_budget = padding_efficiency(b for _, b in make_batches(graphs, big))
    eff_pow2 = padding_efficiency(b for _, b in make_batches(graphs, BatchConfig(256, 8192, 16, "pow2")))
    assert eff_pow2["nodes"] > eff_budget["nodes"] and eff_pow2["edges"] > eff_budget["edges"]


def test_labels_are_carried(graphs):
    c = triclinic().replace(born_charges=np.arange(36.0).reshape(4, 3, 3), epsilon=np.diag([2.0, 3.0, 4.0]))
    g = build_graph(c, 4.0)
    b = collate_labelled([graphs[0], g], 16, 512, 3).labels
    n0 = graphs[0].n_nodes
    np.testing.assert_array_equal(b.born_charges[n0:n0 + 4], c.born_charges)
    np.testing.assert_array_equal(b.epsilon[1], c.epsilon)
    assert b.born_mask.tolist() == [False, True, False] and b.epsilon_mask.tolist() == [False, True, False]


def test_structure_larger_than_budget_is_a_clear_error(graphs):
    with pytest.raises(BatchBudgetError, match=r"structure 3 \(triclinic\) has 16 atoms"):
        pack(graphs, BatchConfig(max_nodes=8, max_edges=10000, max_graphs=4))


def test_prediction_batches_compile_few_shapes(graphs):
    from tensorprop.data.batching import MIN_PREDICTION_PADDING, prediction_batches

    budget = BatchConfig(max_nodes=24, max_edges=1200, max_graphs=4, pad_mode="pow2")
    batches = prediction_batches(graphs, budget)
    assert sorted(np.concatenate([idx for idx, _ in batches]).tolist()) == list(range(len(graphs)))
    assert len(batches) > 2
    assert {(b.numbers.shape[0], b.senders.shape[0], b.n_graphs) for _, b in batches} == {(25, 1201, 5)}  # a data set
    # one or two small structures: one shape, at least the floor
    small = [prediction_batches([g], budget)[0][1] for g in graphs[:3]] + [prediction_batches(graphs[:2], budget)[0][1]]
    assert {(b.numbers.shape[0], b.senders.shape[0], b.n_graphs) for b in small} == {MIN_PREDICTION_PADDING}
    # a structure beyond the budget is a batch of its own, the others still share the budget's shape
    tight = BatchConfig(max_nodes=8, max_edges=300, max_graphs=4, pad_mode="pow2")
    big = [i for i, g in enumerate(graphs) if g.n_nodes > 8 or g.n_edges > 300]
    assert big
    batches = prediction_batches(graphs, tight)
    alone = [idx for idx, b in batches if len(idx) == 1 and idx[0] in big]
    assert len(alone) == len(big)
    for idx, b in batches:
        assert b.node_mask.sum() == sum(graphs[i].n_nodes for i in idx)
        if idx[0] not in big:
            assert (b.numbers.shape[0], b.senders.shape[0], b.n_graphs) == (9, 301, 5)
