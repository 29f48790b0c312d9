"""Crystal tensors from heads on the per-atom features of a frozen foundation model (``model.task: foundation``):
the tensors family with another backbone. Its batches carry the features (:class:`FeatureBatch`); the
model file (``model_kind: foundation``) names the foundation checkpoint by name and SHA256."""

from __future__ import annotations

import dataclasses

import haiku as hk
import jax.numpy as jnp
import numpy as np

from ..config import TARGETS
from ..data.batching import example_batch
from ..data.feature_batching import FeatureBatch
from ..errors import ConfigError
from ..foundation.sources import all_layers_trained
from ..irreps_text import irreps_dim
from ..nn.feature_heads import feature_heads_fn
from ..outputs import BORN_CHARGES, BORN_CHARGES_SPREAD, EPSILON, EPSILON_SPREAD
from ..physics.assemble import assemble_tensors
from ..train.losses import loss_fn
from ..train.model_evaluation import evaluate_tensors
from .base import register
from .tensors import TensorsTask

__all__ = ["FoundationTask", "FOUNDATION"]


@dataclasses.dataclass(frozen=True)
class FoundationTask(TensorsTask):
    """Equivariant Z*/eps_inf heads (:mod:`tensorprop.nn.feature_heads`) on precomputed per-atom features."""

    def validate(self, config) -> None:
        """Equivariant heads on crystal targets, one set of features (no backbone per target); then the tensors'
        checks."""
        if config.head != "equivariant" or config.backbone_per_target or not set(config.targets) <= set(TARGETS):
            raise ConfigError("model.foundation needs model.head: equivariant, crystal targets "
                              "(born_charges, epsilon) and no model.backbone_per_target")
        super().validate(config)

    def network(self, config):
        return hk.without_apply_rng(hk.transform(feature_heads_fn(config)))

    def apply(self, config, params, stats, inputs: FeatureBatch) -> dict:
        return assemble_tensors(self.network(config).apply(params, inputs), inputs.graph, stats)

    def init_args(self, config) -> tuple:
        return (self.prediction_input(config, example_batch(config.cutoff)),)

    def prediction_input(self, config, graph) -> FeatureBatch:
        """``graph`` with zero features of the configured width."""
        width = irreps_dim(config.foundation.feature_irreps)
        return FeatureBatch(graph, np.zeros((graph.numbers.shape[0], width), graph.positions.dtype))

    def network_input(self, batch):
        """The FeatureBatch (the graph and the features) as it comes; a bare GraphBatch (an ensemble's graph, for a
        member that reads no features: every Nequix layer fine-tuned) with zero feature columns."""
        if isinstance(batch, FeatureBatch):
            return batch
        return FeatureBatch(batch, jnp.zeros((batch.numbers.shape[0], 0), batch.positions.dtype))

    def features_read(self, config) -> tuple | None:
        """(checkpoint name, SHA256, layers, feature irreps); None when every layer is fine-tuned (the network
        starts from the species and reads the graph alone)."""
        fc = config.foundation
        if all_layers_trained(fc):
            return None
        return fc.name, fc.sha256, tuple(fc.layers), fc.feature_irreps

    def ensemble_member_ok(self, config) -> bool:
        """Frozen heads, or every Nequix layer fine-tuned: a model that fine-tunes only its last layers reads the
        frozen lower layers' features, which an ensemble's feature batch (all layers of the checkpoint) lacks."""
        return config.foundation.mode == "frozen" or all_layers_trained(config.foundation)


FOUNDATION = register(FoundationTask(name="foundation", model_kind="foundation",
                                     outputs=(BORN_CHARGES, BORN_CHARGES_SPREAD, EPSILON, EPSILON_SPREAD), loss=loss_fn,
                                     evaluate=evaluate_tensors, ensemble_member=True))
