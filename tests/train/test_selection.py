"""Which weights a run keeps: best total validation loss, or each target's own best with one
backbone per target."""

import numpy as np

from tensorprop.config import ModelConfig
from tensorprop.train.selection import target_groups, update_best

START = {"valid_loss": float("inf"), "evals_since_best": 0, "best_step": 0}


def _params(value):
    return {"backbone_born_charges/interaction_0/post_linear": {"w": np.full(2, value)},
            "born_head/linear": {"w": np.full(2, value)},
            "backbone_epsilon/interaction_0/post_linear": {"w": np.full(2, value)},
            "epsilon_head/linear": {"w": np.full(2, value)}}


def _record(step, born, eps):
    return {"step": step, "valid_loss": born + eps, "valid_born_mae": born, "valid_epsilon_mae": eps}


def test_groups_only_with_one_backbone_per_target():
    assert target_groups(ModelConfig()) is None
    assert target_groups(ModelConfig(backbone_per_target=True, targets=("born_charges",))) is None
    groups = target_groups(ModelConfig(backbone_per_target=True))
    assert set(groups) == {"born_charges", "epsilon"}


def test_shared_backbone_keeps_the_lowest_total_loss():
    best, saved = update_best(START, _record(10, 0.3, 0.5), None, lambda: _params(1.0), None)
    assert best["best_step"] == 10 and saved["born_head/linear"]["w"][0] == 1.0
    best, saved = update_best(best, _record(20, 0.2, 0.9), None, lambda: _params(2.0), saved)
    assert saved is None and best["best_step"] == 10 and best["evals_since_best"] == 1


def test_each_target_keeps_its_own_best_step():
    groups = target_groups(ModelConfig(backbone_per_target=True))
    best, saved = update_best(START, _record(10, 0.3, 0.5), groups, lambda: _params(1.0), None)
    # Z* improves, eps gets worse: Z* weights from step 20, eps weights stay from step 10
    best, saved = update_best(best, _record(20, 0.2, 0.9), groups, lambda: _params(2.0), saved)
    assert saved["born_head/linear"]["w"][0] == 2.0
    assert saved["backbone_born_charges/interaction_0/post_linear"]["w"][0] == 2.0
    assert saved["epsilon_head/linear"]["w"][0] == 1.0
    assert saved["backbone_epsilon/interaction_0/post_linear"]["w"][0] == 1.0
    assert best["per_target"]["born_charges"]["step"] == 20 and best["per_target"]["epsilon"]["step"] == 10
    assert best["valid_born_mae"] == 0.2 and best["valid_epsilon_mae"] == 0.5
    # neither improves: nothing saved, patience counts
    best, again = update_best(best, _record(30, 0.25, 0.6), groups, lambda: _params(3.0), saved)
    assert again is None and best["evals_since_best"] == 1
