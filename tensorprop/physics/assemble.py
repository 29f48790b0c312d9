"""Raw network irreps -> physical tensors: Z* with the exact acoustic sum rule, eps_inf >= 1.

``stats`` carries the per-species scale/shift of the Born-charge diagonal and the shift of
log(eps - 1) learned from training statistics (see ``default_stats``); they are
constants, not trained parameters.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from ..nn.backbone import NUM_ELEMENTS
from ..outputs import BORN_CHARGES, EPSILON, EPSILON_LOG
from .tensors import apply_acoustic_sum_rule, bound_log_epsilon, epsilon_from_log, irreps_to_cartesian

__all__ = ["default_stats", "assemble_tensors"]


def default_stats() -> dict[str, np.ndarray]:
    """Neutral statistics: unit scale, zero shift (per atomic number), log-eps shift 1.

    born_scale (119,), born_shift (119,) in e; epsilon_log_shift () so that an
    untrained model predicts eps ~ 1 + e = 3.7 I.
    """
    return {
        "born_scale": np.ones(NUM_ELEMENTS, np.float32),
        "born_shift": np.zeros(NUM_ELEMENTS, np.float32),
        "epsilon_log_shift": np.asarray(1.0, np.float32),
    }


def assemble_tensors(raw: dict, batch, stats: dict) -> dict:
    """Turn raw irreps into Cartesian tensors.

    Returns a dict with (only for the heads present in ``raw``):
    ``born_charges`` (N, 3, 3) e, sum over each structure's atoms exactly zero, padded rows zero (the
    correction shared by ``raw["born_sum_rule_weights"]`` (N,) when present, else equally);
    ``epsilon`` (G, 3, 3) symmetric, eigenvalues > 1; ``epsilon_log`` (G, 3, 3) = logm(eps - I).
    """
    out = {}
    if "born_irreps" in raw:
        z = irreps_to_cartesian(raw["born_irreps"], symmetric=False)  # [N, 3, 3]
        scale = jnp.asarray(stats["born_scale"], z.dtype)[batch.numbers]
        shift = jnp.asarray(stats["born_shift"], z.dtype)[batch.numbers]
        z = scale[:, None, None] * z + shift[:, None, None] * jnp.eye(3, dtype=z.dtype)
        out[BORN_CHARGES] = apply_acoustic_sum_rule(z, batch.node_graph, batch.node_mask, batch.n_graphs,
                                                      raw.get("born_sum_rule_weights"))
    if "epsilon_irreps" in raw:
        s = irreps_to_cartesian(raw["epsilon_irreps"], symmetric=True)  # [G, 3, 3]
        s = s + jnp.asarray(stats["epsilon_log_shift"], s.dtype) * jnp.eye(3, dtype=s.dtype)
        s = bound_log_epsilon(s)
        out[EPSILON_LOG] = s
        out[EPSILON] = epsilon_from_log(s)
    return out
