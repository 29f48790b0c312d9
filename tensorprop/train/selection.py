"""Which weights a run keeps: the EMA weights with the best validation figures.

One backbone for all targets: the weights of the evaluation with the lowest total validation
loss. One backbone per target (``model.backbone_per_target``): the networks of the targets
share no parameter, so each target keeps its own best evaluation, judged by its own
validation MAE, and the saved model joins them (Z* from one step, eps_inf from another).
"""

from __future__ import annotations
from ..outputs import BORN_CHARGES, EPSILON

__all__ = ["target_groups", "update_best"]

#: validation metric and parameter prefixes of each separately selected target
_GROUPS = {BORN_CHARGES: ("valid_born_mae", ("backbone_born_charges", "born_head")),
           EPSILON: ("valid_epsilon_mae", ("backbone_epsilon", "epsilon_head"))}


def target_groups(model_config) -> dict | None:
    """``{target: (metric, parameter prefixes)}`` of targets selected independently, or None."""
    targets = [t for t in model_config.targets if t in _GROUPS]
    if not getattr(model_config, "backbone_per_target", False) or len(targets) < 2:
        return None
    return {t: _GROUPS[t] for t in targets}


def update_best(best: dict, record: dict, groups: dict | None, ema_params, best_params):
    """Fold one validation ``record`` into ``best``; returns (best, params to save or None).

    ``ema_params``: a callable giving the current EMA weights on the host (called only when
    something improved); ``best_params``: the weights saved so far (None before the first save).
    """
    step = record["step"]
    if groups is None:
        if not record["valid_loss"] < best["valid_loss"]:
            return {**best, "evals_since_best": best["evals_since_best"] + 1}, None
        return ({"valid_loss": record["valid_loss"], "evals_since_best": 0, "best_step": step,
                 **{k: v for k, v in record.items() if k.startswith("valid_")}}, ema_params())
    per_target = dict(best.get("per_target", {}))
    improved = [t for t, (metric, _) in groups.items()
                if record[metric] < per_target.get(t, {}).get(metric, float("inf"))]
    if not improved:
        return {**best, "evals_since_best": best["evals_since_best"] + 1}, None
    ema = ema_params()
    prefixes = tuple(p for t in improved for p in groups[t][1])
    params = ema if best_params is None else {
        k: (ema[k] if k.split("/")[0] in prefixes else best_params[k]) for k in ema}
    for t in improved:
        metric = groups[t][0]
        per_target[t] = {"step": step, metric: record[metric]}
    new = {"valid_loss": min(record["valid_loss"], best["valid_loss"]), "evals_since_best": 0, "best_step": step,
           "per_target": per_target, **{m: per_target[t][m] for t, (m, _) in groups.items() if t in per_target}}
    return new, params
