"""How much memory a prediction needs, measured on the model actually loaded.

XLA reports the buffers of a compiled function (``memory_analysis``). :func:`bytes_per_edge` compiles
one architecture's shared prediction function once at a reference shape (:data:`REFERENCE_PADDING`)
and divides its arguments, outputs and temporaries by the padded edge count; the network's cost grows
linearly with the edges (at the reference's ~32 edges per atom). :func:`prediction_bytes` scales
that to a structure, for one network or an ensemble (members at once, or one after another above
:data:`SEQUENTIAL_EDGES` edges). A member on foundation features counts its heads only: its features come
before, from the checkpoint's own network in batches of its own budget, which this estimate leaves out.
"""

from __future__ import annotations

import functools

import jax
import numpy as np

from .data.batching import collate, example_graph
from .tasks.base import compiled_apply, param_shapes, task_of

__all__ = ["bytes_per_edge", "prediction_bytes", "format_bytes", "REFERENCE_PADDING", "SEQUENTIAL_EDGES"]

#: batches with more padded edges than this evaluate an ensemble's members one after another (peak memory of one
#: member; :class:`tensorprop.ensemble.EnsembleModel`)
SEQUENTIAL_EDGES = 1 << 16

#: padded (nodes, edges, graphs) at which the per-edge memory is measured
REFERENCE_PADDING = (257, 8193, 2)


def format_bytes(n: float) -> str:
    """``n`` bytes in human units: ``'812 KiB'``, ``'3.4 GiB'``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.3g} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    raise AssertionError("unreachable")


def _reference_batch(cutoff: float):
    return collate([example_graph(cutoff)], *REFERENCE_PADDING)


@functools.lru_cache(maxsize=16)
def _measured(config, stats_shapes: tuple) -> float:
    params = jax.tree.map(lambda shape: jax.ShapeDtypeStruct(shape, np.float32), param_shapes(config),
                          is_leaf=lambda x: isinstance(x, tuple))
    stats = {k: jax.ShapeDtypeStruct(shape, dtype) for k, shape, dtype in stats_shapes}
    inputs = task_of(config).prediction_input(config, _reference_batch(config.cutoff))
    compiled = compiled_apply(config).lower(params, stats, inputs).compile()
    m = compiled.memory_analysis()
    total = m.temp_size_in_bytes + m.argument_size_in_bytes + m.output_size_in_bytes
    return total / REFERENCE_PADDING[1]


def bytes_per_edge(model) -> float:
    """Bytes per padded edge of one evaluation of ``model``'s network (a :class:`~tensorprop.api.TensorModel`,
    not an ensemble): measured once per architecture by compiling it at :data:`REFERENCE_PADDING`."""
    stats = tuple(sorted((k, np.shape(v), np.asarray(v).dtype.str) for k, v in model.stats.items()))
    return _measured(model.config, stats)


def prediction_bytes(model, n_edges: int) -> float:
    """Estimated peak memory (bytes) of predicting one structure with ``n_edges`` edges with ``model``
    (a TensorModel or an EnsembleModel: the members' sum when evaluated at once, the largest member's
    when one after another), its edges padded to the next power of two as prediction pads them."""
    padded = 1 << int(n_edges).bit_length()
    members = getattr(model, "members", None) or [model]
    per_member = [bytes_per_edge(m) * padded for m in members]
    return max(per_member) if padded > SEQUENTIAL_EDGES else sum(per_member)
