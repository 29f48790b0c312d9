"""Configuration: one frozen dataclass per concern, mirrored one-to-one by YAML.

The loader is strict: an unknown key or a value of the wrong type is a
:class:`~tensorprop.errors.ConfigError` that names the key and the file.

Examples
--------
>>> cfg = config_from_dict(ModelConfig, {"cutoff": 4.0, "num_layers": 2})
>>> cfg.cutoff, cfg.num_layers
(4.0, 2)
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from .errors import ConfigError
from .irreps_text import irreps_terms

__all__ = ["FoundationConfig", "ModelConfig", "BatchConfig", "TrainConfig", "DataConfig", "ChargesConfig", "FitConfig",
           "config_from_dict", "config_to_dict", "load_yaml_config", "read_yaml_mapping", "ALLOWED", "allowed_text",
           "field_docs", "MODEL_CHECKS", "check_irreps"]

T = TypeVar("T")

TARGETS = ("born_charges", "epsilon")
MOLECULAR_TARGETS = ("charges",)
FIELD_TARGETS = ("field",)
#: the model families (``model.task``), see :mod:`tensorprop.tasks`: what each one's ``targets`` default to
#: and allow, and which ``model.head`` values it takes
TASK_TARGETS = {"tensors": (TARGETS, TARGETS), "foundation": (TARGETS, TARGETS),
                "field": (FIELD_TARGETS, (FIELD_TARGETS,)), "charges": (MOLECULAR_TARGETS, (MOLECULAR_TARGETS,))}
TASK_HEADS = {"tensors": ("equivariant", "cartesian", "field"), "foundation": ("equivariant",), "field": ("field",),
              "charges": ("equivariant",)}


def task_from_legacy(targets: tuple, head: str, foundation) -> str:
    """The ``model.task`` of a config written before it existed, from its ``targets``/``head``/``foundation``."""
    if foundation is not None:
        return "foundation"
    if tuple(targets) in (MOLECULAR_TARGETS, FIELD_TARGETS):
        return tuple(targets)[0]
    return "tensors"

#: each task's checks of a ModelConfig of its family (``model.task`` -> ``check(config)``, raising ConfigError), filled
#: by :func:`tensorprop.tasks.register` (``Task.validate``): the family-dependent rules live with the tasks, and
#: every ModelConfig runs its task's after the generic checks of :data:`ALLOWED`
MODEL_CHECKS: dict[str, typing.Callable[["ModelConfig"], None]] = {}


def check_irreps(config: "ModelConfig", needed: typing.Callable[[str], set]) -> None:
    """ConfigError naming the key when ``model.hidden_irreps`` or ``model.head_irreps`` does not parse, or lacks an
    irrep of ``needed(key)`` (a set of irreps such as ``{"0e", "2e"}``), the keys checked in that order."""
    for key in ("hidden_irreps", "head_irreps"):
        text = getattr(config, key)
        try:
            present = {ir for mul, ir in irreps_terms(text) if mul > 0}
        except Exception as exc:  # e3nn raises plain ValueError with its own words
            raise ConfigError(f"model.{key}: cannot parse irreps {text!r}: {exc}") from None
        missing = needed(key) - present
        if missing:
            raise ConfigError(f"model.{key} = {text} lacks {sorted(missing)} needed by the heads {config.targets}")


#: The allowed values of the config fields, per YAML section: an interval ``"[low, high)"`` (``inf`` for no
#: bound; a list field has each item checked) or a tuple of choices. Every config checks its fields against
#: this table when it is built (one line naming the key), and ``tensorprop fit --help`` shows it.
ALLOWED: dict[str, dict[str, str | tuple]] = {
    "model": {"cutoff": "(0, inf)", "sh_lmax": "[0, inf)", "num_layers": "[1, inf)", "num_radial_basis": "[1, inf)",
              "envelope_exponent": "[1, inf)", "radial_hidden": "[1, inf)", "avg_num_neighbors": "(0, inf)",
              "head": ("equivariant", "cartesian", "field"), "species_self_connection": "[0, inf)",
              "task": ("tensors", "field", "charges", "foundation"),
              "sum_rule": ("mean", "weighted")},
    "model.foundation": {"mode": ("frozen", "finetune"), "readout": ("square", "interaction", "backbone"),
                         "channels": "[1, inf)", "backbone_lr_scale": "(0, inf)"},
    "batch": {"max_nodes": "[1, inf)", "max_edges": "[1, inf)", "max_graphs": "[1, inf)",
              "pad_mode": ("budget", "pow2")},
    "train": {"max_steps": "[1, inf)", "optimizer": ("adamw", "amsgrad"), "learning_rate": "(0, inf)",
              "warmup_steps": "[0, inf)", "final_lr_ratio": "[0, 1]", "weight_decay": "[0, inf)",
              "grad_clip": "[0, inf)", "ema_decay": "[0, 1)", "born_weight": "[0, inf)", "epsilon_weight": "[0, inf)",
              "born_loss": ("huber", "mse", "mae"), "epsilon_loss": ("log", "huber"), "huber_delta": "(0, inf)",
              "esp_weight": "[0, inf)", "dipole_weight": "[0, inf)", "energy_weight": "[0, inf)",
              "forces_weight": "[0, inf)", "position_noise": "[0, 0.5)", "devices": "[0, inf)",
              "eval_every": "[1, inf)", "checkpoint_every": "[1, inf)", "patience": "[0, inf)",
              "nan_policy": ("skip", "rollback"), "rollback_lr_factor": "(0, 1)", "max_rollbacks": "[0, inf)",
              "seed": "[0, inf)", "dtype": ("float32", "float64")},
    "data": {"max_train": "[0, inf)", "split": ("auto", "random", "even-odd"),
             "label_check": ("warn", "error", "filter", "symmetrize"), "asr_tolerance": "[0, inf)",
             "symmetry_tolerance": "[0, inf)"},
    "charges": {"head": ("equivariant", "cartesian"), "n_dcm": "[1, inf)", "max_displacement": "(0, inf)",
                "features": "[1, inf)", "layers": "[1, inf)"},
}


def _interval(text: str) -> tuple[float, float, bool, bool]:
    """``"[0, 1)"`` -> (0.0, 1.0, low included, high excluded)."""
    low, high = (float(x) for x in text[1:-1].split(","))
    return low, high, text[0] == "[", text[-1] == "]"


def allowed_text(section: str, key: str) -> str | None:
    """The allowed values of ``section.key`` in words (``"> 0"``, ``"in [0, 1]"``, ``"one of a, b"``), or None."""
    rule = ALLOWED.get(section, {}).get(key)
    if rule is None:
        return None
    if isinstance(rule, tuple):
        return "one of " + ", ".join(rule)
    low, high, low_in, high_in = _interval(rule)
    if math.isinf(high):
        return f"{'>=' if low_in else '>'} {low:g}"
    return f"in {rule}"


def _check_allowed(cfg, section: str) -> None:
    """Raise :class:`ConfigError` naming ``section.key`` for the first field of ``cfg`` outside ``ALLOWED``."""
    for key, rule in ALLOWED[section].items():
        value = getattr(cfg, key)
        if isinstance(rule, tuple):
            if value not in rule:
                raise ConfigError(f"{section}.{key} must be one of {', '.join(map(repr, rule))}, got {value!r}")
            continue
        low, high, low_in, high_in = _interval(rule)
        for v in value if isinstance(value, (tuple, list)) else (value,):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ConfigError(f"{section}.{key} must be a number {allowed_text(section, key)}, got {value!r}")
            inside = (low <= v if low_in else low < v) and (v <= high if high_in else v < high)
            if not inside:  # NaN lands here too
                raise ConfigError(f"{section}.{key} must be {allowed_text(section, key)}, got {value!r}")


def field_docs(cls) -> dict[str, str]:
    """First sentence of each field's entry in the numpy-style ``Attributes`` section of ``cls``'s docstring."""
    docs: dict[str, str] = {}
    lines = (cls.__doc__ or "").splitlines()
    names, text = [], []

    def flush():
        if names and text:
            first = " ".join(text).split(". ")[0].rstrip(".")
            docs.update({n: first for n in names})

    for line in lines:
        m = re.match(r"^    ([a-z_][a-z0-9_, ]*) : ", line)
        if m:
            flush()
            names, text = [n.strip() for n in m.group(1).split(",")], []
        elif line.startswith("        ") and names:
            text.append(line.strip())
        elif line.strip() and not line.startswith("        "):
            flush()
            names, text = [], []
    flush()
    return docs


@dataclasses.dataclass(frozen=True)
class FoundationConfig:
    """Z*/eps_inf heads on the per-atom features of a pretrained universal potential (``model.foundation``).

    Attributes
    ----------
    name : str
        The foundation checkpoint: a name (``nequix-mp-1``, found as data sets are: next to
        ``$TENSORPROP_DATA_DIR`` in ``models/``, or the user cache) or a path to a ``.nqx`` file.
    sha256 : str
        Hex SHA256 of the checkpoint; empty: filled in by ``fit`` from the file it found. A model
        file names the checkpoint by name + SHA256 and loading refuses any other file.
    mode : str
        ``"frozen"``: the features are computed once per structure and cached on disk (keyed by
        checkpoint SHA256 and structure), only the heads train. ``"finetune"``: the heads and the last
        ``finetune_layers`` interaction layers train; the layers below stay frozen (their features
        cached as in frozen mode), the trained ones run on every step over the model's neighbour
        graph, which then needs ``model.cutoff`` >= the checkpoint's cutoff (6 A).
    finetune_layers : int or str
        How many interaction layers, counted from the last, train in ``finetune`` mode (default 1,
        the last one); ``"all"``: every layer.
    backbone_lr_scale : float
        The fine-tuned layers' learning rate as a multiple of ``train.learning_rate`` (same schedule).
    layers : tuple of int
        Which interaction layers' features feed the heads (0-based, negative from the end;
        empty: all), concatenated.
    readout : str
        ``"square"`` (default): a per-atom tensor product of two linear projections of the
        features with themselves, channel by channel (1o x 1o, 2e x 2e, 3o x 3o give the 1e of Z*),
        no edges; ``"interaction"``: one message-passing layer of tensorprop's own backbone over the
        neighbour graph within ``model.cutoff``, the features as its initial node features;
        ``"backbone"``: tensorprop's own backbone (``model.hidden_irreps``, ``model.num_layers``, ...) with a
        linear projection of the features as its initial node features in place of the species embedding.
    channels : int
        Multiplicity of each irrep of the two projections of the ``square`` readout.
    feature_irreps : str
        Irreps of the per-atom features a batch carries (filled in by ``fit`` from the checkpoint):
        in frozen mode those of ``layers`` concatenated, the heads' input; in finetune mode those
        of the frozen layers below the trained ones (empty when all train).
    """

    name: str = "nequix-mp-1"
    sha256: str = ""
    mode: str = "frozen"
    layers: tuple[int, ...] = ()
    readout: str = "square"
    channels: int = 32
    finetune_layers: int | str = 1
    backbone_lr_scale: float = 0.1
    feature_irreps: str = ""

    def __post_init__(self):
        _check_allowed(self, "model.foundation")
        n = self.finetune_layers
        if n != "all" and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ConfigError(f"model.foundation.finetune_layers must be a number of layers >= 1 or 'all', got {n!r}")
        if self.sha256 and (len(self.sha256) != 64 or set(self.sha256.lower()) - set("0123456789abcdef")):
            raise ConfigError(f"model.foundation.sha256 must be 64 hex digits, got {self.sha256!r}")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The equivariant network (NequIP-style backbone + tensor heads).

    Attributes
    ----------
    cutoff : float
        Radial cutoff of the neighbour graph, Angstrom.
    hidden_irreps : str
        Latent node features of every interaction layer (both parities, l up to 2 by default).
    sh_lmax : int
        Highest degree of the edge spherical harmonics.
    num_layers : int
        Number of interaction (message-passing) layers.
    num_radial_basis : int
        Number of Bessel functions of the edge length.
    envelope_exponent : int
        Exponent p of the polynomial cutoff envelope (smooth to order p at the cutoff).
    radial_hidden : tuple of int
        Hidden widths of the MLP that maps the radial basis to tensor-product weights.
    head_irreps : str
        Hidden irreps of the gated readout of each tensor head.
    avg_num_neighbors : float
        Normalisation of the summed messages (set from training data by ``fit``).
    head : str
        ``"equivariant"`` (default: gated irreps readouts) or ``"cartesian"``: an MLP on the
        invariant (0e) features and the species that emits the 9 Z* / 6 eps components in the
        lab frame (a deliberately non-equivariant baseline; crystal tensors only); ``"field"``:
        a field-coupled energy E(R, F) whose derivatives are the tensors (Z* = -d2E/dF dR exact,
        polarisability -> eps_inf; see ``nn/field.py``). Field models need the ``huber``
        eps loss (their eps is not of the form I + expm(S)).
    species_self_connection : int
        0 (default): the self-connection of every interaction layer is one linear map shared by
        all elements. k > 0: it is species-dependent, as in NequIP, with weights that are a
        learned k-dimensional mixture per element (a low-rank form of NequIP's one-hot
        self-interaction tensor product: k weight sets instead of one per element).
    backbone_per_target : bool
        False (default): one backbone feeds every head. True: each crystal target (Z*, eps_inf)
        gets a backbone of its own, as two independent networks trained on the same batches
        in one run and saved in one model file (twice the cost; on phonon-becs the eps_inf loss
        otherwise slows the Z* fit down, see BENCHMARKS.md).
    sum_rule : str
        How the acoustic sum rule is imposed on Z*: ``"mean"`` (default) subtracts each
        structure's mean, every atom taking an equal share of the correction; ``"weighted"``
        lets the Z* head emit one more invariant scalar per atom, w_i = softplus(.) + 1e-3, and
        atom i takes the share w_i / sum_j w_j (the network decides which atoms absorb the
        violation; exact sum rule and equivariance either way). Crystal heads only.
    foundation : FoundationConfig or None
        None (default): tensorprop's own backbone. Set: the heads read the per-atom features of a
        pretrained universal potential instead (see :class:`FoundationConfig`); equivariant
        crystal heads only.
    targets : tuple of str
        Heads to build: any of ``"born_charges"`` and ``"epsilon"`` (crystal tensors), or
        ``"charges"`` alone (distributed charges of molecules, see :class:`ChargesConfig`), or
        ``"field"`` alone with ``head: field`` (energies, forces, dipoles under fields and Z* where
        labelled).
    task : str
        The model family (:mod:`tensorprop.tasks`): ``"tensors"`` (crystal Z*/eps_inf), ``"foundation"``
        (the same on a foundation model's features), ``"field"`` (a field-coupled energy trained on
        energies, forces and dipoles in fields), ``"charges"`` (distributed charges of molecules).
        Empty (configs written before it existed): told from ``targets``, ``head`` and ``foundation``;
        given alone, ``targets`` and ``head`` default to the family's; ``tensors`` (the default family)
        gives way to ``targets``/``head``/``foundation`` that name another.
    """

    cutoff: float = 5.0
    hidden_irreps: str = "32x0e + 32x0o + 16x1o + 16x1e + 8x2e + 8x2o"
    sh_lmax: int = 2
    num_layers: int = 3
    num_radial_basis: int = 8
    envelope_exponent: int = 6
    radial_hidden: tuple[int, ...] = (64, 64)
    head_irreps: str = "16x0e + 8x1e + 8x2e"
    avg_num_neighbors: float = 20.0
    targets: tuple[str, ...] = TARGETS
    head: str = "equivariant"
    species_self_connection: int = 0
    backbone_per_target: bool = False
    sum_rule: str = "mean"
    foundation: FoundationConfig | None = None
    task: str = ""

    def __post_init__(self):
        self._migrate_task()
        _check_allowed(self, "model")
        if self.task not in MODEL_CHECKS:
            raise ConfigError(f"model.task {self.task!r}: no task of that name is registered (import tensorprop.tasks)")
        MODEL_CHECKS[self.task](self)  # the family's own checks (tensorprop.tasks: Task.validate)

    def _migrate_task(self) -> None:
        """Fill in ``task`` (from targets/head/foundation when empty), or the family's default targets and
        head when only ``task`` is given; a task that contradicts them is a ConfigError."""
        if not self.task:
            object.__setattr__(self, "task", task_from_legacy(self.targets, self.head, self.foundation))
            return
        if self.task not in TASK_TARGETS:
            return  # _check_allowed names the allowed values
        default, allowed = TASK_TARGETS[self.task]
        if tuple(self.targets) == TARGETS and default != TARGETS:
            object.__setattr__(self, "targets", default)
        if self.head == "equivariant" and self.head not in TASK_HEADS[self.task]:
            object.__setattr__(self, "head", TASK_HEADS[self.task][0])
        legacy = task_from_legacy(self.targets, self.head, self.foundation)
        if self.task == "tensors" and legacy != "tensors":
            # the default family yields to targets/head/foundation that name another (a config copied with
            # dataclasses.replace or edited as a dict keeps the task it was given)
            object.__setattr__(self, "task", legacy)
        elif legacy != self.task:
            raise ConfigError(f"model.task {self.task!r} contradicts model.targets {list(self.targets)}, model.head "
                              f"{self.head!r} and model.foundation (which make it {legacy!r})")


@dataclasses.dataclass(frozen=True)
class BatchConfig:
    """Static-shape batching: budgets of real nodes, edges and structures per batch.

    A batch is padded to ``max_nodes``/``max_edges``/``max_graphs`` (+1 slot each for
    padding) when ``pad_mode="budget"`` (one compiled shape), or to the next power of
    two when ``pad_mode="pow2"`` (a few shapes, less padding).

    Attributes
    ----------
    max_nodes : int
        Most atoms in one batch (a larger structure is an error naming it).
    max_edges : int
        Most directed edges within the cutoff in one batch.
    max_graphs : int
        Most structures in one batch.
    pad_mode : str
        ``"budget"``: pad every batch to the budgets (one compiled shape); ``"pow2"``: to the next power of two.
    """

    max_nodes: int = 512
    max_edges: int = 16384
    max_graphs: int = 32
    pad_mode: str = "budget"

    def __post_init__(self):
        _check_allowed(self, "batch")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimisation: optax optimiser, schedule, loss, EMA, evaluation and checkpoints.

    Attributes
    ----------
    max_steps : int
        Number of optimiser steps.
    optimizer : str
        ``"adamw"`` or ``"amsgrad"``.
    learning_rate : float
        Peak learning rate, reached after ``warmup_steps`` of linear warm-up, then cosine
        decay to ``learning_rate * final_lr_ratio`` at ``max_steps``.
    warmup_steps : int
        Steps of linear warm-up from 0 to ``learning_rate``.
    final_lr_ratio : float
        Learning rate at ``max_steps`` as a fraction of ``learning_rate``.
    weight_decay : float
        Decoupled weight decay (AdamW).
    grad_clip : float
        Global gradient-norm clipping (0 disables).
    ema_decay : float
        Exponential moving average of the weights; the averaged weights are validated and
        saved (0 disables).
    born_weight, epsilon_weight : float
        Loss weights of the two targets.
    born_loss : str
        ``"huber"`` (default, delta ``huber_delta`` e), ``"mse"`` or ``"mae"`` over the 9
        components of every atom.
    huber_delta : float
        Width of the Huber losses (e for Z*), where they turn from quadratic to linear.
    epsilon_loss : str
        ``"log"``: squared error of logm(eps - I), a log-eigenvalue loss that treats
        eps_inf = 3 vs 4 like 30 vs 40, so the long tail (eps > 50) does not dominate;
        ``"huber"``: Huber on the 9 components of eps.
    esp_weight, dipole_weight : float
        Loss weights of the charge heads: mean squared ESP error on the grid points
        (in kcal/mol/e) and mean squared length of the dipole error (Debye). The total
        charge needs no loss term: it is exact by construction.
    energy_weight, forces_weight : float
        Field models trained on ``targets: [field]``: weights of the squared energy error per atom
        (eV/atom) and force error (eV/A); ``dipole_weight`` (Debye) and ``born_weight`` (e) weigh the
        other two terms.
    augment_rotations : bool
        Rotate every training structure with its labels (crystals: cell, Z*, eps; molecules:
        ESP points, dipole) by a fresh random rotation each step; deterministic in (seed, step).
        Pointless for equivariant heads, essential for Cartesian ones.
    position_noise : float
        Crystals: standard deviation (Angstrom) of Gaussian noise added to every atom's position
        at every step, labels kept (a regulariser: Z* and eps_inf barely change under
        displacements of a few hundredths of an Angstrom); deterministic in (seed, step); 0 disables.
    devices : int
        Data-parallel training over this many local devices (0: all); each step then takes one
        padded batch per device, sharded with ``jax.sharding`` (see ``train/parallel.py``).
    distributed : bool
        Call ``jax.distributed.initialize()`` first (multi-host data parallelism).
    eval_every, checkpoint_every : int
        Steps between validations and between checkpoints.
    patience : int
        Early stopping after this many validations without improvement (0 disables).
    nan_policy : str
        ``"skip"``: a step with a non-finite loss or gradient is not applied, is counted and is
        reported. ``"rollback"``: the same, and the run then goes back to its last checkpoint with
        the learning rate multiplied by ``rollback_lr_factor`` (data order unchanged); after
        ``max_rollbacks`` rollbacks it stops (``stopped_by: "non-finite loss"``), the last good
        checkpoint intact.
    rollback_lr_factor : float
        Learning-rate factor applied at each rollback (0 < f < 1).
    max_rollbacks : int
        Rollbacks allowed in one run before it stops.
    seed : int
        Seed of the initial weights and of the data order.
    dtype : str
        ``"float32"`` (default) or ``"float64"`` for parameters and batches (float64 turns
        on jax's x64 mode for the process).
    """

    max_steps: int = 20000
    optimizer: str = "adamw"
    learning_rate: float = 5e-3
    warmup_steps: int = 500
    final_lr_ratio: float = 0.01
    weight_decay: float = 0.0
    grad_clip: float = 10.0
    ema_decay: float = 0.99
    born_weight: float = 1.0
    epsilon_weight: float = 1.0
    born_loss: str = "huber"
    epsilon_loss: str = "log"
    huber_delta: float = 0.5
    esp_weight: float = 1.0
    dipole_weight: float = 1.0
    energy_weight: float = 1.0
    forces_weight: float = 1.0
    augment_rotations: bool = False
    position_noise: float = 0.0
    devices: int = 1
    distributed: bool = False
    eval_every: int = 500
    checkpoint_every: int = 500
    patience: int = 0
    nan_policy: str = "skip"
    rollback_lr_factor: float = 0.5
    max_rollbacks: int = 5
    seed: int = 0
    dtype: str = "float32"

    def __post_init__(self):
        _check_allowed(self, "train")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Which data to train on.

    Attributes
    ----------
    dataset : str
        A registered name (``phonon-becs``) or a path to an ext-xyz file.
    max_train : int
        Use at most this many training structures (0: all), a seeded subset of the
        committed train split (learning curves).
    exclude_formulas : tuple of str
        Reduced formulas (e.g. ``NaCl``) removed from train and valid: leave-material-out.
    split : str
        ``"auto"``: the data set's committed split if it has one, else a seeded 80/10/10
        split; ``"random"``: always the seeded 80/10/10 split; ``"even-odd"``: train on even
        indices, validate on indices 1 mod 4, test on 3 mod 4 (the water-dipoles experiment).
    label_check : str
        What ``fit`` does with crystals whose labels break a rule (Z* acoustic sum rule beyond
        ``asr_tolerance``, eps_inf asymmetric beyond ``symmetry_tolerance``): ``"warn"`` (default:
        train on them, print one warning with the count and the worst structures), ``"error"``
        (stop at the worst one), ``"filter"`` (drop them from train and valid; the test split
        stays whole), ``"symmetrize"`` (subtract the mean Z* over atoms, symmetrise eps_inf).
        What was found and done is recorded in ``RUN/split.json`` under ``label_check``.
    asr_tolerance : float
        Largest accepted ``max_ab |sum_atoms Z*_ab|``, e.
    symmetry_tolerance : float
        Largest accepted ``|eps - eps.T|`` element.
    extra_train : tuple of str
        More data sets (registered names or paths; e.g. ``petousis-dielectric``) whose structures
        join the training part only, with whatever labels they carry (a Z*-less structure trains
        eps_inf alone). Structures whose reduced formula is in ``exclude_formulas`` or occurs in the
        valid or test part of ``dataset`` are left out, so no composition of the held-out parts
        leaks into training; the counts are recorded in ``RUN/split.json`` (``extra_train``).
    """

    dataset: str = "phonon-becs"
    max_train: int = 0
    exclude_formulas: tuple[str, ...] = ()
    split: str = "auto"
    label_check: str = "warn"
    asr_tolerance: float = 0.1
    symmetry_tolerance: float = 1e-3
    extra_train: tuple[str, ...] = ()

    def __post_init__(self):
        _check_allowed(self, "data")


@dataclasses.dataclass(frozen=True)
class ChargesConfig:
    """Distributed-charge head of molecules (``model.targets: [charges]``).

    Attributes
    ----------
    head : str
        ``"equivariant"`` (DCMNet-style: charges from 0e, displacements from 1o features, the
        sites rotate with the molecule) or ``"cartesian"`` (an MLP on invariant features and
        species emitting lab-frame displacements: deliberately not equivariant).
    n_dcm : int
        Charges per atom.
    max_displacement : float
        Largest distance of a charge from its atom, Angstrom (``tanh`` bound).
    features, layers : int
        Width and depth of the Cartesian head's MLP.
    """

    head: str = "equivariant"
    n_dcm: int = 3
    max_displacement: float = 1.0
    features: int = 128
    layers: int = 3

    def __post_init__(self):
        _check_allowed(self, "charges")


@dataclasses.dataclass(frozen=True)
class FitConfig:
    """Everything ``tensorprop fit`` needs; the YAML file has these sections (``charges`` is
    read only by charge models)."""

    # the model section is made per instance: its checks are its task's (registered when tensorprop.tasks is
    # imported, after this module)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    batch: BatchConfig = BatchConfig()
    train: TrainConfig = TrainConfig()
    data: DataConfig = DataConfig()
    charges: ChargesConfig = ChargesConfig()


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Check ``value`` against a type hint; convert lists to tuples and ints to floats."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(hint):
            return None  # before a dataclass option, which would read None as "all defaults"
        errors = []
        for option in typing.get_args(hint):
            if option is type(None):
                if value is None:
                    return None
                continue
            try:
                return _coerce(value, option, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{where}: None is not allowed")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__} {value!r}")
        args = typing.get_args(hint)
        item = args[0] if args else Any
        return tuple(_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    if dataclasses.is_dataclass(hint):
        return config_from_dict(hint, value, where=where)
    if hint is Any:
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float, str, bool) and (not isinstance(value, hint) or (hint is int and isinstance(value, bool))):
        raise ConfigError(f"{where}: expected {hint.__name__}, got {type(value).__name__} {value!r}")
    return value


def config_from_dict(cls: type[T], data: dict | None, *, where: str = "") -> T:
    """Build the dataclass ``cls`` from a plain mapping, strictly.

    Raises :class:`ConfigError` naming the key for unknown keys and wrong types.
    """
    data = {} if data is None else data
    prefix = f"{where}." if where else ""
    if not isinstance(data, dict):
        raise ConfigError(f"{where or cls.__name__}: expected a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        guesses = [g for k in unknown for g in difflib.get_close_matches(str(k), fields, n=1)]
        hint = f" (did you mean {', '.join(prefix + g for g in guesses)}?)" if guesses else ""
        raise ConfigError(f"unknown key(s) {', '.join(prefix + str(k) for k in unknown)}{hint}; "
                          f"allowed: {', '.join(sorted(fields))}")
    hints = typing.get_type_hints(cls)
    kwargs = {k: _coerce(v, hints[k], prefix + k) for k, v in data.items()}
    return cls(**kwargs)


def config_to_dict(cfg) -> dict:
    """A dataclass config as plain YAML-able data (tuples become lists)."""

    def plain(v):
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return v

    return plain(cfg)


def read_yaml_mapping(path: str | Path) -> dict:
    """The mapping a YAML config file holds (empty for an empty file); errors name the file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a config file") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys, got {type(data).__name__}")
    return data or {}


def load_yaml_config(path: str | Path, cls: type[T]) -> T:
    """Read a YAML file into ``cls``; errors name the file and the key."""
    data = read_yaml_mapping(path)
    try:
        return config_from_dict(cls, data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
