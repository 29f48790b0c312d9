"""A tensor model whose heads read the per-atom features of a foundation model (``model.foundation``).

The model file holds the heads' weights, the training statistics and the config, which names the
foundation checkpoint and its SHA256 (``model_config.foundation``); the frozen foundation weights
themselves are found at load time by name (see :func:`tensorprop.foundation.sources.open_source`) and
refused when their SHA256 differs. A fine-tuned model (``mode: finetune``) also holds the weights of
the layers it trained (modules ``nequix_layer_<i>``, :mod:`tensorprop.foundation.finetune`), which
replace the checkpoint's; only the layers below them come from the checkpoint.
"""

from __future__ import annotations

import numpy as np

from .api import TensorModel
from .data.feature_batching import with_features
from .data.feature_cache import FeatureCache, cached_features
from .foundation.sources import batch_columns, open_source
from .loading import register_kind

__all__ = ["FoundationTensorModel"]


class FoundationTensorModel(TensorModel):
    """:class:`~tensorprop.api.TensorModel` on foundation features; ``source`` (optional) is the opened
    feature source (otherwise opened on first use from ``config.foundation``'s name and SHA256)."""

    MODEL_KIND = "foundation"

    def __init__(self, config, params, stats=None, *, elements=None, metadata=None, source=None):
        super().__init__(config, params, stats, elements=elements, metadata=metadata)
        self._source = source
        self._columns = None
        #: a :class:`~tensorprop.data.feature_cache.FeatureCache` of the source's features, or None (default:
        #: every prediction computes them); set it to reuse the training cache, e.g. in benchmarks
        self.feature_cache = None

    @property
    def source(self):
        if self._source is None:
            fc = self.config.foundation
            self._source = open_source(fc.name, fc.sha256)
        return self._source

    def features(self, crystals, *, progress: bool = False) -> list[np.ndarray]:
        """The per-atom features (n_atoms, F) a batch carries for each crystal: the configured layers of the
        source's (frozen mode) or the frozen layers below the fine-tuned ones (finetune mode)."""
        source = self.source  # refuses elements outside its set (the Nequix source: FoundationModel.check_elements)
        if self._columns is None:
            self._columns, _ = batch_columns(self.config.foundation, source.layer_irreps)
        if not len(self._columns):  # every layer fine-tuned: the network starts from the species alone
            crystals = list(crystals)
            for i, c in enumerate(crystals):
                source.model.check_elements(c, i if len(crystals) > 1 else None)
            return [np.zeros((c.n_atoms, 0), np.float32) for c in crystals]
        if self.feature_cache is None:
            return [f[:, self._columns] for f in source(list(crystals))]
        features = cached_features(list(crystals), source, self.feature_cache, progress=progress)
        return [f[:, self._columns] for f in features]

    def use_feature_cache(self, root=None) -> "FoundationTensorModel":
        """Read and fill the on-disk feature cache (as training does) when predicting; returns self."""
        self.feature_cache = FeatureCache(self.source.sha256, "+".join(self.source.layer_irreps), root=root)
        return self

    def _network_inputs(self, batch, idx, crystals):
        return with_features(batch, self.features([crystals[i] for i in idx]), batch.positions.dtype)

    def with_params(self, params, metadata: dict | None = None) -> "FoundationTensorModel":
        return FoundationTensorModel(self.config, params, self.stats, elements=self.elements,
                                     metadata={**self.metadata, **(metadata or {})}, source=self._source)

    def file_header(self) -> dict:
        return {**super().file_header(), "model_kind": self.MODEL_KIND}


register_kind(FoundationTensorModel.MODEL_KIND, FoundationTensorModel)
