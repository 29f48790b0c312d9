"""Crystal tensors: Z* (per atom) and eps_inf (per structure) of periodic crystals, from tensorprop's own
backbone with equivariant, Cartesian or field-energy heads (``model.task: tensors``)."""

from __future__ import annotations

import dataclasses
import sys

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

from ..compiled import shared_jit
from ..config import MOLECULAR_TARGETS, TARGETS, BatchConfig, FitConfig
from ..data.batching import example_batch, graph_part, make_labelled_batches, prediction_batches, tensor_collate, training_stream
from ..data.convert import as_crystal
from ..data.graph import build_graph
from ..data.validate import MIN_DISTANCE, check_crystal, check_graph_distances
from ..errors import BatchBudgetError, ConfigError, DataError
from ..memory import format_bytes, prediction_bytes
from ..nn.backbone import NUM_ELEMENTS
from ..nn.field import field_energy_fn
from ..nn.model import transformed_network
from ..outputs import BORN_CHARGES, BORN_CHARGES_SPREAD, EPSILON, EPSILON_SPREAD
from ..physics.assemble import assemble_tensors
from ..physics.field_response import field_response, neutral_species_charges
from ..train.data import build_graphs, load_training_data
from ..train.losses import loss_fn
from ..train.model_evaluation import evaluate_tensors
from .base import Task, TrainingData, refuse_extra_train, register

__all__ = ["TensorsTask", "TENSORS", "field_model_response", "compiled_field_response", "MAX_PREDICT_EDGES"]

#: largest structure (edges within the cutoff) that ``predict`` accepts by default: about 15 GiB with the bundled model
MAX_PREDICT_EDGES = 500_000
#: structures with more edges get a line on stderr (atoms, edges, memory) when ``predict_many`` shows progress
LARGE_STRUCTURE_EDGES = 1 << 16
#: the padding budget of prediction when none is given
PREDICTION_BUDGET = BatchConfig(max_nodes=256, max_edges=8192, max_graphs=64, pad_mode="pow2")


def _check_field_head(config) -> None:
    """ConfigError unless ``config`` describes a field-energy network (``model.head: field``)."""
    if config.head != "field":
        raise ConfigError("response() needs a field model (model.head: field)")


def field_model_response(config, params, stats, batch, field=None, want=(BORN_CHARGES, EPSILON)) -> dict:
    """Energy (G,) eV, forces (N, 3) eV/A, dipole (G, 3) e*A and, as ``want`` asks, born_charges (N, 3, 3) e,
    polarisability (G, 3, 3) and epsilon (G, 3, 3) of a field-energy network (``model.head: field``) at
    ``field`` (G, 3) V/A (default zero)."""
    _check_field_head(config)
    network = hk.without_apply_rng(hk.transform(field_energy_fn(config)))
    charges = neutral_species_charges(stats, batch)
    shift = jnp.asarray(stats.get("energy_shift", np.zeros(NUM_ELEMENTS)), batch.positions.dtype)[batch.numbers]
    reference = jax.ops.segment_sum(shift * batch.node_mask, batch.node_graph, num_segments=batch.n_graphs)

    def energy(positions, f):
        return network.apply(params, batch._replace(positions=positions), f, charges) + reference

    return field_response(energy, batch, field, want=want)


def compiled_field_response(config, want=(BORN_CHARGES, EPSILON)):
    """:func:`field_model_response` of the field network ``config`` for the outputs ``want``, jitted once per
    (config, want) in the process and shared by every model of that architecture
    (:func:`tensorprop.compiled.shared_jit`): ``fn(params, stats, batch, field (G, 3))`` -> the same dict.
    Called eagerly, the second derivatives would dispatch (and compile) hundreds of small operations."""
    _check_field_head(config)
    want = tuple(want)
    return shared_jit(("field_response", config, want),
                      lambda: lambda params, stats, batch, field: field_model_response(config, params, stats, batch,
                                                                                       field, want))


#: what a fit of each ``model.head`` changes in the model and train sections of a config it did not write: one
#: energy gives every tensor of a field head (one backbone), and its eps_inf comes from the polarisability
HEAD_FIT_DEFAULTS = {"field": ({"backbone_per_target": False}, {"epsilon_loss": "huber"})}


@dataclasses.dataclass(frozen=True)
class TensorsTask(Task):
    """Z*/eps_inf heads on the crystal graph. ``model.head: field`` makes them derivatives of one field-coupled
    energy (Z* = -d2E/dF dR, eps from the polarisability) instead of direct readouts."""

    def check_targets(self, config) -> None:
        """ConfigError unless ``model.targets`` is a non-empty subset of Z* and eps_inf."""
        if set(config.targets) - set(TARGETS) or not config.targets:
            raise ConfigError(f"model.targets must be a non-empty subset of {TARGETS} or {list(MOLECULAR_TARGETS)}, "
                              f"got {config.targets}")

    def readout_irreps(self, config) -> set:
        """Z* heads read 0e, 1e and 2e; eps_inf alone 0e and 2e."""
        return {"0e", "1e", "2e"} if BORN_CHARGES in config.targets else {"0e", "2e"}

    def network(self, config):
        if config.head == "field":
            return hk.without_apply_rng(hk.transform(field_energy_fn(config)))
        return transformed_network(config)

    def apply(self, config, params, stats, batch) -> dict:
        if config.head == "field":
            return field_model_response(config, params, stats, batch, want=config.targets)
        return assemble_tensors(self.network(config).apply(params, batch), batch, stats)

    def init_args(self, config) -> tuple:
        batch = example_batch(config.cutoff)
        if config.head != "field":
            return (batch,)
        return batch, np.zeros((batch.graph_mask.shape[0], 3), np.float32), np.zeros(batch.numbers.shape, np.float32)

    def prediction_batches(self, model, structures, *, batch=None, progress=False, max_edges=MAX_PREDICT_EDGES,
                           check_elements=None):
        """Structures (ase.Atoms, pymatgen, Crystal) -> (crystals, graphs, [(indices, padded GraphBatch)]).

        Refuses, with one line naming the structure: invalid structures, overlapping atoms, a crystal not
        periodic in all three directions, a structure of more than ``max_edges`` edges (before any memory
        is spent on it); ``check_elements(item, index)`` is the model's unseen-element policy."""
        # a left-handed cell (a mirror image, an improper rotation of a crystal) is a valid crystal to predict
        crystals = [as_crystal(s, allow_left_handed=True) for s in structures]
        # overlapping atoms are found from the neighbour graph below (one neighbour search, not two)
        cutoff = model.config.cutoff
        from_graph = cutoff >= MIN_DISTANCE
        for i, c in enumerate(crystals):
            check_crystal(c, c.label or "<structure>", i, allow_left_handed=True,
                          min_distance=0.0 if from_graph else MIN_DISTANCE)
            if check_elements is not None:
                check_elements(c, i)
            self.check_periodic(c, i)
        graphs = [build_graph(c, cutoff, index=i) for i, c in enumerate(crystals)]
        if from_graph:
            for i, (c, g) in enumerate(zip(crystals, graphs)):
                check_graph_distances(g, MIN_DISTANCE, c.label or "<structure>", i)
        for i, g in enumerate(graphs):
            if g.n_edges > max_edges:
                raise BatchBudgetError(
                    f"{crystals[i].label or '<structure>'}, structure {i}: {g.n_nodes} atoms and {g.n_edges} edges "
                    f"within the {cutoff} A cutoff, more than max_edges={max_edges} (about "
                    f"{format_bytes(prediction_bytes(model, g.n_edges))} to predict with this model); pass a larger "
                    "max_edges (CLI: --max-edges) if the machine has the memory")
            if progress and g.n_edges > LARGE_STRUCTURE_EDGES:
                print(f"predict: {crystals[i].label or 'structure'} {i}: {g.n_nodes} atoms, {g.n_edges} edges, about "
                      f"{format_bytes(prediction_bytes(model, g.n_edges))} and minutes of CPU", file=sys.stderr)
        # structures beyond the budget are predicted alone (prediction_batches)
        return crystals, graphs, prediction_batches(graphs, batch or PREDICTION_BUDGET)

    def check_periodic(self, crystal, index) -> None:
        """Crystal tensors (bulk Z*, eps_inf) need a crystal periodic in all three directions."""
        if crystal.pbc.all() or not self.periodic:
            return
        raise DataError(crystal.label or "<structure>", f"not periodic in all three directions (pbc "
                        f"{crystal.pbc.astype(int).tolist()}); this model predicts the bulk Z* and eps_inf of crystals, "
                        "which mean nothing for a molecule or slab in vacuum: give the crystal's cell, or use a "
                        "molecular charge model (tensorprop fit charges)", index)

    def check_fit(self, cfg: FitConfig) -> None:
        if cfg.model.head == "field":
            refuse_extra_train(cfg, f"model.targets {list(cfg.model.targets)} with head 'field'")
        if cfg.model.head == "field" and EPSILON in cfg.model.targets and cfg.train.epsilon_loss == "log":
            raise ConfigError("model.head 'field' needs train.epsilon_loss: huber (its eps_inf comes from the "
                              "polarisability, not from I + expm(S))")

    def training_data(self, cfg: FitConfig, *, dtype, progress: bool = False) -> TrainingData:
        tc, cutoff = cfg.train, cfg.model.cutoff
        data = load_training_data(cfg.data, tc.seed)
        train_graphs = build_graphs(data.train, cutoff, progress=progress, desc="train graphs")
        for extra in data.extra_train:  # train-only structures of data.extra_train, after the main ones
            train_graphs += build_graphs(extra, cutoff, progress=progress, desc=f"{extra.name} graphs")
        valid_graphs = build_graphs(data.valid, cutoff, progress=progress, desc="valid graphs")
        elements = sorted(set(data.train.elements).union(*(x.elements for x in data.extra_train)))
        metadata = {"dataset": cfg.data.dataset, "n_train": len(data.train)}
        if data.extra_train:
            metadata["extra_train"] = {x.name: len(x) for x in data.extra_train}

        collate = tensor_collate(train_graphs, cfg.batch, tc.seed, dtype, augment_rotations=tc.augment_rotations,
                                 position_noise=tc.position_noise)

        def stream(start):
            return training_stream(train_graphs, cfg.batch, tc.seed, collate, start)

        return TrainingData(data, train_graphs, valid_graphs, elements, metadata, stream,
                            make_labelled_batches(valid_graphs, cfg.batch, dtype=dtype))

    def ensemble_member_ok(self, config) -> bool:
        """Whether a model of ``config`` may join an ensemble (heads that are a mean of readouts: not field heads)."""
        return config.head != "field"

    def network_input(self, batch):
        """The graph: the backbone reads nothing else (an ensemble's batch may also carry foundation features)."""
        return graph_part(batch)


TENSORS = register(TensorsTask(name="tensors", model_kind="tensors",
                               outputs=(BORN_CHARGES, BORN_CHARGES_SPREAD, EPSILON, EPSILON_SPREAD), loss=loss_fn,
                               evaluate=evaluate_tensors, ensemble_member=True))
