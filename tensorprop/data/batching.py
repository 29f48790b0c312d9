"""Static-shape graph batches for jit: packing structures under budgets, padding, masks.

Structures are packed greedily into batches whose real node, edge and structure counts
stay within a :class:`~tensorprop.config.BatchConfig` budget, then padded to fixed sizes
so that ``jax.jit`` compiles once per padded shape, not once per batch. Padding uses one
extra node slot, edge slot and graph slot at least: padded nodes belong to the last
(padding) graph, padded edges join the last padded node to itself with a non-zero dummy
vector (finite spherical harmonics), and every sum in the model is masked.

What the network reads and what the losses compare with are kept apart: a :class:`GraphBatch` (or a task's
inputs that wrap one) is the network's whole input, and a training or validation batch is a
:class:`Batch` of those inputs and a separate labels pytree (:class:`TensorLabels` for crystal tensors;
the field and charge families have their own). Prediction batches carry no labels at all.
"""

from __future__ import annotations

from typing import Any, Iterable, NamedTuple, Sequence

import numpy as np

from ..config import BatchConfig
from ..errors import BatchBudgetError
from .graph import Graph, build_graph
from .records import Crystal

__all__ = ["GraphBatch", "TensorLabels", "Batch", "pack", "padded_sizes", "budget_sizes", "collate", "tensor_labels",
           "collate_labelled", "collate_in_budget", "make_batches", "make_labelled_batches", "node_slices",
           "prediction_batches", "MIN_PREDICTION_PADDING", "padding_efficiency", "epoch_batches", "index_stream",
           "training_stream", "tensor_collate", "rotate_inputs", "rotate_batch", "graph_part", "random_rotations",
           "step_rotations", "example_graph", "example_batch"]

_DUMMY_EDGE = np.array([1.0, 0.0, 0.0])  # vector of padded edges, Angstrom (masked out)
#: smallest padded (nodes, edges, graphs) of a prediction batch, so that small jobs share one compiled shape
MIN_PREDICTION_PADDING = (32, 2048, 4)


class GraphBatch(NamedTuple):
    """The network input of a padded batch (a jax pytree, no labels). N, E, G: padded node, edge and graph counts.

    numbers (N,) int32 atomic numbers (0 for padding); positions (N, 3) Angstrom;
    node_graph (N,) int32; node_mask (N,) bool; senders, receivers (E,) int32;
    shifts (E, 3) Angstrom; edge_mask (E,) bool; cell (G, 3, 3); graph_mask (G,) bool;
    n_atoms (G,) int32.
    """

    numbers: np.ndarray
    positions: np.ndarray
    node_graph: np.ndarray
    node_mask: np.ndarray
    senders: np.ndarray
    receivers: np.ndarray
    shifts: np.ndarray
    edge_mask: np.ndarray
    cell: np.ndarray
    graph_mask: np.ndarray
    n_atoms: np.ndarray

    @property
    def n_graphs(self) -> int:
        """Number of graph slots G (including the padding graph)."""
        return self.graph_mask.shape[0]


class TensorLabels(NamedTuple):
    """The crystal-tensor labels of a padded batch (a jax pytree): born_charges (N, 3, 3) e (zeros where
    unlabelled); epsilon (G, 3, 3) (identity where unlabelled); born_mask, epsilon_mask (G,) bool: which
    structures carry each label."""

    born_charges: np.ndarray
    epsilon: np.ndarray
    born_mask: np.ndarray
    epsilon_mask: np.ndarray


class Batch(NamedTuple):
    """A training or validation batch (a jax pytree): ``inputs``, all the network reads (a :class:`GraphBatch`, or
    a task's inputs that wrap one as ``.graph``), and ``labels``, what the loss and the metrics compare the
    network's outputs with (a task's labels pytree, e.g. :class:`TensorLabels`)."""

    inputs: Any
    labels: Any

    @property
    def graph(self) -> GraphBatch:
        """The :class:`GraphBatch` of the inputs (masks, node-to-graph index, atom counts)."""
        return graph_part(self.inputs)


def pack(graphs: Sequence[Graph], budget: BatchConfig, order: Iterable[int] | None = None) -> list[np.ndarray]:
    """Greedily group graph indices (in ``order``) into batches within the budget.

    Raises :class:`BatchBudgetError` naming the structure when one alone exceeds it.
    """
    batches, current, nodes, edges = [], [], 0, 0
    for i in range(len(graphs)) if order is None else order:
        g = graphs[i]
        if g.n_nodes > budget.max_nodes or g.n_edges > budget.max_edges:
            raise BatchBudgetError(
                f"structure {i} ({g.label or 'unlabelled'}) has {g.n_nodes} atoms and {g.n_edges} edges, "
                f"more than the batch budget of {budget.max_nodes} nodes / {budget.max_edges} edges; "
                f"raise batch.max_nodes / batch.max_edges"
            )
        if current and (nodes + g.n_nodes > budget.max_nodes or edges + g.n_edges > budget.max_edges
                        or len(current) == budget.max_graphs):
            batches.append(np.asarray(current))
            current, nodes, edges = [], 0, 0
        current.append(i)
        nodes += g.n_nodes
        edges += g.n_edges
    if current:
        batches.append(np.asarray(current))
    return batches


def _next_pow2(n: int) -> int:
    return 1 << max(int(n) - 1, 0).bit_length()


def padded_sizes(n_nodes: int, n_edges: int, n_graphs: int, budget: BatchConfig) -> tuple[int, int, int]:
    """Padded (N, E, G) for a batch with the given real counts, each with >= 1 padding slot."""
    if budget.pad_mode == "budget":
        return budget.max_nodes + 1, budget.max_edges + 1, budget.max_graphs + 1
    return (min(_next_pow2(n_nodes + 1), budget.max_nodes + 1),
            min(_next_pow2(n_edges + 1), budget.max_edges + 1),
            min(_next_pow2(n_graphs + 1), budget.max_graphs + 1))


def node_slices(graphs: Sequence[Graph], idx: Sequence[int]) -> list[slice]:
    """The node rows of each graph ``graphs[i]``, ``i`` in ``idx``, within the batch collated from them
    (:func:`collate` puts the graphs' nodes one after the other, in ``idx`` order, from row 0)."""
    ends = np.cumsum([graphs[i].n_nodes for i in idx])
    return [slice(int(end - graphs[i].n_nodes), int(end)) for i, end in zip(idx, ends)]


def collate(graphs: Sequence[Graph], n_node: int, n_edge: int, n_graph: int, dtype=np.float32) -> GraphBatch:
    """Concatenate graphs and pad to exactly (n_node, n_edge, n_graph) slots: the network input (no labels)."""
    n_real = np.array([g.n_nodes for g in graphs], dtype=np.int64)
    e_real = np.array([g.n_edges for g in graphs], dtype=np.int64)
    if n_real.sum() >= n_node or e_real.sum() >= n_edge or len(graphs) >= n_graph:
        raise BatchBudgetError(f"{len(graphs)} structures with {n_real.sum()} atoms and {e_real.sum()} edges "
                               f"do not fit padded sizes ({n_node}, {n_edge}, {n_graph}) with a padding slot")
    offsets = np.concatenate([[0], np.cumsum(n_real)[:-1]]).astype(np.int64)
    nn, ne, ng = int(n_real.sum()), int(e_real.sum()), len(graphs)
    pad_node = n_node - 1

    numbers = np.zeros(n_node, np.int32)
    positions = np.zeros((n_node, 3), dtype)
    node_graph = np.full(n_node, n_graph - 1, np.int32)
    senders = np.full(n_edge, pad_node, np.int32)
    receivers = np.full(n_edge, pad_node, np.int32)
    shifts = np.tile(_DUMMY_EDGE.astype(dtype), (n_edge, 1))
    cell = np.tile(np.eye(3, dtype=dtype), (n_graph, 1, 1))
    n_atoms = np.zeros(n_graph, np.int32)

    if ng:
        numbers[:nn] = np.concatenate([g.numbers for g in graphs])
        positions[:nn] = np.concatenate([g.positions for g in graphs])
        node_graph[:nn] = np.repeat(np.arange(ng), n_real)
        senders[:ne] = np.concatenate([g.senders + o for g, o in zip(graphs, offsets)])
        receivers[:ne] = np.concatenate([g.receivers + o for g, o in zip(graphs, offsets)])
        shifts[:ne] = np.concatenate([g.shifts for g in graphs])
        cell[:ng] = np.stack([g.cell for g in graphs])
        n_atoms[:ng] = n_real

    return GraphBatch(
        numbers=numbers, positions=positions, node_graph=node_graph, node_mask=np.arange(n_node) < nn,
        senders=senders, receivers=receivers, shifts=shifts, edge_mask=np.arange(n_edge) < ne,
        cell=cell, graph_mask=np.arange(n_graph) < ng, n_atoms=n_atoms,
    )


def tensor_labels(graphs: Sequence[Graph], n_node: int, n_graph: int, dtype=np.float32) -> TensorLabels:
    """The Z*/eps_inf labels of graphs collated in this order (:func:`collate`), padded to n_node / n_graph slots."""
    born = np.zeros((n_node, 3, 3), dtype)
    eps = np.tile(np.eye(3, dtype=dtype), (n_graph, 1, 1))
    born_mask = np.zeros(n_graph, bool)
    eps_mask = np.zeros(n_graph, bool)
    offset = 0
    for k, g in enumerate(graphs):
        if g.born_charges is not None:
            born[offset:offset + g.n_nodes] = g.born_charges
            born_mask[k] = True
        if g.epsilon is not None:
            eps[k] = g.epsilon
            eps_mask[k] = True
        offset += g.n_nodes
    return TensorLabels(born_charges=born, epsilon=eps, born_mask=born_mask, epsilon_mask=eps_mask)


def collate_labelled(graphs: Sequence[Graph], n_node: int, n_edge: int, n_graph: int, dtype=np.float32) -> Batch:
    """:func:`collate` with the graphs' Z*/eps_inf labels beside it: Batch(GraphBatch, TensorLabels)."""
    return Batch(collate(graphs, n_node, n_edge, n_graph, dtype), tensor_labels(graphs, n_node, n_graph, dtype))


def budget_sizes(graphs: Sequence[Graph], budget: BatchConfig) -> tuple[int, int, int]:
    """Padded (N, E, G) of graphs already packed within ``budget``, as ``budget.pad_mode`` says."""
    return padded_sizes(sum(g.n_nodes for g in graphs), sum(g.n_edges for g in graphs), len(graphs), budget)


def collate_in_budget(graphs: Sequence[Graph], budget: BatchConfig, dtype=np.float32) -> GraphBatch:
    """Collate graphs already packed within ``budget``, padded as ``budget.pad_mode`` says (no labels)."""
    return collate(graphs, *budget_sizes(graphs, budget), dtype=dtype)


def make_batches(graphs: Sequence[Graph], budget: BatchConfig, order: Iterable[int] | None = None,
                 dtype=np.float32) -> list[tuple[np.ndarray, GraphBatch]]:
    """Pack and collate: a list of (graph indices, padded GraphBatch), the network's inputs."""
    return [(idx, collate_in_budget([graphs[i] for i in idx], budget, dtype)) for idx in pack(graphs, budget, order)]


def example_graph(cutoff: float) -> Graph:
    """Two-atom rock-salt NaCl (a = 5.64 A, unlabelled) as a neighbour graph within ``cutoff`` A: the example
    input that fixes a network's parameter shapes, or measures its memory per edge."""
    a = 5.64
    crystal = Crystal(numbers=[11, 17], positions=[[0, 0, 0], [a / 2, 0, 0]],
                      cell=[[0, a / 2, a / 2], [a / 2, 0, a / 2], [a / 2, a / 2, 0]], pbc=True)
    return build_graph(crystal, cutoff)


def example_batch(cutoff: float) -> GraphBatch:
    """:func:`example_graph` within ``max(cutoff, 4)`` A as a GraphBatch of its own, used to initialise parameters
    (shapes only matter)."""
    graph = example_graph(max(cutoff, 4.0))
    return make_batches([graph], BatchConfig(max_nodes=2, max_edges=graph.n_edges, max_graphs=1))[0][1]


def make_labelled_batches(graphs: Sequence[Graph], budget: BatchConfig, order: Iterable[int] | None = None,
                          dtype=np.float32) -> list[tuple[np.ndarray, Batch]]:
    """Pack and collate with labels: a list of (graph indices, Batch(GraphBatch, TensorLabels))."""
    out = []
    for idx in pack(graphs, budget, order):
        part = [graphs[i] for i in idx]
        out.append((idx, collate_labelled(part, *budget_sizes(part, budget), dtype=dtype)))
    return out


def prediction_batches(graphs: Sequence[Graph], budget: BatchConfig,
                       dtype=np.float32) -> list[tuple[np.ndarray, GraphBatch]]:
    """Pack and collate for prediction with few padded shapes (each one a compilation).

    Structures within the budget: a job that fits one batch is padded to powers of two, but no
    smaller than :data:`MIN_PREDICTION_PADDING` (one or two small structures: one shape); a job of
    several batches (or ``budget.pad_mode == "budget"``) pads every batch to the budget (one shape
    for a data set). A structure beyond the budget is a batch of its own, padded to powers of two.
    """
    alone = [i for i, g in enumerate(graphs) if g.n_nodes > budget.max_nodes or g.n_edges > budget.max_edges]
    groups = pack(graphs, budget, order=sorted(set(range(len(graphs))) - set(alone)))
    full = (budget.max_nodes + 1, budget.max_edges + 1, budget.max_graphs + 1)
    out = []
    for idx in groups + [np.array([i]) for i in alone]:
        if (len(groups) > 1 or budget.pad_mode == "budget") and idx[0] not in alone:
            sizes = full
        else:
            real = (sum(graphs[i].n_nodes for i in idx), sum(graphs[i].n_edges for i in idx), len(idx))
            sizes = tuple(max(_next_pow2(n + 1), floor) for n, floor in zip(real, MIN_PREDICTION_PADDING))
        out.append((idx, collate([graphs[i] for i in idx], *sizes, dtype=dtype)))
    return out


def graph_part(batch) -> GraphBatch:
    """The GraphBatch of network inputs that wrap one (a task's inputs: ``.graph``), of a :class:`Batch` (its
    inputs'), or the GraphBatch itself."""
    return batch.graph if hasattr(batch, "graph") else batch


def padding_efficiency(batches: Iterable) -> dict[str, float]:
    """Fraction of real over padded slots, for nodes, edges and graphs, over many batches (inputs or Batch es)."""
    totals = np.zeros((3, 2))
    for b in map(graph_part, batches):
        totals += [[b.node_mask.sum(), b.node_mask.size], [b.edge_mask.sum(), b.edge_mask.size],
                   [b.graph_mask.sum(), b.graph_mask.size]]
    return {k: float(r / max(p, 1)) for k, (r, p) in zip(("nodes", "edges", "graphs"), totals)}


def epoch_batches(graphs: Sequence[Graph], budget: BatchConfig, seed: int, epoch: int) -> list[np.ndarray]:
    """The batches (graph indices) of one epoch: a permutation seeded by (seed, epoch), then packed."""
    order = np.random.default_rng([seed, epoch]).permutation(len(graphs))
    return pack(graphs, budget, order)


def index_stream(graphs: Sequence[Graph], budget: BatchConfig, seed: int, start_step: int = 0):
    """Yield (epoch, global step, graph indices) of every batch from ``start_step`` on.

    Depends only on its arguments, so a resumed run sees exactly the batches of an uninterrupted one.
    """
    epoch, step = 0, 0
    while True:
        batches = epoch_batches(graphs, budget, seed, epoch)
        if step + len(batches) <= start_step:
            step += len(batches)
        else:
            for idx in batches:
                if step >= start_step:
                    yield epoch, step, idx
                step += 1
        epoch += 1


def training_stream(graphs: Sequence[Graph], budget: BatchConfig, seed: int, collate, start_step: int = 0):
    """Yield (epoch, ``collate(graph indices, global step)``) of every training batch from ``start_step`` on: the one
    batch stream of every task, in the seeded order of :func:`index_stream`. ``collate`` is the family's batching
    (indices -> padded batch; the step seeds any augmentation), so a resumed run sees the same batches."""
    for epoch, step, idx in index_stream(graphs, budget, seed, start_step):
        yield epoch, collate(idx, step)


def tensor_collate(graphs: Sequence[Graph], budget: BatchConfig, seed: int, dtype=np.float32,
                   augment_rotations: bool = False, position_noise: float = 0.0):
    """The collate of crystal-tensor training batches for :func:`training_stream`: ``(graph indices, step) ->
    Batch(GraphBatch, TensorLabels)``, a function of its arguments only (a resumed run sees the same batches).

    With ``augment_rotations`` every structure of step s is rotated (with its labels) by a random rotation
    seeded by (seed, s); with ``position_noise`` > 0 (Angstrom) every real atom is displaced by Gaussian noise
    seeded by (seed, s), labels and neighbour lists kept (edges stay within the cutoff envelope's smooth tail).
    """
    def collate_step(idx, step):
        part = [graphs[i] for i in idx]
        batch = collate_labelled(part, *budget_sizes(part, budget), dtype=dtype)
        if augment_rotations:
            batch = rotate_batch(batch, step_rotations(seed, step, batch.inputs.n_graphs))
        if position_noise > 0:
            graph = batch.inputs
            noise = np.random.default_rng([seed, 11, step]).normal(scale=position_noise, size=graph.positions.shape)
            batch = batch._replace(inputs=graph._replace(
                positions=graph.positions + (noise * graph.node_mask[:, None]).astype(dtype)))
        return batch

    return collate_step


def rotate_inputs(batch: GraphBatch, rotations: np.ndarray) -> GraphBatch:
    """Rotate every structure of a padded GraphBatch: ``rotations`` (G, 3, 3), one per graph slot (x -> R x);
    positions, image shifts and cell rows rotate. Padding stays padding (padded edge vectors keep unit length)."""
    r = np.asarray(rotations, dtype=batch.positions.dtype)
    rn = r[batch.node_graph]  # [N, 3, 3]
    re = rn[batch.receivers]  # [E, 3, 3]
    return batch._replace(
        positions=np.einsum("nij,nj->ni", rn, batch.positions),
        shifts=np.einsum("eij,ej->ei", re, batch.shifts),
        cell=np.einsum("gij,gkj->gki", r, batch.cell),
    )


def rotate_batch(batch: Batch, rotations: np.ndarray) -> Batch:
    """Rotate every structure of a padded Batch(GraphBatch, TensorLabels) with its labels: random-rotation
    augmentation. ``rotations`` (G, 3, 3) as in :func:`rotate_inputs`; Z* -> R Z* R^T, eps -> R eps R^T."""
    graph, labels = batch
    r = np.asarray(rotations, dtype=graph.positions.dtype)
    rn = r[graph.node_graph]  # [N, 3, 3]
    rot_t = lambda t, q: q @ t @ np.swapaxes(q, -1, -2)  # noqa: E731
    return Batch(rotate_inputs(graph, rotations),
                 labels._replace(born_charges=rot_t(labels.born_charges, rn), epsilon=rot_t(labels.epsilon, r)))


def random_rotations(rng: np.random.Generator, n: int) -> np.ndarray:
    """n uniformly random proper rotations (n, 3, 3) from normalised Gaussian quaternions."""
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    w, x, y, z = q.T
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
    ], 1)


def step_rotations(seed: int, step: int, n: int) -> np.ndarray:
    """The n augmentation rotations of training step ``step``: a function of (seed, step) only, so a
    resumed run rotates exactly as the uninterrupted one (crystal and molecule streams alike)."""
    return random_rotations(np.random.default_rng([seed, 7, step]), n)
