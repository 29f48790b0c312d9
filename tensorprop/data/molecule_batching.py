"""Static-shape batches of molecules with electrostatic labels (for the charge heads).

A charge batch is a :class:`~tensorprop.data.batching.Batch` of :class:`ChargeInputs` (the molecules'
neighbour graphs and total charges: all the network reads) and :class:`ChargeLabels` (dipoles and ESP
values at points padded to a fixed number per molecule, so one jit compilation serves the whole data set).
Prediction batches are the inputs alone (:func:`molecule_inputs`).
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

from ..config import BatchConfig
from .batching import Batch, GraphBatch, collate_in_budget, pack, rotate_inputs, step_rotations
from .graph import Graph, build_graph
from .molecules import Molecule

__all__ = ["ChargeInputs", "ChargeLabels", "molecule_graphs", "molecule_inputs", "collate_molecules",
           "make_molecule_batches", "make_molecule_inputs", "molecule_collate"]


class ChargeInputs(NamedTuple):
    """graph: GraphBatch (G graph slots); total_charge (G,) e, each molecule's (exact by construction)."""

    graph: GraphBatch
    total_charge: np.ndarray


class ChargeLabels(NamedTuple):
    """dipole (G, 3) e*Angstrom; dipole_mask (G,) bool; esp_points (G, P, 3) Angstrom, where the ESP labels are;
    esp (G, P) Hartree/e; esp_mask (G, P) bool (real points of real molecules)."""

    dipole: np.ndarray
    dipole_mask: np.ndarray
    esp_points: np.ndarray
    esp: np.ndarray
    esp_mask: np.ndarray


def molecule_graphs(molecules: Sequence[Molecule], cutoff: float) -> list[Graph]:
    """Neighbour graphs (no periodicity) of molecules; an atom without neighbours is an error naming it."""
    return [build_graph(m.as_crystal(), cutoff, index=i) for i, m in enumerate(molecules)]


def molecule_inputs(molecules: Sequence[Molecule], graphs: Sequence[Graph], budget: BatchConfig,
                    dtype=np.float32) -> ChargeInputs:
    """The network input of molecules already packed within ``budget``: padded graphs and total charges."""
    graph = collate_in_budget(graphs, budget, dtype)
    total_charge = np.zeros(graph.graph_mask.shape[0], dtype)
    total_charge[:len(molecules)] = [m.charge for m in molecules]
    return ChargeInputs(graph, total_charge)


def collate_molecules(molecules: Sequence[Molecule], graphs: Sequence[Graph], budget: BatchConfig,
                      max_points: int, dtype=np.float32, rotations: np.ndarray | None = None) -> Batch:
    """Pad molecules (already packed within ``budget``) and their labels: Batch(ChargeInputs, ChargeLabels).

    ``rotations`` (len(molecules), 3, 3), optional: rotate each molecule with its labels
    (positions, ESP points, dipole) before padding: random-rotation augmentation.
    """
    inputs = molecule_inputs(molecules, graphs, budget, dtype)
    g = inputs.graph.graph_mask.shape[0]
    p = max(int(max_points), 1)
    dipole = np.zeros((g, 3), dtype)
    dipole_mask = np.zeros(g, bool)
    points = np.zeros((g, p, 3), dtype)
    points[:, :, 0] = 100.0  # padded points sit far away (finite distances; masked out of the loss)
    esp = np.zeros((g, p), dtype)
    esp_mask = np.zeros((g, p), bool)
    for k, m in enumerate(molecules):
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
        inputs = inputs._replace(graph=rotate_inputs(inputs.graph, r))
        dipole = np.einsum("gij,gj->gi", r, dipole)
        points = np.einsum("gij,gpj->gpi", r, points)
    return Batch(inputs, ChargeLabels(dipole=dipole, dipole_mask=dipole_mask, esp_points=points, esp=esp,
                                      esp_mask=esp_mask))


def make_molecule_batches(molecules: Sequence[Molecule], graphs: Sequence[Graph], budget: BatchConfig,
                          max_points: int, dtype=np.float32) -> list[tuple[np.ndarray, Batch]]:
    """Pack and collate in the given order: a list of (molecule indices, Batch(ChargeInputs, ChargeLabels))."""
    return [(idx, collate_molecules([molecules[i] for i in idx], [graphs[i] for i in idx], budget, max_points,
                                    dtype)) for idx in pack(graphs, budget)]


def make_molecule_inputs(molecules: Sequence[Molecule], graphs: Sequence[Graph], budget: BatchConfig,
                         dtype=np.float32) -> list[tuple[np.ndarray, ChargeInputs]]:
    """Pack and collate for prediction: a list of (molecule indices, ChargeInputs), no labels."""
    return [(idx, molecule_inputs([molecules[i] for i in idx], [graphs[i] for i in idx], budget, dtype))
            for idx in pack(graphs, budget)]


def molecule_collate(molecules: Sequence[Molecule], graphs: Sequence[Graph], budget: BatchConfig, max_points: int,
                     seed: int, dtype=np.float32, augment_rotations: bool = False):
    """The collate of charge training batches for :func:`~tensorprop.data.batching.training_stream`:
    ``(molecule indices, step) -> Batch(ChargeInputs, ChargeLabels)``; with ``augment_rotations`` each molecule of
    step s is rotated with its labels by a rotation seeded by (seed, s), so a resumed run rotates the same."""
    def collate_step(idx, step):
        rot = step_rotations(seed, step, len(idx)) if augment_rotations else None
        return collate_molecules([molecules[i] for i in idx], [graphs[i] for i in idx], budget, max_points, dtype, rot)

    return collate_step
