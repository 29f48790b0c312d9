"""The user-facing model object: build, load, save, predict.

>>> import tensorprop
>>> model = tensorprop.build_model({"hidden_irreps": "4x0e+4x0o+2x1o+2x1e+2x2e+2x2o",
...                                 "head_irreps": "4x0e+2x1e+2x2e", "num_layers": 1})
>>> from ase.build import bulk
>>> out = model.predict(bulk("NaCl", "rocksalt", a=5.64))
>>> out["born_charges"].shape, out["epsilon"].shape
((2, 3, 3), (3, 3))
"""

from __future__ import annotations

import functools
import sys
import warnings
from pathlib import Path
from typing import Any, Iterable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from .compiled import cached_per_architecture, shared_jit
from .config import BatchConfig, FitConfig, ModelConfig, config_from_dict, config_to_dict, read_yaml_mapping
from .data.batching import make_batches, node_slices, prediction_batches
from .data.graph import build_graph
from .data.validate import MIN_DISTANCE, check_crystal, check_graph_distances
from .data.convert import as_crystal
from .errors import BatchBudgetError, CheckpointError, ConfigError, DataError
from .memory import format_bytes, prediction_bytes
from .model_file import read_model_file, write_model_file
from .nn.backbone import NUM_ELEMENTS
from .nn.model import transformed_network
from .physics.assemble import assemble_tensors, default_stats

__all__ = ["TensorModel", "build_model", "load_model", "MAX_PREDICT_EDGES"]

#: largest structure (edges within the cutoff) that ``predict`` accepts by default: about 15 GiB with the bundled model
MAX_PREDICT_EDGES = 500_000
#: structures with more edges get a line on stderr (atoms, edges, memory) when ``predict_many`` shows progress
LARGE_STRUCTURE_EDGES = 1 << 16
#: outputs of :meth:`TensorModel.predict_many` with one entry per atom: Z* (n_atoms, 3, 3) in e and, for
#: an ensemble, its members' spread (n_atoms,) in e
PER_ATOM_OUTPUTS = ("born_charges", "born_charges_spread")
#: outputs with one entry per structure: eps_inf (3, 3) and, for an ensemble, its members' spread ()
PER_STRUCTURE_OUTPUTS = ("epsilon", "epsilon_spread")


class TensorModel:
    """A network config, its parameters and its training statistics.

    Parameters
    ----------
    config : ModelConfig
    params : haiku parameter dict
    stats : dict of arrays, see :func:`tensorprop.physics.assemble.default_stats`
    elements : sequence of int, optional
        Atomic numbers seen in training; predicting other elements raises (or warns,
        with ``unknown_elements="warn"``). None means no restriction (untrained model).
    metadata : dict, optional
        Free, JSON-able information saved with the model (training data, metrics, ...).
    """

    MODEL_KIND = "tensors"  # the model file's ``model_kind``

    def __init__(self, config: ModelConfig, params, stats=None, *, elements=None, metadata=None):
        self.config = config
        self.params = params
        self.stats = {k: np.asarray(v) for k, v in (stats or default_stats()).items()}
        self.elements = None if elements is None else sorted(int(z) for z in elements)
        self.metadata = dict(metadata or {})
        self._network = transformed_network(config)
        self._apply = compiled_apply(config)

    # -- pure functions for training -----------------------------------------------------
    def apply(self, params, stats, batch) -> dict:
        """Padded batch -> dict of ``born_charges`` (N, 3, 3), ``epsilon``/``epsilon_log`` (G, 3, 3).

        With ``config.head == "field"`` the tensors are derivatives of the field-coupled energy
        (no ``epsilon_log``; see :meth:`response` for energy, forces, dipole and polarisability).
        """
        return apply_network(self.config, params, stats, batch)

    def response(self, params, stats, batch, field=None, want=("born_charges", "epsilon")) -> dict:
        """Field model only: energy (G,) eV, forces (N, 3) eV/A, dipole (G, 3) e*A, born_charges (N, 3, 3) e,
        polarisability (G, 3, 3) e*A^2/V and epsilon (G, 3, 3) at ``field`` (G, 3) V/A (default zero)."""
        return field_model_response(self.config, params, stats, batch, field, want)

    @property
    def n_parameters(self) -> int:
        return int(sum(np.size(x) for x in jax.tree.leaves(self.params)))

    def with_params(self, params, metadata: dict | None = None) -> "TensorModel":
        """The same model with other weights (e.g. the EMA) and extra metadata."""
        return TensorModel(self.config, params, self.stats, elements=self.elements,
                           metadata={**self.metadata, **(metadata or {})})

    @property
    def targets(self) -> tuple[str, ...]:
        return self.config.targets

    # -- prediction ----------------------------------------------------------------------
    def unseen_elements(self, crystal) -> list[int]:
        """Atomic numbers of ``crystal`` that the model never saw in training."""
        if self.elements is None:
            return []
        return sorted(set(crystal.numbers.tolist()) - set(self.elements))

    def _check_elements(self, crystal, index, policy: str):
        unknown = self.unseen_elements(crystal)
        if not unknown:
            return
        from ase.data import chemical_symbols

        names = ", ".join(chemical_symbols[z] for z in unknown)
        message = (f"element(s) {names} not in this model's training set; its predictions there would be "
                   "meaningless (to predict anyway, with a warning: --allow-unseen-elements on the command line, "
                   "unseen_elements='warn' in Python)")
        if policy == "warn":
            warnings.warn(f"{crystal.label or '<structure>'}, structure {index}: {message}", stacklevel=3)
        else:
            raise DataError(crystal.label or "<structure>", message, index)

    def _check_periodic(self, crystal, index):
        """Crystal tensors (bulk Z*, eps_inf) need a crystal periodic in all three directions."""
        if crystal.pbc.all() or not set(self.config.targets) & set(("born_charges", "epsilon")):
            return
        raise DataError(crystal.label or "<structure>", f"not periodic in all three directions (pbc "
                        f"{crystal.pbc.astype(int).tolist()}); this model predicts the bulk Z* and eps_inf of crystals, "
                        "which mean nothing for a molecule or slab in vacuum: give the crystal's cell, or use a "
                        "molecular charge model (tensorprop fit charges)", index)

    def predict(self, structure) -> dict[str, np.ndarray]:
        """Predict the tensors of one structure (ase.Atoms, pymatgen Structure or Crystal).

        Returns ``{"born_charges": (n_atoms, 3, 3), "epsilon": (3, 3)}`` as numpy arrays
        (only the heads the model has), Born charges in e with Z[i, a, b] = dP_a/du_(i,b).
        An ensemble adds its members' spread: ``born_charges_spread`` (n_atoms,) e, ``epsilon_spread`` ().
        """
        return self.predict_many([structure])[0]

    def predict_many(self, structures: Iterable[Any], *, batch: BatchConfig | None = None,
                     progress: bool = False, unseen_elements: str = "error",
                     max_edges: int = MAX_PREDICT_EDGES) -> list[dict[str, np.ndarray]]:
        """Predict many structures, batched into few padded shapes (:func:`.data.batching.prediction_batches`).

        ``unseen_elements``: ``"error"`` (default) refuses structures with elements the model
        was not trained on, ``"warn"`` predicts them with a warning. ``max_edges``: a structure with
        more edges within the cutoff is refused with a :class:`BatchBudgetError` before any memory
        is spent on it (the compiled network needs roughly 10-30 KiB per edge; raise it when the
        machine has the memory).
        """
        # a left-handed cell (a mirror image, an improper rotation of a crystal) is a valid crystal to predict
        crystals = [as_crystal(s, allow_left_handed=True) for s in structures]
        # overlapping atoms are found from the neighbour graph below (one neighbour search, not two)
        from_graph = self.config.cutoff >= MIN_DISTANCE
        for i, c in enumerate(crystals):
            check_crystal(c, c.label or "<structure>", i, allow_left_handed=True,
                          min_distance=0.0 if from_graph else MIN_DISTANCE)
            self._check_elements(c, i, unseen_elements)
            self._check_periodic(c, i)
        graphs = [build_graph(c, self.config.cutoff, index=i) for i, c in enumerate(crystals)]
        if from_graph:
            for i, (c, g) in enumerate(zip(crystals, graphs)):
                check_graph_distances(g, MIN_DISTANCE, c.label or "<structure>", i)
        for i, g in enumerate(graphs):
            if g.n_edges > max_edges:
                raise BatchBudgetError(
                    f"{crystals[i].label or '<structure>'}, structure {i}: {g.n_nodes} atoms and {g.n_edges} edges "
                    f"within the {self.config.cutoff} A cutoff, more than max_edges={max_edges} (about "
                    f"{format_bytes(prediction_bytes(self, g.n_edges))} to predict with this model); pass a larger "
                    "max_edges (CLI: --max-edges) if the machine has the memory")
            if progress and g.n_edges > LARGE_STRUCTURE_EDGES:
                print(f"predict: {crystals[i].label or 'structure'} {i}: {g.n_nodes} atoms, {g.n_edges} edges, about "
                      f"{format_bytes(prediction_bytes(self, g.n_edges))} and minutes of CPU", file=sys.stderr)
        if batch is None:  # structures beyond it are predicted alone (prediction_batches)
            batch = BatchConfig(max_nodes=256, max_edges=8192, max_graphs=64, pad_mode="pow2")
        results: list[dict | None] = [None] * len(graphs)
        batches = prediction_batches(graphs, batch)
        if progress:
            from tqdm.auto import tqdm

            batches = tqdm(batches, desc="predict", unit="batch")
        for idx, b in batches:
            inputs = self._network_inputs(b, idx, crystals)
            out = jax.device_get(self._evaluate(inputs, progress=progress and b.senders.shape[0] > LARGE_STRUCTURE_EDGES))
            for k, (i, atoms) in enumerate(zip(idx, node_slices(graphs, idx))):
                res = {key: np.asarray(out[key][atoms], np.float64) for key in PER_ATOM_OUTPUTS if key in out}
                res.update({key: np.asarray(out[key][k], np.float64) for key in PER_STRUCTURE_OUTPUTS if key in out})
                results[i] = res
        return results

    def _network_inputs(self, batch, idx, crystals):
        """What the network reads for the padded ``batch`` of ``crystals[i], i in idx``: the batch itself
        (a foundation-feature model adds the structures' features, see ``foundation_model.py``)."""
        return batch

    def _evaluate(self, batch, progress: bool = False) -> dict:
        """The compiled network on one padded batch (the function shared by every model of this architecture)."""
        return self._apply(self.params, self.stats, batch)

    # -- persistence ---------------------------------------------------------------------
    def file_header(self) -> dict:
        """The JSON header of this model's file: network config, elements seen, metadata."""
        return {"model_config": config_to_dict(self.config), "elements": self.elements, "metadata": self.metadata}

    def save(self, path: str | Path) -> Path:
        """Write a versioned ``.npz`` model file (see :mod:`tensorprop.model_file`)."""
        return write_model_file(path, self.params, self.stats, self.file_header())

    @classmethod
    def load(cls, path: str | Path) -> "TensorModel":
        return cls.from_file_contents(path, *read_model_file(path))

    @classmethod
    def from_file_contents(cls, path, params: dict, stats: dict, meta: dict) -> "TensorModel":
        """The model of a file already read with ``read_model_file`` (``path`` names it in errors)."""
        if meta.get("model_kind", "tensors") != cls.MODEL_KIND:
            raise CheckpointError(f"{path}: a {meta['model_kind']!r} model, not a tensor model; use tensorprop.load_model")
        try:
            config = config_from_dict(ModelConfig, meta.get("model_config"), where="model_config")
        except ConfigError as exc:
            raise CheckpointError(f"{path}: incompatible model config: {exc}") from None
        model = cls(config, params, stats, elements=meta.get("elements"), metadata=meta.get("metadata"))
        if jax.tree.map(np.shape, params) != param_shapes(config):
            raise CheckpointError(f"{path}: parameter shapes do not match the network its config describes")
        return model

    def __repr__(self):
        heads = "+".join(self.config.targets)
        return f"TensorModel({heads}, {self.n_parameters} parameters, cutoff={self.config.cutoff} A)"


def apply_network(config: ModelConfig, params, stats, batch) -> dict:
    """:meth:`TensorModel.apply` as a function of the architecture ``config`` (what jit is keyed on)."""
    if config.targets == ("field",):  # a FieldBatch: everything at each structure's own field
        return field_model_response(config, params, stats, batch.graph, batch.field, want=("born_charges",))
    if config.head == "field":
        return field_model_response(config, params, stats, batch, want=config.targets)
    if config.foundation is not None:  # a FeatureBatch: heads on precomputed per-atom features
        return assemble_tensors(transformed_network(config).apply(params, batch), batch.graph, stats)
    return assemble_tensors(transformed_network(config).apply(params, batch), batch, stats)


def field_model_response(config: ModelConfig, params, stats, batch, field=None,
                         want=("born_charges", "epsilon")) -> dict:
    """:meth:`TensorModel.response` as a function of the architecture ``config``."""
    from .physics.field_response import field_response, neutral_species_charges

    if config.head != "field":
        raise ConfigError("response() needs a field model (model.head: field)")
    network = transformed_network(config)
    charges = neutral_species_charges(stats, batch)
    shift = jnp.asarray(stats.get("energy_shift", np.zeros(NUM_ELEMENTS)), batch.positions.dtype)[batch.numbers]
    reference = jax.ops.segment_sum(shift * batch.node_mask, batch.node_graph, num_segments=batch.n_graphs)

    def energy(positions, f):
        return network.apply(params, batch._replace(positions=positions), f, charges) + reference

    return field_response(energy, batch, field, want=want)


def compiled_apply(config: ModelConfig):
    """``jax.jit(apply_network)`` for ``config``: one per architecture, shared by all its models
    (:func:`tensorprop.compiled.shared_jit`), compiled once per padded shape."""
    return shared_jit(("tensors", config), lambda: functools.partial(apply_network, config))


def _example_batch(cutoff: float):
    """A two-atom rock-salt batch used to initialise parameters (shapes only matter)."""
    from .data.records import Crystal

    a = 5.64
    crystal = Crystal(numbers=[11, 17], positions=[[0, 0, 0], [a / 2, 0, 0]],
                      cell=[[0, a / 2, a / 2], [a / 2, 0, a / 2], [a / 2, a / 2, 0]], pbc=True)
    graph = build_graph(crystal, max(cutoff, 4.0))
    return make_batches([graph], BatchConfig(max_nodes=2, max_edges=graph.n_edges, max_graphs=1))[0][1]


def _init_args(config: ModelConfig) -> tuple:
    """Example arguments of the network's ``init``: a batch (and, for field models, a field and charges)."""
    batch = _example_batch(config.cutoff)
    if config.foundation is not None:  # heads on precomputed per-atom features
        import e3nn_jax as e3nn

        from .data.feature_batching import FeatureBatch

        width = e3nn.Irreps(config.foundation.feature_irreps).dim
        return (FeatureBatch(batch, np.zeros((batch.numbers.shape[0], width), np.float32)),)
    if config.head != "field":
        return (batch,)
    return batch, np.zeros((batch.graph_mask.shape[0], 3), np.float32), np.zeros(batch.numbers.shape, np.float32)


@functools.lru_cache(maxsize=8)
def _jitted_init(config: ModelConfig):
    return jax.jit(transformed_network(config).init)


@functools.lru_cache(maxsize=32)
def param_shapes(config: ModelConfig):
    """Shapes of the parameters of the network ``config`` describes (traced, not compiled or run; traced once per
    architecture and kept in the user cache, :func:`tensorprop.compiled.cached_per_architecture`)."""
    def traced():
        shaped = jax.eval_shape(transformed_network(config).init, jax.random.PRNGKey(0), *_init_args(config))
        return jax.tree.map(lambda x: tuple(x.shape), shaped)

    return cached_per_architecture("param_shapes", config, traced)


def init_params(config: ModelConfig, seed: int = 0):
    """Random parameters of the network ``config`` describes (jit-compiled init)."""
    return _jitted_init(config)(jax.random.PRNGKey(seed), *_init_args(config))


def build_model(config: ModelConfig | FitConfig | Mapping | str | Path | None = None, seed: int = 0) -> TensorModel:
    """A model with random weights.

    ``config``: the path of a YAML config (a ``fit`` config with a ``model:`` section, such as
    ``configs/becs-eps.yaml``, or the model fields alone), a dict of the same, a ModelConfig, a
    FitConfig, or None (defaults). Anything else is a TypeError.
    """
    if isinstance(config, (str, Path)):
        try:
            return build_model(read_yaml_mapping(config), seed)
        except ConfigError as exc:
            raise ConfigError(f"{config}: {exc}") from None
    if isinstance(config, Mapping):
        config = dict(config)
        config = config_from_dict(FitConfig, config).model if "model" in config else \
            config_from_dict(ModelConfig, config)
    if isinstance(config, FitConfig):
        config = config.model
    if config is None:
        config = ModelConfig()
    if not isinstance(config, ModelConfig):
        raise TypeError(f"build_model: config must be a path to a YAML config, a dict, a ModelConfig, a FitConfig "
                        f"or None, got {type(config).__name__}")
    return TensorModel(config, init_params(config, seed))


def load_model(path: str | Path | None = None):
    """Load a trained model file (a :class:`TensorModel`, or the :class:`~tensorprop.charges.ChargeModel` or
    :class:`~tensorprop.ensemble.EnsembleModel` the file holds); with no path, the pretrained model bundled
    with the package."""
    if path is None or str(path) == "default":
        bundled = Path(__file__).parent / "pretrained" / "becs-eps.npz"
        if not bundled.is_file():
            raise CheckpointError(f"{bundled}: no pretrained model is bundled with this installation")
        path = bundled
    path = Path(path)
    if path.is_dir():
        path = path / "model.npz"
    contents = read_model_file(path)
    if contents[2].get("model_kind") == "charges":
        from .charges import ChargeModel

        return ChargeModel.from_file_contents(path, *contents)
    if contents[2].get("model_kind") == "foundation":
        from .foundation_model import FoundationTensorModel

        return FoundationTensorModel.from_file_contents(path, *contents)
    if contents[2].get("model_kind") == "ensemble":
        from .ensemble import EnsembleModel

        return EnsembleModel.from_file_contents(path, *contents)
    return TensorModel.from_file_contents(path, *contents)
