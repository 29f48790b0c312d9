"""The user-facing molecular charge model: distributed charges, dipole and ESP of molecules.

>>> import numpy as np, tensorprop
>>> from tensorprop.charges import build_charge_model
>>> model = build_charge_model({"hidden_irreps": "8x0e+4x1o", "head_irreps": "8x0e+4x1o", "num_layers": 1},
...                            {"n_dcm": 2})
>>> water = tensorprop.Molecule(numbers=[8, 1, 1], positions=[[0, 0, 0], [0.76, 0.59, 0], [-0.76, 0.59, 0]])
>>> out = model.predict(water)
>>> out["charges"].shape, out["sites"].shape, out["dipole"].shape, round(float(out["charges"].sum()), 6)
((3, 2), (3, 2, 3), (3,), 0.0)
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from pathlib import Path
from typing import Mapping, Sequence

import jax
import numpy as np

from .compiled import shared_jit
from .config import BatchConfig, ChargesConfig, ModelConfig, config_from_dict, config_to_dict
from .data.batching import node_slices
from .data.molecule_batching import make_molecule_batches, molecule_graphs
from .data.molecules import Molecule
from .errors import CheckpointError, ConfigError, DataError
from .model_file import read_model_file, write_model_file
from .nn.charges import transformed_charges_network
from .physics.electrostatics import assemble_charges, esp
from .outputs import CHARGES, DIPOLE, SITES, split_structures

__all__ = ["ChargeModel", "build_charge_model", "MODEL_KIND"]

MODEL_KIND = "charges"
#: what :meth:`ChargeModel.predict_many` returns, in this order
PREDICTION_OUTPUTS = (CHARGES, SITES, DIPOLE)


class ChargeModel:
    """Backbone + distributed-charge head (equivariant or Cartesian), its parameters and metadata.

    ``predict(molecule)`` returns ``charges`` (n_atoms, n_dcm) e, ``sites`` (n_atoms, n_dcm, 3)
    Angstrom, ``dipole`` (3,) e*Angstrom; :meth:`esp` gives the potential at any points.
    """

    def __init__(self, config: ModelConfig, charges: ChargesConfig, params, *, elements=None, metadata=None):
        self.config = config
        self.charges_config = charges
        self.params = params
        self.stats: dict = {}
        self.elements = None if elements is None else sorted(int(z) for z in elements)
        self.metadata = dict(metadata or {})
        self._network = transformed_charges_network(config, charges)
        self._apply = shared_jit(("charges", config, charges),
                                 lambda: functools.partial(apply_charges, config, charges))

    def apply(self, params, stats, batch) -> dict:
        """ChargeBatch -> ``charges`` (N, K), ``sites`` (N, K, 3), ``dipole`` (G, 3) (``stats`` unused)."""
        return apply_charges(self.config, self.charges_config, params, stats, batch)

    @property
    def n_parameters(self) -> int:
        return int(sum(np.size(x) for x in jax.tree.leaves(self.params)))

    def with_params(self, params, metadata: dict | None = None) -> "ChargeModel":
        return ChargeModel(self.config, self.charges_config, params, elements=self.elements,
                           metadata={**self.metadata, **(metadata or {})})

    def predict_many(self, molecules: Sequence[Molecule], *, batch: BatchConfig | None = None,
                     unseen_elements: str = "error") -> list[dict]:
        """Charges, sites and dipoles of molecules; ``unseen_elements``: ``"error"`` (default) refuses
        molecules with elements absent from training, ``"warn"`` predicts them with a warning."""
        molecules = list(molecules)
        if self.elements is not None:
            from ase.data import chemical_symbols

            for i, m in enumerate(molecules):
                unknown = sorted(set(m.numbers.tolist()) - set(self.elements))
                if unknown:
                    message = (f"element(s) {', '.join(chemical_symbols[z] for z in unknown)} not in this charge "
                               f"model's training set")
                    if unseen_elements != "warn":
                        raise DataError(m.label or "<molecule>", message, i)
                    warnings.warn(f"{m.label or '<molecule>'}, structure {i}: {message}", stacklevel=2)
        graphs = molecule_graphs(molecules, self.config.cutoff)
        if batch is None:
            batch = BatchConfig(max_nodes=max([64] + [g.n_nodes for g in graphs]),
                                max_edges=max([1024] + [g.n_edges for g in graphs]), max_graphs=32, pad_mode="pow2")
        stripped = [m.replace(esp_points=None, esp=None) for m in molecules]
        results: list = [None] * len(molecules)
        for idx, b in make_molecule_batches(stripped, graphs, batch, max_points=1):
            out = jax.device_get(self._apply(self.params, self.stats, b))
            for i, res in zip(idx, split_structures(out, PREDICTION_OUTPUTS, node_slices(graphs, idx))):
                results[i] = res
        return results

    def predict(self, molecule: Molecule) -> dict:
        return self.predict_many([molecule])[0]

    def esp(self, molecule: Molecule, points: np.ndarray | None = None) -> np.ndarray:
        """ESP (P,) in Hartree/e at ``points`` (P, 3) Angstrom (default: the molecule's own ESP points)."""
        pred = self.predict(molecule)
        points = molecule.esp_points if points is None else np.asarray(points, float)
        return np.asarray(esp(pred[SITES].reshape(-1, 3), pred[CHARGES].reshape(-1), points))

    def save(self, path: str | Path) -> Path:
        meta = {"model_kind": MODEL_KIND, "model_config": config_to_dict(self.config),
                "charges_config": config_to_dict(self.charges_config), "elements": self.elements,
                "metadata": self.metadata}
        return write_model_file(path, self.params, {}, meta)

    @classmethod
    def load(cls, path: str | Path) -> "ChargeModel":
        return cls.from_file_contents(path, *read_model_file(path))

    @classmethod
    def from_file_contents(cls, path, params: dict, stats: dict, meta: dict) -> "ChargeModel":
        """The model of a file already read with ``read_model_file`` (``path`` names it in errors)."""
        if meta.get("model_kind") != MODEL_KIND:
            raise CheckpointError(f"{path}: not a charge model (kind {meta.get('model_kind', 'tensors')!r})")
        try:
            config = config_from_dict(ModelConfig, meta["model_config"], where="model_config")
            charges = config_from_dict(ChargesConfig, meta["charges_config"], where="charges_config")
        except (ConfigError, KeyError) as exc:
            raise CheckpointError(f"{path}: incompatible charge-model config: {exc}") from None
        model = cls(config, charges, params, elements=meta.get("elements"), metadata=meta.get("metadata"))
        if jax.tree.map(np.shape, params) != charge_param_shapes(config, charges):
            raise CheckpointError(f"{path}: parameter shapes do not match the network its config describes")
        return model

    def __repr__(self):
        c = self.charges_config
        return f"ChargeModel({c.head}, n_dcm={c.n_dcm}, {self.n_parameters} parameters)"


def apply_charges(config: ModelConfig, charges: ChargesConfig, params, stats, batch) -> dict:
    """:meth:`ChargeModel.apply` as a function of the architecture (what the shared jit is keyed on)."""
    raw = transformed_charges_network(config, charges).apply(params, batch.graph)
    return assemble_charges(raw["raw_charges"], raw["displacements"], batch.graph, batch.total_charge)


def _example_batch(cutoff: float):
    water = Molecule(numbers=[8, 1, 1], positions=[[0, 0, 0], [0.76, 0.59, 0], [-0.76, 0.59, 0]])
    graphs = molecule_graphs([water], max(cutoff, 2.0))
    return make_molecule_batches([water], graphs, BatchConfig(max_nodes=3, max_edges=6, max_graphs=1), 1)[0][1]


@functools.lru_cache(maxsize=16)
def charge_param_shapes(config: ModelConfig, charges: ChargesConfig):
    net = transformed_charges_network(config, charges)
    shaped = jax.eval_shape(net.init, jax.random.PRNGKey(0), _example_batch(config.cutoff).graph)
    return jax.tree.map(lambda x: tuple(x.shape), shaped)


@functools.lru_cache(maxsize=8)
def _jitted_init(config: ModelConfig, charges: ChargesConfig):
    return jax.jit(transformed_charges_network(config, charges).init)


def init_charge_params(config: ModelConfig, charges: ChargesConfig, seed: int = 0):
    return _jitted_init(config, charges)(jax.random.PRNGKey(seed), _example_batch(config.cutoff).graph)


def build_charge_model(config: ModelConfig | Mapping | None = None, charges: ChargesConfig | Mapping | None = None,
                       seed: int = 0) -> ChargeModel:
    """A charge model with random weights; ``config``/``charges`` as dataclasses, dicts of their fields, or None."""
    if not isinstance(config, ModelConfig):
        config = config_from_dict(ModelConfig, {"hidden_irreps": "32x0e + 16x1o + 8x2e", "head_irreps": "16x0e + 8x1o",
                                                "cutoff": 4.0, **dict(config or {}), "targets": [CHARGES]})
    elif config.targets != (CHARGES,):
        config = dataclasses.replace(config, targets=(CHARGES,))
    if not isinstance(charges, ChargesConfig):
        charges = config_from_dict(ChargesConfig, dict(charges or {}))
    return ChargeModel(config, charges, init_charge_params(config, charges, seed))
