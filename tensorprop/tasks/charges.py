"""Distributed charges of molecules (``model.task: charges``): n_dcm charges per atom at learned sites, their
dipole and ESP; the architecture is ``(ModelConfig, ChargesConfig)``."""

from __future__ import annotations

import dataclasses

import numpy as np

from ..config import BatchConfig, ChargesConfig, config_from_dict, config_to_dict
from ..errors import ConfigError
from ..data.batching import training_stream
from ..data.molecule_batching import make_molecule_batches, make_molecule_inputs, molecule_collate, molecule_graphs
from ..data.molecules import Molecule
from ..nn.charges import transformed_charges_network
from ..outputs import CHARGES, DIPOLE, SITES
from ..physics.electrostatics import assemble_charges, esp
from ..train.charge_losses import charge_loss_fn
from ..train.data import load_molecule_data
from ..train.model_evaluation import evaluate_charges
from .base import Task, TrainingData, refuse_extra_train, register

__all__ = ["ChargesTask", "CHARGES_TASK", "example_molecule_batch"]


def example_molecule_batch(cutoff: float):
    """A water molecule's ChargeInputs, used to initialise parameters (shapes only matter)."""
    water = Molecule(numbers=[8, 1, 1], positions=[[0, 0, 0], [0.76, 0.59, 0], [-0.76, 0.59, 0]])
    graphs = molecule_graphs([water], max(cutoff, 2.0))
    return make_molecule_inputs([water], graphs, BatchConfig(max_nodes=3, max_edges=6, max_graphs=1))[0][1]


@dataclasses.dataclass(frozen=True)
class ChargesTask(Task):
    """Backbone + distributed-charge head (equivariant or Cartesian, ``charges.head``); exact total charge."""

    def readout_irreps(self, config) -> set:
        """The charge head reads scalars and vectors (0e, 1o)."""
        return {"0e", "1o"}

    def architecture(self, config, options=None):
        return (config, options if options is not None else ChargesConfig())

    def initial_stats(self) -> dict:
        return {}

    def options_header(self, arch) -> dict:
        return {"charges_config": config_to_dict(arch[1])}

    def options_from_header(self, meta: dict):
        if "charges_config" not in meta:
            raise ConfigError("no charges_config in the header")
        return config_from_dict(ChargesConfig, meta["charges_config"], where="charges_config")

    def describe(self, model) -> str:
        c = model.arch[1]
        return f"{c.head}, n_dcm={c.n_dcm}, {model.n_parameters} parameters"

    def esp(self, prediction: dict, molecule, points=None) -> np.ndarray:
        """ESP (P,) in Hartree/e of a prediction at ``points`` (P, 3) Angstrom (default: the molecule's ESP points)."""
        points = molecule.esp_points if points is None else np.asarray(points, float)
        return np.asarray(esp(prediction[SITES].reshape(-1, 3), prediction[CHARGES].reshape(-1), points))

    def network(self, arch):
        config, charges = arch
        return transformed_charges_network(config, charges)

    def apply(self, arch, params, stats, inputs) -> dict:
        """ChargeInputs -> ``charges`` (N, K), ``sites`` (N, K, 3), ``dipole`` (G, 3) (``stats`` unused)."""
        raw = self.network(arch).apply(params, inputs.graph)
        return assemble_charges(raw["raw_charges"], raw["displacements"], inputs.graph, inputs.total_charge)

    def init_args(self, arch) -> tuple:
        return (example_molecule_batch(arch[0].cutoff).graph,)

    def prediction_batches(self, model, molecules, *, batch=None, progress=False, max_edges=None, check_elements=None):
        """Molecules -> (molecules, graphs, [(indices, padded ChargeInputs)]); ``check_elements(item, index)`` is the
        model's unseen-element policy. ``progress`` and ``max_edges`` are not used (molecules are small)."""
        molecules = list(molecules)
        if check_elements is not None:
            for i, m in enumerate(molecules):
                check_elements(m, i)
        graphs = molecule_graphs(molecules, model.config.cutoff)
        if batch is None:
            batch = BatchConfig(max_nodes=max([64] + [g.n_nodes for g in graphs]),
                                max_edges=max([1024] + [g.n_edges for g in graphs]), max_graphs=32, pad_mode="pow2")
        return molecules, graphs, make_molecule_inputs(molecules, graphs, batch)

    def check_fit(self, cfg) -> None:
        refuse_extra_train(cfg, f"model.targets {list(cfg.model.targets)} with head {cfg.model.head!r}")

    def training_data(self, cfg, *, dtype, progress: bool = False) -> TrainingData:
        tc = cfg.train
        data = load_molecule_data(cfg.data, tc.seed)
        train_graphs = molecule_graphs(data.train, cfg.model.cutoff)
        valid_graphs = molecule_graphs(data.valid, cfg.model.cutoff)
        elements = sorted({int(z) for m in data.train for z in m.numbers})
        max_points = max([1] + [m.n_points for part in (data.train, data.valid) for m in part])

        collate = molecule_collate(data.train, train_graphs, cfg.batch, max_points, tc.seed, dtype,
                                   augment_rotations=tc.augment_rotations)

        def stream(start):
            return training_stream(train_graphs, cfg.batch, tc.seed, collate, start)

        return TrainingData(data, train_graphs, valid_graphs, elements,
                            {"dataset": cfg.data.dataset, "n_train": len(data.train)}, stream,
                            make_molecule_batches(data.valid, valid_graphs, cfg.batch, max_points, dtype))


CHARGES_TASK = register(ChargesTask(name="charges", model_kind="charges", outputs=(CHARGES, SITES, DIPOLE),
                                    loss=charge_loss_fn, evaluate=evaluate_charges, periodic=False, molecules=True,
                                    noun="charge model"))
