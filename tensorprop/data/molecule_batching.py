"""Static-shape batches of molecules with electrostatic labels (for the charge heads).

A :class:`ChargeBatch` is a :class:`~tensorprop.data.batching.GraphBatch` of the molecules'
neighbour graphs plus per-molecule labels padded to a fixed number of ESP points, so one
jit compilation serves the whole data set.
"""

from __future__ import annotations

from typing import Iterator, NamedTuple, Sequence

import numpy as np

from ..config import BatchConfig
from .batching import GraphBatch, collate_in_budget, pack, rotate_batch, step_rotations, training_stream
from .graph import Graph, build_graph
from .molecules import Molecule

__all__ = ["ChargeBatch", "molecule_graphs", "collate_molecules", "make_molecule_batches", "molecule_stream"]


class ChargeBatch(NamedTuple):
    """graph: GraphBatch (G graph slots); total_charge (G,) e; dipole (G, 3) e*Angstrom;
    dipole_mask (G,) bool; esp_points (G, P, 3) Angstrom; esp (G, P) Hartree/e;
    esp_mask (G, P) bool (real points of real molecules)."""

    graph: GraphBatch
    total_charge: np.ndarray
    dipole: np.ndarray
    dipole_mask: np.ndarray
    esp_points: np.ndarray
    esp: np.ndarray
    esp_mask: np.ndarray



def molecule_graphs(molecules: Sequence[Molecule], cutoff: float) -> list[Graph]:
    """Neighbour graphs (no periodicity) of molecules; an atom without neighbours is an error naming it."""
    return [build_graph(m.as_crystal(), cutoff, index=i) for i, m in enumerate(molecules)]


def collate_molecules(molecules: Sequence[Molecule], graphs: Sequence[Graph], budget: BatchConfig,
                      max_points: int, dtype=np.float32, rotations: np.ndarray | None = None) -> ChargeBatch:
    """Pad molecules (already packed within ``budget``) and their labels into a :class:`ChargeBatch`.

    ``rotations`` (len(molecules), 3, 3), optional: rotate each molecule with its labels
    (positions, ESP points, dipole) before padding: random-rotation augmentation.
    """
    graph = collate_in_budget(graphs, budget, dtype)
    g = graph.graph_mask.shape[0]
    p = max(int(max_points), 1)
    total_charge = np.zeros(g, dtype)
    dipole = np.zeros((g, 3), dtype)
    dipole_mask = np.zeros(g, bool)
    points = np.zeros((g, p, 3), dtype)
    points[:, :, 0] = 100.0  # padded points sit far away (finite distances; masked out of the loss)
    esp = np.zeros((g, p), dtype)
    esp_mask = np.zeros((g, p), bool)
    for k, m in enumerate(molecules):
        total_charge[k] = m.charge
        if m.dipole is not None:
            dipole[k] = m.dipole
            dipole_mask[k] = True
        if m.esp is not None:
            points[k, :m.n_points] = m.esp_points
            esp[k, :m.n_points] = m.esp
            esp_mask[k, :m.n_points] = True
    if rotations is not None:
        r = np.tile(np.eye(3, dtype=dtype), (g, 1, 1))
        r[:len(molecules)] = rotations
        graph = rotate_batch(graph, r)
        dipole = np.einsum("gij,gj->gi", r, dipole)
        points = np.einsum("gij,gpj->gpi", r, points)
    return ChargeBatch(graph=graph, total_charge=total_charge, dipole=dipole, dipole_mask=dipole_mask,
                       esp_points=points, esp=esp, esp_mask=esp_mask)


def make_molecule_batches(molecules: Sequence[Molecule], graphs: Sequence[Graph], budget: BatchConfig,
                          max_points: int, dtype=np.float32) -> list[tuple[np.ndarray, ChargeBatch]]:
    """Pack and collate in the given order: a list of (molecule indices, padded batch)."""
    return [(idx, collate_molecules([molecules[i] for i in idx], [graphs[i] for i in idx], budget, max_points,
                                    dtype)) for idx in pack(graphs, budget)]


def molecule_stream(molecules: Sequence[Molecule], graphs: Sequence[Graph], budget: BatchConfig, max_points: int,
                    seed: int, start_step: int = 0, dtype=np.float32,
                    augment_rotations: bool = False) -> Iterator[tuple[int, ChargeBatch]]:
    """Yield (epoch, batch) from global step ``start_step`` on; depends only on the arguments, so a
    resumed run sees the same batches (and the same augmentation rotations) as an uninterrupted one."""
    def collate(idx, step):
        rot = step_rotations(seed, step, len(idx)) if augment_rotations else None
        return collate_molecules([molecules[i] for i in idx], [graphs[i] for i in idx], budget, max_points, dtype, rot)

    return training_stream(graphs, budget, seed, collate, start_step)
