"""The :class:`Task` interface: what a model family owns, and the registry the rest of the package looks it up in.

A family (crystal tensors, field energy, molecular charges, heads on foundation features) is one
frozen :class:`Task` instance. Everything that differs between families goes through it: the
network (:meth:`Task.network`), how its raw output becomes the outputs (:meth:`Task.apply`), the
example inputs that fix its parameter shapes (:meth:`Task.init_args`), its output keys (from
:mod:`tensorprop.outputs`), its loss and error sums (:attr:`Task.loss`), its evaluation on a split
(:attr:`Task.evaluate`), its batches (:meth:`Task.prediction_batches`) and its model-file kind. Code outside
:mod:`tensorprop.tasks` asks ``task_of(config)`` instead of testing ``targets``/``head`` strings.

The "architecture" ``arch`` a task's methods take is the hashable description of one network:
the :class:`~tensorprop.config.ModelConfig` itself, or for a family with more options (charges)
a tuple that starts with it (:func:`model_config`).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, NamedTuple

import haiku as hk
import jax

from ..compiled import cached_per_architecture, compile_once, read_per_architecture, shared_jit
from ..config import MODEL_CHECKS, check_irreps
from ..errors import ConfigError
from ..physics.assemble import default_stats

__all__ = ["Task", "TrainingData", "TASKS", "register", "task_named", "task_of", "task_of_kind", "model_config",
           "param_shapes", "known_param_shapes", "init_params", "compiled_apply"]

#: every registered task by name (``model.task``)
TASKS: dict[str, "Task"] = {}


class TrainingData(NamedTuple):
    """What a task reads for training: the split (``SplitData``), the neighbour graphs of the structures that train
    and validate, the elements seen, the model metadata, ``stream(start_step)`` -> iterator of (epoch, padded
    :class:`~tensorprop.data.batching.Batch`) and the validation batches [(indices, padded Batch)]."""

    data: Any
    train_graphs: list
    valid_graphs: list
    elements: list
    metadata: dict
    stream: Callable
    valid_batches: list


def refuse_extra_train(cfg, what: str) -> None:
    """ConfigError when ``data.extra_train`` is set for a model that cannot use it (``what`` names the model)."""
    if cfg.data.extra_train:
        raise ConfigError("data.extra_train adds crystals with Z*/eps_inf labels; it is not available for "
                          f"{what}")


@dataclasses.dataclass(frozen=True)
class Task:
    """One model family. ``name``: the ``model.task`` value; ``model_kind``: the model file's ``model_kind``;
    ``outputs``: what ``predict`` returns per structure (registry keys, in order); ``loss``: ``(predictions,
    Batch, TrainConfig) -> (scalar loss, error sums)``, the labels read from ``Batch.labels`` (see
    :func:`tensorprop.train.evaluate.summarize_errors`);
    ``periodic``: whether it predicts bulk properties that need all three directions periodic (Z*/eps_inf);
    ``molecules``: whether it reads :class:`~tensorprop.data.molecules.Molecule` s rather than crystals;
    ``evaluate``: ``(model, EvaluationRequest) -> Evaluation``, the model on a split (``tensorprop evaluate``, see
    :mod:`tensorprop.train.model_evaluation`)."""

    name: str
    model_kind: str
    outputs: tuple[str, ...]
    loss: Callable
    evaluate: Callable
    periodic: bool = True
    molecules: bool = False
    ensemble_member: bool = False  # may be a member of an EnsembleModel
    noun: str = "model"  # how messages name a model of this task

    def validate(self, config) -> None:
        """Refuse a ModelConfig of this family that it cannot build, with one line naming the key (ConfigError); run
        by every ModelConfig of the task after the generic checks (:data:`tensorprop.config.MODEL_CHECKS`): a field
        head (``model.head: field``) has no weighted sum rule and one backbone, then :meth:`check_targets`, then the
        irreps the heads read (:meth:`needed_irreps`)."""
        if config.sum_rule == "weighted" and config.head == "field":
            raise ConfigError("model.sum_rule: weighted does not apply to model.head: field (its Z* are "
                              "derivatives of one energy and obey the sum rule by translation invariance)")
        if config.backbone_per_target and config.head == "field":
            raise ConfigError("model.backbone_per_target does not apply to model.head: field (one energy "
                              "gives every tensor)")
        self.check_targets(config)
        check_irreps(config, lambda key: self.needed_irreps(config, key))

    def check_targets(self, config) -> None:
        """ConfigError when ``model.targets`` is not one the family predicts (none to check by default)."""

    def needed_irreps(self, config, key: str) -> set:
        """The irreps ``model.<key>`` (hidden_irreps or head_irreps) must hold: a field head's 0e, 1o and, in
        head_irreps, 2e; otherwise those of the family's readout (:meth:`readout_irreps`)."""
        if config.head == "field":
            return {"0e", "1o"} | ({"2e"} if key == "head_irreps" else set())
        return self.readout_irreps(config)

    def readout_irreps(self, config) -> set:
        """The irreps the family's readout heads read from the backbone and the head irreps (none by default)."""
        return set()

    def architecture(self, config, options=None):
        """The hashable architecture of a model of ``config`` (and the task's ``options``, if it has any)."""
        return config

    def initial_stats(self) -> dict:
        """Training statistics of a model built without any (per-species shifts and scales of the outputs)."""
        return default_stats()

    def kind_header(self) -> dict:
        """The model file's ``model_kind`` entry: none for the default kind (``tensors``; files before kinds existed)."""
        return {} if self.model_kind == "tensors" else {"model_kind": self.model_kind}

    def options_header(self, arch) -> dict:
        """The model file's header entries of the task's own options (none by default)."""
        return {}

    def options_from_header(self, meta: dict):
        """The task's options read back from a model file's header (ConfigError when unreadable)."""
        return None

    def describe(self, model) -> str:
        """The inside of the model's repr."""
        heads = "+".join(model.config.targets)
        return f"{heads}, {model.n_parameters} parameters, cutoff={model.config.cutoff} A"

    def prediction_batches(self, model, structures, *, batch=None, progress=False, max_edges=None,
                           check_elements=None):
        """-> (the structures as the task reads them, their graphs, [(indices, padded network inputs)]): no labels."""
        raise NotImplementedError

    def check_fit(self, cfg) -> None:
        """Refuse a fit config (FitConfig) this family cannot train, with one line naming the key."""

    def training_data(self, cfg, *, dtype, progress: bool = False) -> TrainingData:
        """The data, graphs, batch stream and validation batches of a fit config (FitConfig)."""
        raise NotImplementedError

    def training_stats(self, stats: dict, data, cfg) -> dict:
        """The model's statistics from the training graphs' (``stats``) and the data (a task may add its own)."""
        return stats

    def network(self, arch) -> hk.Transformed:
        """The haiku network (init, apply) of ``arch``."""
        raise NotImplementedError

    def apply(self, arch, params, stats, inputs) -> dict:
        """Padded network inputs (never labels) -> the family's outputs (raw network output assembled into
        physical tensors)."""
        raise NotImplementedError

    def init_args(self, arch) -> tuple:
        """Example arguments of the network's ``init`` (their shapes fix the parameters' shapes)."""
        raise NotImplementedError

    def prediction_input(self, config, graph):
        """What the prediction function of a model of ``config`` reads for the padded GraphBatch ``graph``, with
        placeholder values where a model reads more than the graph (e.g. zero features): for shapes and memory."""
        return graph

    def features_read(self, config) -> tuple | None:
        """What fixes the precomputed per-atom features a model of ``config`` reads besides the graph (models that
        read the same can share one batch of them): None when it reads none."""
        return None

    def network_input(self, batch):
        """What this task's network reads of a padded batch that may carry more (an ensemble's batch holds the
        graph and, when a member reads foundation features, the features too): by default the batch itself."""
        return batch


def register(task: Task) -> Task:
    """Add ``task`` to :data:`TASKS` and its :meth:`Task.validate` to the config's checks (its module does this
    when imported)."""
    TASKS[task.name] = task
    MODEL_CHECKS[task.name] = task.validate
    return task


def task_named(name: str) -> Task:
    if name not in TASKS:
        raise ConfigError(f"unknown model task {name!r}; known: {', '.join(TASKS)}")
    return TASKS[name]


def task_of(arch) -> Task:
    """The task of a ModelConfig (its ``task`` field) or of an architecture tuple."""
    return task_named(model_config(arch).task)


def task_of_kind(kind: str) -> Task | None:
    """The task whose model files have ``model_kind == kind`` (None: no task's)."""
    return next((t for t in TASKS.values() if t.model_kind == kind), None)


def model_config(arch):
    """The ModelConfig of an architecture (itself, or the first item of a tuple)."""
    return arch[0] if isinstance(arch, tuple) else arch


def compiled_apply(arch):
    """``jax.jit`` of the task's apply for ``arch``: one per architecture, shared by all its models
    (:func:`tensorprop.compiled.shared_jit`), compiled once per padded shape."""
    task = task_of(arch)
    return shared_jit((task.name, arch), lambda: functools.partial(task.apply, arch))


#: parameter shapes per architecture known in this process (traced, or read from the user cache)
_PARAM_SHAPES: dict = {}


def param_shapes(arch):
    """Shapes of the parameters of the network ``arch`` describes (traced with ``jax.eval_shape``, not compiled
    or run; traced once per architecture and kept in the user cache,
    :func:`tensorprop.compiled.cached_per_architecture`)."""
    if arch not in _PARAM_SHAPES:
        task = task_of(arch)

        def traced():
            shaped = jax.eval_shape(task.network(arch).init, jax.random.PRNGKey(0), *task.init_args(arch))
            return jax.tree.map(lambda x: tuple(x.shape), shaped)

        _PARAM_SHAPES[arch] = cached_per_architecture("param_shapes", arch, traced)
    return _PARAM_SHAPES[arch]


def known_param_shapes(arch):
    """:func:`param_shapes` of ``arch`` if that costs no trace (known in this process or kept in the user cache),
    else None."""
    if arch not in _PARAM_SHAPES:
        shapes = read_per_architecture("param_shapes", arch)
        if shapes is None:
            return None
        _PARAM_SHAPES[arch] = shapes
    return _PARAM_SHAPES[arch]


@functools.lru_cache(maxsize=8)
def _compiled_init(arch):
    task = task_of(arch)
    return compile_once(task.network(arch).init, jax.random.PRNGKey(0), *task.init_args(arch))


def init_params(arch, seed: int = 0):
    """Random parameters of the network ``arch`` describes (its init compiled once per architecture,
    :func:`tensorprop.compiled.compile_once`)."""
    return _compiled_init(arch)(jax.random.PRNGKey(seed), *task_of(arch).init_args(arch))
