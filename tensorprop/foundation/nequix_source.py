"""The per-atom features of a Nequix checkpoint (:mod:`tensorprop.foundation`) as a feature source.

Features of each structure: the hidden node features after every interaction layer (the
checkpoint's hidden irreps, e.g. 128x0e + 64x1o + 32x2e + 32x3o, and the last layer's scalars),
concatenated in layer order. Structures are packed into batches of the budget :data:`FEATURE_BATCH`
(:func:`~tensorprop.data.batching.prediction_batches`: one batch padded to powers of two, several to the
budget, a structure beyond it alone), so that extracting the features of a whole data set compiles the
network a few times, and a few small structures cost a small batch.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..config import BatchConfig
from ..data.batching import node_slices, prediction_batches
from ..data.convert import as_crystal
from .model import load_foundation_model

__all__ = ["NequixFeatureSource", "FEATURE_BATCH"]

#: the padded shape of the feature batches: about 16 crystals of 10 atoms within 6 A
FEATURE_BATCH = BatchConfig(max_nodes=256, max_edges=16384, max_graphs=32, pad_mode="pow2")


class NequixFeatureSource:
    """Features of the Nequix checkpoint ``name`` (a published name or a path), checked against ``sha256``
    when given; see :class:`tensorprop.foundation.sources.FeatureSource` for the attributes."""

    def __init__(self, name: str, sha256: str = "", model=None):
        # ``model``: an already loaded FoundationModel (e.g. embedded in a model file) instead of a lookup
        self.model = model if model is not None else load_foundation_model(name, sha256=sha256 or None)
        self.name, self.sha256, self.cutoff = name, self.model.sha256, float(self.model.cutoff)
        self.elements = frozenset(int(z) for z in self.model.arch.atomic_numbers)
        self.layer_irreps = self.model.arch.feature_irreps()

    def __call__(self, crystals: Sequence) -> list[np.ndarray]:
        crystals = [as_crystal(c) for c in crystals]
        graphs = self.model.graphs(crystals)  # DataError for elements outside the checkpoint's set
        out: list = [None] * len(graphs)
        for idx, batch in prediction_batches(graphs, FEATURE_BATCH):
            layers = self.model.feature_arrays(batch)
            x = np.concatenate([np.asarray(f, np.float32) for f in layers], axis=1)  # [N, F]
            for i, rows in zip(idx, node_slices(graphs, idx)):
                out[i] = x[rows]
        return out
