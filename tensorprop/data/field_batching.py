"""Static-shape batches of structures computed in an external field (energy, forces, dipole, Z*).

A field batch is a :class:`~tensorprop.data.batching.Batch` of :class:`FieldInputs` (the structures'
:class:`~tensorprop.data.batching.GraphBatch` and the field each one is in: all the network reads) and
:class:`FieldLabels` (per-structure energy and dipole, per-atom forces and Born charges, each with a mask).
The field and the labels come from ``Crystal.info``: ``field`` (3,) V/A (zero if absent), ``energy`` eV,
``forces`` (n, 3) eV/A, ``dipole`` (3,) e*A; the Born charges from ``Crystal.born_charges``.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

from ..config import BatchConfig
from ..outputs import DIPOLE, ENERGY, FORCES
from .batching import Batch, GraphBatch, budget_sizes, collate, pack, tensor_labels
from .graph import Graph
from .records import Crystal

__all__ = ["FieldInputs", "FieldLabels", "collate_field", "make_field_batches", "field_collate"]


class FieldInputs(NamedTuple):
    """graph: GraphBatch; field (G, 3) V/A, the uniform field each structure is in."""

    graph: GraphBatch
    field: np.ndarray


class FieldLabels(NamedTuple):
    """energy (G,) eV, energy_mask (G,); forces (N, 3) eV/A, forces_mask (N,); dipole (G, 3) e*A,
    dipole_mask (G,); born_charges (N, 3, 3) e (zeros where unlabelled), born_mask (G,)."""

    energy: np.ndarray
    energy_mask: np.ndarray
    forces: np.ndarray
    forces_mask: np.ndarray
    dipole: np.ndarray
    dipole_mask: np.ndarray
    born_charges: np.ndarray
    born_mask: np.ndarray


def collate_field(crystals: Sequence[Crystal], graphs: Sequence[Graph], budget: BatchConfig,
                  dtype=np.float32) -> Batch:
    """Pad structures (already packed within ``budget``), their fields and labels: Batch(FieldInputs, FieldLabels)."""
    n, _, g = sizes = budget_sizes(graphs, budget)
    graph = collate(graphs, *sizes, dtype=dtype)
    born = tensor_labels(graphs, n, g, dtype)
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
    return Batch(FieldInputs(graph, field),
                 FieldLabels(energy, energy_mask, forces, forces_mask, dipole, dipole_mask, born.born_charges,
                             born.born_mask))


def make_field_batches(crystals, graphs, budget: BatchConfig, dtype=np.float32) -> list:
    """Pack and collate: a list of (structure indices, Batch(FieldInputs, FieldLabels))."""
    return [(idx, collate_field([crystals[i] for i in idx], [graphs[i] for i in idx], budget, dtype))
            for idx in pack(graphs, budget)]


def field_collate(crystals, graphs, budget: BatchConfig, dtype=np.float32):
    """The collate of field training batches for :func:`~tensorprop.data.batching.training_stream`:
    ``(structure indices, step) -> Batch(FieldInputs, FieldLabels)`` (no augmentation: the step is not used)."""
    return lambda idx, _: collate_field([crystals[i] for i in idx], [graphs[i] for i in idx], budget, dtype)
