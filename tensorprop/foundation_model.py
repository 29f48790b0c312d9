"""A tensor model whose heads read the per-atom features of a foundation model (``model.foundation``).

The model file holds the heads' weights, the training statistics and the config, which names the
foundation checkpoint and its SHA256 (``model_config.foundation``); the frozen foundation weights
themselves are found at load time by name (see :func:`tensorprop.foundation.sources.open_source`) and
refused when their SHA256 differs. A fine-tuned model (``mode: finetune``) also holds the weights of
the layers it trained (modules ``nequix_layer_<i>``, :mod:`tensorprop.foundation.finetune`), which
replace the checkpoint's; only the layers below them come from the checkpoint.

A model may instead embed the frozen checkpoint (:meth:`FoundationTensorModel.embedded`; ``tensorprop ensemble
--embed-foundation``): its weights are written into the model file (module :data:`EMBEDDED`, one array per leaf
in the checkpoint's order) with the checkpoint's JSON config, name and SHA256 in the header, so the file
predicts with no checkpoint on disk and no download (the bundled model does so). Embedded Nequix weights
are MIT-licensed: ``tensorprop/foundation/LICENSE-nequix`` goes with any file that holds them.
"""

from __future__ import annotations

import numpy as np

from .api import TensorModel
from .data.feature_batching import with_features
from .data.feature_cache import FeatureCache, cached_features
from .errors import CheckpointError, ConfigError
from .foundation.model import foundation_model_from_records
from .foundation.nequix_source import NequixFeatureSource
from .foundation.sources import batch_columns, open_source
from .loading import register_kind

__all__ = ["FoundationTensorModel", "EMBEDDED"]

#: the model-file module that holds an embedded foundation checkpoint's weights
EMBEDDED = "foundation_checkpoint"


class FoundationTensorModel(TensorModel):
    """:class:`~tensorprop.api.TensorModel` on foundation features; ``source`` (optional) is the opened
    feature source (otherwise opened on first use from ``config.foundation``'s name and SHA256)."""

    MODEL_KIND = "foundation"

    def __init__(self, config, params, stats=None, *, elements=None, metadata=None, source=None, embed=False):
        super().__init__(config, params, stats, elements=elements, metadata=metadata)
        self._source = source
        #: whether its model file holds the frozen foundation weights (see :meth:`embedded`)
        self.embed_foundation = bool(embed)
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
                                     metadata={**self.metadata, **(metadata or {})}, source=self._source,
                                     embed=self.embed_foundation)

    def embedded(self) -> "FoundationTensorModel":
        """The same model, saved with the foundation checkpoint's weights inside its file (a few MB; the file then
        predicts without the checkpoint on disk). A fine-tuned model keeps its trained layers in its own parameters;
        the embedded checkpoint gives the architecture and the frozen layers."""
        if getattr(self.source, "model", None) is None:  # found now, not at save time
            raise ConfigError(f"model.foundation.name {self.config.foundation.name!r}: not a foundation checkpoint "
                              "whose weights a model file can embed")
        out = self.with_params(self.params)
        out.embed_foundation = True
        return out

    def file_params(self) -> dict:
        if not self.embed_foundation:
            return self.params
        records = self.source.model.records()
        return {**self.params, EMBEDDED: {f"{k:04d}": w for k, w in enumerate(records)}}

    def file_header(self) -> dict:
        header = {**super().file_header(), "model_kind": self.MODEL_KIND}
        if self.embed_foundation:
            fm = self.source.model
            header[EMBEDDED] = {"name": fm.name, "sha256": fm.sha256, "config": fm.config}
        return header

    @classmethod
    def from_file_contents(cls, path, params: dict, stats: dict, meta: dict) -> "FoundationTensorModel":
        params = dict(params)
        records = params.pop(EMBEDDED, None)
        model = super().from_file_contents(path, params, stats, meta)
        if records is None:
            return model
        header = meta.get(EMBEDDED)
        fc = model.config.foundation
        if not isinstance(header, dict) or header.get("sha256") != fc.sha256 or not isinstance(header.get("config"), dict):
            raise CheckpointError(f"{path}: embedded foundation weights without a header naming checkpoint "
                                  f"{fc.name} ({fc.sha256[:12]}...)")
        where = f"{path} (embedded {header.get('name', fc.name)})"
        fm = foundation_model_from_records(header.get("name", fc.name), fc.sha256, header["config"],
                                           [records[k] for k in sorted(records)], where)
        model._source = NequixFeatureSource(fm.name, fm.sha256, model=fm)
        model.embed_foundation = True
        return model


register_kind(FoundationTensorModel.MODEL_KIND, FoundationTensorModel)
