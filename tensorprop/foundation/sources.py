"""Feature sources: structures -> per-atom features of a frozen network, for the heads of ``model.foundation``
(the foundation task's first stage: its batches carry these features, :mod:`tensorprop.data.feature_batching`).

A feature source has a ``name``, the ``sha256`` of its weights (the key of the feature cache and
the reference a model file keeps), ``layer_irreps`` (the irreps of each layer's features, in
order), ``cutoff`` (Angstrom) and ``elements`` (atomic numbers it knows, or None), and is called
with a list of :class:`~tensorprop.data.records.Crystal` to give one (n_atoms, F) float32 array
each, the layers' features concatenated in order.

``stand-in:nequip`` is tensorprop's own NequIP backbone with fixed random weights (seed 0): the
cheap source of the tests; a Nequix checkpoint is the real one (see :func:`open_source`).
"""

from __future__ import annotations

import functools
import hashlib
from typing import Protocol, Sequence

import haiku as hk
import jax
import numpy as np

from ..compiled import compile_once
from ..config import BatchConfig, ModelConfig
from ..data.batching import example_batch, make_batches, node_slices
from ..data.graph import build_graph
from ..errors import CheckpointError, ConfigError
from ..irreps_text import irreps_dim, normalized_irreps
from ..nn.backbone import Backbone
from ..nn.model import edge_vectors
from .nequix_source import NequixFeatureSource

__all__ = ["FeatureSource", "BackboneFeatureSource", "open_source", "select_layers", "all_layers_trained",
           "first_trained_layer", "batch_columns", "STAND_IN"]

STAND_IN = "stand-in:nequip"


class FeatureSource(Protocol):
    name: str
    sha256: str
    layer_irreps: tuple[str, ...]
    cutoff: float
    elements: frozenset | None

    def __call__(self, crystals: Sequence) -> list[np.ndarray]: ...


def select_layers(layer_irreps: Sequence[str], layers: Sequence[int]) -> tuple[np.ndarray, str]:
    """Columns of the concatenated features that belong to ``layers`` (empty: all; negative from the end)
    and the irreps of the selection. -> (column indices (F',), irreps)."""
    sizes = [irreps_dim(ir) for ir in layer_irreps]
    starts = np.concatenate([[0], np.cumsum(sizes)])
    n = len(sizes)
    chosen = list(range(n)) if not layers else list(layers)
    for k in chosen:
        if not -n <= k < n:
            raise ConfigError(f"model.foundation.layers: layer {k} out of range; the checkpoint has {n} layers")
    chosen = [k % n for k in chosen]
    columns = np.concatenate([np.arange(starts[k], starts[k + 1]) for k in chosen])
    return columns, normalized_irreps("+".join(layer_irreps[k] for k in chosen))


def all_layers_trained(fc) -> bool:
    """Whether the foundation config ``fc`` fine-tunes every layer of its checkpoint (``finetune_layers: all``;
    the layer count is not needed to say so, which is what an ensemble's check has at hand)."""
    return fc.mode == "finetune" and fc.finetune_layers == "all"


def first_trained_layer(fc, n_layers: int) -> int:
    """Index of the first interaction layer that trains under the foundation config ``fc`` (``n_layers``
    when none does: frozen mode; 0 when :func:`all_layers_trained`); ConfigError when ``fc.finetune_layers``
    exceeds ``n_layers``."""
    if fc.mode != "finetune":
        return n_layers
    if all_layers_trained(fc):
        return 0
    if fc.finetune_layers > n_layers:
        raise ConfigError(f"model.foundation.finetune_layers: {fc.finetune_layers} layers, "
                          f"the checkpoint has {n_layers}")
    return n_layers - fc.finetune_layers


def batch_columns(fc, layer_irreps: Sequence[str]) -> tuple[np.ndarray, str]:
    """Columns of a source's concatenated features that the batches of ``fc``'s model carry, and their irreps:
    frozen mode, the ``layers`` the heads read; finetune mode, the frozen layers below the first trained one
    (its input is the last of them; none when all layers train)."""
    n = len(layer_irreps)
    if fc.mode != "finetune":
        return select_layers(layer_irreps, fc.layers)
    first = first_trained_layer(fc, n)
    if first == 0:
        return np.zeros(0, np.int64), ""
    return select_layers(layer_irreps, range(first))


class BackboneFeatureSource:
    """tensorprop's own :class:`~tensorprop.nn.backbone.Backbone` with random weights (``seed``) as a
    feature source: one layer of features ``hidden_irreps``. A stand-in for tests, not a foundation model."""

    def __init__(self, seed: int = 0, cutoff: float = 4.0,
                 hidden_irreps: str = "8x0e + 4x1o + 4x2e + 2x3o", num_layers: int = 1):
        self.config = ModelConfig(cutoff=cutoff, hidden_irreps=hidden_irreps, num_layers=num_layers,
                                  radial_hidden=(16,), head_irreps="4x0e + 2x1e + 2x2e", avg_num_neighbors=10.0,
                                  targets=("epsilon",))
        self.name, self.cutoff, self.elements = STAND_IN, cutoff, None
        self.layer_irreps = (normalized_irreps(hidden_irreps),)
        self._transformed = _backbone_transform(self.config)
        key, batch = jax.random.PRNGKey(seed), example_batch(cutoff)
        self.params = compile_once(self._transformed.init, key, batch)(key, batch)
        digest = hashlib.sha256()
        for module in sorted(self.params):
            for key in sorted(self.params[module]):
                digest.update(f"{module}/{key}".encode())
                digest.update(np.asarray(self.params[module][key], np.float32).tobytes())
        self.sha256 = digest.hexdigest()

    def __call__(self, crystals: Sequence) -> list[np.ndarray]:
        graphs = [build_graph(c, self.cutoff) for c in crystals]
        budget = BatchConfig(max_nodes=max([64] + [g.n_nodes for g in graphs]),
                             max_edges=max([2048] + [g.n_edges for g in graphs]), max_graphs=32, pad_mode="pow2")
        out: list = [None] * len(graphs)
        for idx, batch in make_batches(graphs, budget):
            x = np.asarray(jax.device_get(_jitted_apply(self._transformed)(self.params, batch)))
            for i, rows in zip(idx, node_slices(graphs, idx)):
                out[i] = x[rows].astype(np.float32)
        return out


@functools.lru_cache(maxsize=4)
def _backbone_transform(config):
    def forward(batch):
        vectors = edge_vectors(batch.positions, batch.senders, batch.receivers, batch.shifts)
        return Backbone(config, name="backbone")(vectors, batch.numbers, batch.senders, batch.receivers,
                                                 batch.edge_mask).array

    return hk.without_apply_rng(hk.transform(forward))


@functools.lru_cache(maxsize=4)
def _jitted_apply(transformed):
    return jax.jit(transformed.apply)


def open_source(name: str, sha256: str = "") -> FeatureSource:
    """The feature source ``name`` (``stand-in:nequip``, or a foundation checkpoint's name or path), its
    weights checked against ``sha256`` when given (:class:`~tensorprop.errors.CheckpointError` if they differ)."""
    if name == STAND_IN:
        source = BackboneFeatureSource()
    else:
        source = NequixFeatureSource(name, sha256)
    if sha256 and source.sha256 != sha256:
        raise CheckpointError(f"{name}: foundation weights have SHA256 {source.sha256}, the model was trained on "
                              f"{sha256}; put the matching checkpoint in place")
    return source
