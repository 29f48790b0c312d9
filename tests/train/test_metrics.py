"""Error metrics of predictions against labels, checked on hand-made numbers."""

import numpy as np

from tensorprop.data.records import Crystal
from tensorprop.train.evaluate import coverage_metrics, spread_metrics, tensor_metrics


def _crystal(numbers, born, eps):
    n = len(numbers)
    return Crystal(numbers=np.asarray(numbers), positions=np.arange(3 * n, dtype=float).reshape(n, 3),
                   cell=10 * np.eye(3), pbc=np.ones(3, bool), born_charges=born, epsilon=eps)


def test_tensor_metrics_on_known_errors():
    born = np.zeros((2, 3, 3))
    c = _crystal([11, 17], born, 2 * np.eye(3))
    pred = {"born_charges": born + np.array([0.1, -0.3])[:, None, None], "epsilon": 2 * np.eye(3) + 0.9 * np.eye(3)}
    m = tensor_metrics([c], [pred])
    assert np.isclose(m["born_mae"], 0.2) and np.isclose(m["born_rmse"], np.sqrt(0.05))
    assert np.allclose(
        [m["born_mae_per_element"]["Na"], m["born_mae_per_element"]["Cl"]], [0.1, 0.3])
    assert np.isclose(m["epsilon_mae"], 0.3) and np.isclose(m["epsilon_mae_diagonal"], 0.9)
    assert m["epsilon_mae_offdiagonal"] == 0.0
    assert "born_spread" not in m  # a single model has no spread


def test_coverage_metrics_split_by_training_counts():
    z = np.zeros((2, 3, 3))
    train = [_crystal([11, 17], z, None), _crystal([11, 8], z, None), _crystal([11, 17], z, None)]
    crystals = [_crystal([11, 17], z, None), _crystal([11, 8], z, None), _crystal([42, 17], z, None)]
    preds = [{"born_charges": z + 0.1}, {"born_charges": z + 0.3}, {"born_charges": z + 2.0}]
    m = coverage_metrics(train, crystals, preds, thresholds=(1, 2, 4))
    # NaCl: Na in 3, Cl in 2 training structures; NaO: O in 1; MoCl: Mo in none
    assert m["1"]["covered_n_structures"] == 2 and np.isclose(m["1"]["covered_born_mae"], 0.2)
    assert m["1"]["rest_n_structures"] == 1 and np.isclose(m["1"]["rest_born_mae"], 2.0)
    assert m["2"]["covered_n_structures"] == 1 and np.isclose(m["2"]["covered_born_mae"], 0.1)
    assert np.isclose(m["2"]["rest_born_mae"], 1.15)
    assert m["4"]["covered_n_structures"] == 0 and m["4"]["covered_born_mae"] is None


def test_spread_metrics_rank_and_share():
    spread = np.array([0.1, 0.2, 0.3, 0.4, 5.0, 0.05, 0.15, 0.25, 0.35, 0.45])
    error = np.array([1.0, 2.0, 3.0, 4.0, 90.0, 0.5, 1.5, 2.5, 3.5, 4.5])  # same order as the spread
    m = spread_metrics(spread, error, flag_fraction=0.1)
    assert np.isclose(m["spearman_with_error"], 1.0)
    assert np.isclose(m["error_share_flagged"], 90.0 / error.sum())  # the one flagged item is the worst
    assert np.isclose(m["mae_unflagged"], (error.sum() - 90.0) / 9)
    reversed_ = spread_metrics(spread, 100 - error)  # large spread where the error is small
    assert reversed_["spearman_with_error"] < -0.99


def test_ensemble_predictions_carry_spread_metrics():
    born = np.zeros((2, 3, 3))
    c = _crystal([11, 17], born, 2 * np.eye(3))
    pred = {"born_charges": born + np.array([0.1, -0.3])[:, None, None], "born_charges_spread": np.array([0.05, 0.2]),
            "epsilon": 2.5 * np.eye(3), "epsilon_spread": np.array(0.1)}
    m = tensor_metrics([c, c], [pred, pred])
    assert np.isclose(m["born_spread"]["mean"], 0.125)
    assert np.isclose(m["born_spread"]["spearman_with_error"], 1.0)
    assert np.isclose(m["epsilon_spread"]["mean"], 0.1)
