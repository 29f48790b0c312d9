"""Static-shape batches of structures computed in an external field (energy, forces, dipole, Z*).

A :class:`FieldBatch` is a :class:`~tensorprop.data.batching.GraphBatch` (which carries the Born
labels) plus per-structure field, energy and dipole and per-atom forces, each with a mask.
Labels come from ``Crystal.info``: ``field`` (3,) V/A (zero if absent), ``energy`` eV,
``forces`` (n, 3) eV/A, ``dipole`` (3,) e*A.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

from ..config import BatchConfig
from ..outputs import DIPOLE, ENERGY, FORCES
from .batching import GraphBatch, collate_in_budget, pack, training_stream
from .graph import Graph
from .records import Crystal

__all__ = ["FieldBatch", "collate_field", "make_field_batches", "field_stream"]


class FieldBatch(NamedTuple):
    """graph: GraphBatch; field (G, 3) V/A; energy (G,) eV, energy_mask (G,); forces (N, 3) eV/A,
    forces_mask (N,); dipole (G, 3) e*A, dipole_mask (G,)."""

    graph: GraphBatch
    field: np.ndarray
    energy: np.ndarray
    energy_mask: np.ndarray
    forces: np.ndarray
    forces_mask: np.ndarray
    dipole: np.ndarray
    dipole_mask: np.ndarray



def collate_field(crystals: Sequence[Crystal], graphs: Sequence[Graph], budget: BatchConfig,
                  dtype=np.float32) -> FieldBatch:
    """Pad structures (already packed within ``budget``) and their field labels."""
    graph = collate_in_budget(graphs, budget, dtype)
    g, n = graph.graph_mask.shape[0], graph.node_mask.shape[0]
    field, energy, dipole = np.zeros((g, 3), dtype), np.zeros(g, dtype), np.zeros((g, 3), dtype)
    energy_mask, dipole_mask = np.zeros(g, bool), np.zeros(g, bool)
    forces, forces_mask = np.zeros((n, 3), dtype), np.zeros(n, bool)
    offset = 0
    for k, c in enumerate(crystals):
        info = c.info
        if info.get("field") is not None:
            field[k] = np.asarray(info["field"], float).reshape(3)
        if info.get(ENERGY) is not None:
            energy[k], energy_mask[k] = float(info[ENERGY]), True
        if info.get(DIPOLE) is not None:
            dipole[k], dipole_mask[k] = np.asarray(info[DIPOLE], float).reshape(3), True
        if info.get(FORCES) is not None:
            forces[offset:offset + c.n_atoms] = np.asarray(info[FORCES], float).reshape(-1, 3)
            forces_mask[offset:offset + c.n_atoms] = True
        offset += c.n_atoms
    return FieldBatch(graph, field, energy, energy_mask, forces, forces_mask, dipole, dipole_mask)


def make_field_batches(crystals, graphs, budget: BatchConfig, dtype=np.float32) -> list:
    return [(idx, collate_field([crystals[i] for i in idx], [graphs[i] for i in idx], budget, dtype))
            for idx in pack(graphs, budget)]


def field_stream(crystals, graphs, budget: BatchConfig, seed: int, start_step: int = 0, dtype=np.float32):
    """(epoch, FieldBatch) from ``start_step`` on: :func:`~tensorprop.data.batching.training_stream` of field
    batches."""
    return training_stream(graphs, budget, seed, lambda idx, _: collate_field(
        [crystals[i] for i in idx], [graphs[i] for i in idx], budget, dtype), start_step)
