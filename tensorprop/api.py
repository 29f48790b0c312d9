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

import warnings
from pathlib import Path
from typing import Any, Iterable, Mapping

import jax
import numpy as np

from .config import BatchConfig, ChargesConfig, FitConfig, ModelConfig, config_from_dict, config_to_dict, \
    read_yaml_mapping
from .data.batching import graph_part, node_slices
from .errors import CheckpointError, ConfigError, DataError
from .loading import load_model, register_kind
from .model_file import read_model_file, write_model_file
from .outputs import BORN_CHARGES, BORN_CHARGES_SPREAD, EPSILON, EPSILON_SPREAD, split_structures
from .tasks import compiled_apply, init_params, known_param_shapes, param_shapes, task_of
from .tasks.tensors import LARGE_STRUCTURE_EDGES, MAX_PREDICT_EDGES, compiled_field_response

__all__ = ["Model", "TensorModel", "build_model", "load_model", "MAX_PREDICT_EDGES", "apply_network",
           "compiled_apply", "param_shapes", "init_params"]
#: outputs of :meth:`TensorModel.predict_many` with one entry per atom: Z* (n_atoms, 3, 3) in e and, for
#: an ensemble, its members' spread (n_atoms,) in e
PER_ATOM_OUTPUTS = (BORN_CHARGES, BORN_CHARGES_SPREAD)
#: outputs with one entry per structure: eps_inf (3, 3) and, for an ensemble, its members' spread ()
PER_STRUCTURE_OUTPUTS = (EPSILON, EPSILON_SPREAD)
#: what :meth:`TensorModel.predict_many` returns of what the network gives, in this order
PREDICTION_OUTPUTS = PER_ATOM_OUTPUTS + PER_STRUCTURE_OUTPUTS
PARAMETER_MISMATCH = "parameter shapes do not match the network its config describes"
#: how haiku's ``get_parameter`` refuses parameters at apply time: of another shape, or absent; and how
#: stacking an ensemble group's members refuses members of one config with parameters of different shapes
HAIKU_PARAMETER_ERRORS = ("with retrieved shape", "Unable to retrieve parameter",
                          "all input arrays must have the same shape")


class Predictor:
    """What every predicting object shares (a :class:`Model`, an :class:`~tensorprop.ensemble.EnsembleModel`):
    the unseen-element policy, batching through its task and the per-structure split of the outputs.

    Subclasses set ``config``, ``task``, ``params``, ``stats``, ``elements`` and ``_evaluate``."""

    #: the model file's ``model_kind`` this class loads (None: the kind of the config's task)
    MODEL_KIND: str | None = None
    #: the model file whose parameter shapes are still to be checked against the config (see ``_checked_evaluate``)
    _unverified: str | None = None

    @property
    def n_parameters(self) -> int:
        return int(sum(np.size(x) for x in jax.tree.leaves(self.params)))

    @property
    def targets(self) -> tuple[str, ...]:
        return self.config.targets

    def unseen_elements(self, structure) -> list[int]:
        """Atomic numbers of ``structure`` that the model never saw in training."""
        if self.elements is None:
            return []
        return sorted(set(structure.numbers.tolist()) - set(self.elements))

    def _element_policy(self, policy: str):
        """``check(item, index)``: raise (policy ``"error"``) or warn (``"warn"``) for unseen elements."""

        def check(item, index):
            unknown = self.unseen_elements(item)
            if not unknown:
                return
            from ase.data import chemical_symbols  # ase.data only: the element names (ase itself is a dependency)

            names = ", ".join(chemical_symbols[z] for z in unknown)
            message = (f"element(s) {names} not in this {self.task.noun}'s training set; its predictions there would "
                       "be meaningless (to predict anyway, with a warning: --allow-unseen-elements on the command "
                       "line, unseen_elements='warn' in Python)")
            if policy == "warn":
                warnings.warn(f"{item.label or '<structure>'}, structure {index}: {message}", stacklevel=4)
            else:
                raise DataError(item.label or "<structure>", message, index)

        return check

    def predict(self, structure) -> dict[str, np.ndarray]:
        """Predict one structure (crystal models: ase.Atoms, pymatgen Structure or Crystal; charge models: a
        Molecule). Crystal tensors: ``{"born_charges": (n_atoms, 3, 3), "epsilon": (3, 3)}`` as numpy arrays
        (only the heads the model has), Born charges in e with Z[i, a, b] = dP_a/du_(i,b); an ensemble adds
        its members' spread: ``born_charges_spread`` (n_atoms,) e, ``epsilon_spread`` (). Charge models:
        ``charges`` (n_atoms, n_dcm) e, ``sites`` (n_atoms, n_dcm, 3) Angstrom, ``dipole`` (3,) e*Angstrom.
        """
        return self.predict_many([structure])[0]

    def predict_many(self, structures: Iterable[Any], *, batch: BatchConfig | None = None,
                     progress: bool = False, unseen_elements: str = "error",
                     max_edges: int = MAX_PREDICT_EDGES) -> list[dict[str, np.ndarray]]:
        """Predict many structures, batched into few padded shapes by the model's task.

        ``unseen_elements``: ``"error"`` (default) refuses structures with elements the model
        was not trained on, ``"warn"`` predicts them with a warning. ``max_edges``: a structure with
        more edges within the cutoff is refused with a :class:`BatchBudgetError` before any memory
        is spent on it (the compiled network needs roughly 10-30 KiB per edge; raise it when the
        machine has the memory).
        """
        items, graphs, batches = self.task.prediction_batches(
            self, structures, batch=batch, progress=progress, max_edges=max_edges,
            check_elements=self._element_policy(unseen_elements))
        results: list[dict | None] = [None] * len(graphs)
        if progress:
            from tqdm.auto import tqdm  # a progress bar only when asked for

            batches = tqdm(batches, desc="predict", unit="batch")
        for idx, b in batches:
            inputs = self._network_inputs(b, idx, items)
            large = progress and graph_part(b).senders.shape[0] > LARGE_STRUCTURE_EDGES
            out = jax.device_get(self._checked_evaluate(inputs, progress=large))
            for i, res in zip(idx, split_structures(out, self.task.outputs, node_slices(graphs, idx))):
                results[i] = res
        return results

    def _checked_evaluate(self, inputs, progress: bool = False) -> dict:
        """``_evaluate``, for a model loaded with its parameter shapes unchecked (``_unverified``: its file) the
        first time checked by the network itself: tracing it, haiku refuses a parameter that is missing or of
        another shape than the config makes (a computation read from the disk cache was traced with
        parameters of these very shapes). Such a refusal becomes a CheckpointError naming the file."""
        if self._unverified is None:
            return self._evaluate(inputs, progress=progress)
        try:
            out = self._evaluate(inputs, progress=progress)
        except ValueError as exc:
            if not any(m in str(exc) for m in HAIKU_PARAMETER_ERRORS):
                raise
            raise CheckpointError(f"{self._unverified}: {PARAMETER_MISMATCH} ({str(exc).splitlines()[0]})") from None
        self._unverified = None
        return out

    def _network_inputs(self, batch, idx, items):
        """What the network reads for the padded ``batch`` of ``items[i], i in idx``: the batch itself
        (a foundation-feature model adds the structures' features, see ``foundation_model.py``)."""
        return batch


class Model(Predictor):
    """One trained (or freshly built) network of any task: its config, parameters, training statistics.

    Parameters
    ----------
    config : ModelConfig
        Names the task (``config.task``: tensors, field, charges, foundation; see :mod:`tensorprop.tasks`).
    params : haiku parameter dict
    stats : dict of arrays, see :func:`tensorprop.physics.assemble.default_stats` (the task's defaults if None)
    elements : sequence of int, optional
        Atomic numbers seen in training; predicting other elements raises (or warns,
        with ``unseen_elements="warn"``). None means no restriction (untrained model).
    metadata : dict, optional
        Free, JSON-able information saved with the model (training data, metrics, ...).
    charges : ChargesConfig, optional
        The charge head's options (charges task only).
    """

    def __init__(self, config: ModelConfig, params, stats=None, *, elements=None, metadata=None,
                 charges: ChargesConfig | None = None):
        self.config = config
        self.task = task_of(config)
        self.arch = self.task.architecture(config, charges)
        self.params = params
        self.stats = {k: np.asarray(v) for k, v in (self.task.initial_stats() if stats is None else stats).items()}
        self.elements = None if elements is None else sorted(int(z) for z in elements)
        self.metadata = dict(metadata or {})
        self._network = self.task.network(self.arch)
        self._apply = compiled_apply(self.arch)

    @property
    def charges_config(self) -> ChargesConfig | None:
        """The charge head's options (charges task), else None."""
        return self.arch[1] if isinstance(self.arch, tuple) else None

    # -- pure functions for training -----------------------------------------------------
    def apply(self, params, stats, batch) -> dict:
        """Padded batch -> the task's outputs: for crystal tensors ``born_charges`` (N, 3, 3),
        ``epsilon``/``epsilon_log`` (G, 3, 3); with a field head (``model.head: field``) the tensors are derivatives of the
        field-coupled energy (no ``epsilon_log``; see :meth:`response`); for charges ``charges`` (N, K),
        ``sites`` (N, K, 3), ``dipole`` (G, 3)."""
        return self.task.apply(self.arch, params, stats, batch)

    def response(self, params, stats, batch, field=None, want=(BORN_CHARGES, EPSILON)) -> dict:
        """Field model only: energy (G,) eV, forces (N, 3) eV/A, dipole (G, 3) e*A, born_charges (N, 3, 3) e,
        polarisability (G, 3, 3) e*A^2/V and epsilon (G, 3, 3) at ``field`` (G, 3) V/A (default zero); compiled once
        per architecture, ``want`` and padded shape."""
        respond = compiled_field_response(self.config, want)
        if field is None:
            field = np.zeros((batch.graph_mask.shape[0], 3), np.result_type(batch.positions))
        return respond(params, stats, batch, field)

    def with_params(self, params, metadata: dict | None = None) -> "Model":
        """The same model with other weights (e.g. the EMA) and extra metadata."""
        return self._create(self.config, params, self.stats, charges=self.charges_config, elements=self.elements,
                            metadata={**self.metadata, **(metadata or {})})

    def _evaluate(self, batch, progress: bool = False) -> dict:
        """The compiled network on one padded batch (the function shared by every model of this architecture)."""
        return self._apply(self.params, self.stats, batch)

    def esp(self, molecule, points: np.ndarray | None = None) -> np.ndarray:
        """Charge models: ESP (P,) in Hartree/e at ``points`` (P, 3) Angstrom (default: the molecule's own ESP points)."""
        return self.task.esp(self.predict(molecule), molecule, points)

    # -- persistence ---------------------------------------------------------------------
    def file_header(self) -> dict:
        """The JSON header of this model's file: network config, elements seen, metadata (and the model kind
        and the task's options where the kind is not the default ``tensors``)."""
        return {**self.task.kind_header(), "model_config": config_to_dict(self.config), **self.task.options_header(self.arch),
                "elements": self.elements, "metadata": self.metadata}

    def embedded(self) -> "Model":
        """The model whose file holds every weight it predicts with: itself (a foundation-feature model
        overrides this to embed the frozen checkpoint it references)."""
        return self

    def file_params(self) -> dict:
        """The parameter modules its model file holds: the trained weights (a foundation model may add the
        frozen weights it embeds)."""
        return self.params

    def save(self, path: str | Path) -> Path:
        """Write a versioned ``.npz`` model file (see :mod:`tensorprop.model_file`)."""
        return write_model_file(path, self.file_params(), self.stats, self.file_header())

    @classmethod
    def load(cls, path: str | Path) -> "Model":
        return cls.from_file_contents(path, *read_model_file(path))

    @classmethod
    def _create(cls, config, params, stats, *, charges=None, elements=None, metadata=None) -> "Model":
        """A model of this class (subclasses with another constructor signature override this)."""
        return cls(config, params, stats, elements=elements, metadata=metadata)

    @classmethod
    def _wrong_kind(cls, path, kind: str) -> str:
        return f"{path}: a {kind!r} model, not a tensor model; use tensorprop.load_model"

    @classmethod
    def from_file_contents(cls, path, params: dict, stats: dict, meta: dict) -> "Model":
        """The model of a file already read with ``read_model_file`` (``path`` names it in errors)."""
        kind = meta.get("model_kind", "tensors")
        if cls.MODEL_KIND is not None and kind != cls.MODEL_KIND:
            raise CheckpointError(cls._wrong_kind(path, kind))
        try:
            config = config_from_dict(ModelConfig, meta.get("model_config"), where="model_config")
            task = task_of(config)
            if task.model_kind != kind:
                raise ConfigError(f"model_config describes a {task.name!r} model, the file a {kind!r} model")
            options = task.options_from_header(meta)
        except ConfigError as exc:
            raise CheckpointError(f"{path}: incompatible {task_noun(kind)} config: {exc}") from None
        model = cls._create(config, params, stats, charges=options, elements=meta.get("elements"),
                            metadata=meta.get("metadata"))
        shapes = known_param_shapes(model.arch)
        if shapes is None:  # not known without tracing the network's init (seconds): left to the first prediction
            model._unverified = str(path)
        elif jax.tree.map(np.shape, params) != shapes:
            raise CheckpointError(f"{path}: {PARAMETER_MISMATCH}")
        return model

    def __repr__(self):
        return f"{type(self).__name__}({self.task.describe(self)})"


def task_noun(kind: str) -> str:
    """How error messages name a model file's kind of model."""
    return "charge-model" if kind == "charges" else "model"


class TensorModel(Model):
    """A :class:`Model` of crystal tensors (the name kept for user code and model files: its ``load`` refuses
    other kinds of model file)."""

    MODEL_KIND = "tensors"


register_kind(TensorModel.MODEL_KIND, TensorModel)


def apply_network(config: ModelConfig, params, stats, batch) -> dict:
    """:meth:`Model.apply` as a function of the architecture ``config`` (what jit is keyed on)."""
    return task_of(config).apply(config, params, stats, batch)


def build_model(config: ModelConfig | FitConfig | Mapping | str | Path | None = None, seed: int = 0) -> Model:
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


