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
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from .errors import ConfigError

__all__ = ["FoundationConfig", "ModelConfig", "BatchConfig", "TrainConfig", "DataConfig", "ChargesConfig", "FitConfig", "config_from_dict",
           "config_to_dict", "load_yaml_config"]

T = TypeVar("T")

TARGETS = ("born_charges", "epsilon")
MOLECULAR_TARGETS = ("charges",)
FIELD_TARGETS = ("field",)


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
        checkpoint SHA256 and structure), only the heads train. ``"finetune"``: not available yet.
    layers : tuple of int
        Which interaction layers' features feed the heads (0-based, negative from the end;
        empty: all), concatenated.
    readout : str
        ``"square"`` (default): a per-atom tensor product of two linear projections of the
        features with themselves, channel by channel (1o x 1o, 2e x 2e, 3o x 3o give the 1e of Z*),
        no edges; ``"interaction"``: one message-passing layer of tensorprop's own backbone over the
        neighbour graph within ``model.cutoff``, the features as its initial node features.
    channels : int
        Multiplicity of each irrep of the two projections of the ``square`` readout.
    feature_irreps : str
        Irreps of the concatenated features (filled in by ``fit`` from the checkpoint; sets the
        parameter shapes of the heads).
    """

    name: str = "nequix-mp-1"
    sha256: str = ""
    mode: str = "frozen"
    layers: tuple[int, ...] = ()
    readout: str = "square"
    channels: int = 32
    feature_irreps: str = ""

    def __post_init__(self):
        if self.mode not in ("frozen", "finetune"):
            raise ConfigError(f"model.foundation.mode must be 'frozen' or 'finetune', got {self.mode!r}")
        if self.readout not in ("square", "interaction"):
            raise ConfigError(f"model.foundation.readout must be 'square' or 'interaction', got {self.readout!r}")
        if self.channels < 1:
            raise ConfigError(f"model.foundation.channels must be >= 1, got {self.channels}")
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

    def __post_init__(self):
        import e3nn_jax as e3nn

        if self.foundation is not None and (self.head != "equivariant" or self.backbone_per_target
                                            or not set(self.targets) <= set(TARGETS)):
            raise ConfigError("model.foundation needs model.head: equivariant, crystal targets "
                              "(born_charges, epsilon) and no model.backbone_per_target")

        if self.sum_rule not in ("mean", "weighted"):
            raise ConfigError(f"model.sum_rule must be 'mean' or 'weighted', got {self.sum_rule!r}")
        if self.sum_rule == "weighted" and self.head == "field":
            raise ConfigError("model.sum_rule: weighted does not apply to model.head: field (its Z* are "
                              "derivatives of one energy and obey the sum rule by translation invariance)")

        if self.backbone_per_target and self.head == "field":
            raise ConfigError("model.backbone_per_target does not apply to model.head: field (one energy "
                              "gives every tensor)")
        if self.species_self_connection < 0:
            raise ConfigError(f"model.species_self_connection must be >= 0, got {self.species_self_connection}")
        if self.cutoff <= 0:
            raise ConfigError(f"model.cutoff must be positive, got {self.cutoff}")
        if self.num_layers < 1:
            raise ConfigError(f"model.num_layers must be >= 1, got {self.num_layers}")
        if self.head not in ("equivariant", "cartesian", "field"):
            raise ConfigError(f"model.head must be 'equivariant', 'cartesian' or 'field', got {self.head!r}")
        unknown = set(self.targets) - set(TARGETS)
        if tuple(self.targets) == FIELD_TARGETS and self.head != "field":
            raise ConfigError("model.targets [field] (energies/forces/dipoles under fields) needs model.head: field")
        if tuple(self.targets) not in (MOLECULAR_TARGETS, FIELD_TARGETS) and (unknown or not self.targets):
            raise ConfigError(f"model.targets must be a non-empty subset of {TARGETS} or {list(MOLECULAR_TARGETS)}, "
                              f"got {self.targets}")
        for key in ("hidden_irreps", "head_irreps"):
            try:
                irreps = e3nn.Irreps(getattr(self, key))
            except Exception as exc:  # e3nn raises plain ValueError with its own words
                raise ConfigError(f"model.{key}: cannot parse irreps {getattr(self, key)!r}: {exc}") from None
            if "charges" in self.targets or self.head == "field":
                needed = {"0e", "1o"} | ({"2e"} if self.head == "field" and key == "head_irreps" else set())
            else:
                needed = {"0e", "1e", "2e"} if "born_charges" in self.targets else {"0e", "2e"}
            missing = needed - {str(ir) for _, ir in irreps}
            if missing:
                raise ConfigError(f"model.{key} = {irreps} lacks {sorted(missing)} needed by the heads {self.targets}")


@dataclasses.dataclass(frozen=True)
class BatchConfig:
    """Static-shape batching: budgets of real nodes, edges and structures per batch.

    A batch is padded to ``max_nodes``/``max_edges``/``max_graphs`` (+1 slot each for
    padding) when ``pad_mode="budget"`` (one compiled shape), or to the next power of
    two when ``pad_mode="pow2"`` (a few shapes, less padding).
    """

    max_nodes: int = 512
    max_edges: int = 16384
    max_graphs: int = 32
    pad_mode: str = "budget"

    def __post_init__(self):
        if self.pad_mode not in ("budget", "pow2"):
            raise ConfigError(f"batch.pad_mode must be 'budget' or 'pow2', got {self.pad_mode!r}")
        for key in ("max_nodes", "max_edges", "max_graphs"):
            if getattr(self, key) < 1:
                raise ConfigError(f"batch.{key} must be >= 1, got {getattr(self, key)}")


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
        choices = {"optimizer": ("adamw", "amsgrad"), "born_loss": ("huber", "mse", "mae"),
                   "epsilon_loss": ("log", "huber"), "nan_policy": ("skip", "rollback"), "dtype": ("float32", "float64")}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ConfigError(f"train.{key} must be one of {allowed}, got {getattr(self, key)!r}")
        if not 0.0 < self.rollback_lr_factor < 1.0 or self.max_rollbacks < 0:
            raise ConfigError("train.rollback_lr_factor must be in (0, 1) and train.max_rollbacks >= 0")
        if self.max_steps < 1 or self.eval_every < 1 or self.checkpoint_every < 1:
            raise ConfigError("train.max_steps, eval_every and checkpoint_every must be >= 1")
        if self.devices < 0:
            raise ConfigError(f"train.devices must be >= 0 (0: all local devices), got {self.devices}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"train.ema_decay must be in [0, 1), got {self.ema_decay}")
        if not 0.0 <= self.position_noise < 0.5:
            raise ConfigError(f"train.position_noise must be in [0, 0.5) Angstrom, got {self.position_noise}")


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
        if self.split not in ("auto", "random", "even-odd"):
            raise ConfigError(f"data.split must be 'auto', 'random' or 'even-odd', got {self.split!r}")
        from .data.validate import LABEL_POLICIES

        if self.label_check not in LABEL_POLICIES:
            raise ConfigError(f"data.label_check must be one of {LABEL_POLICIES}, got {self.label_check!r}")
        if not (self.asr_tolerance >= 0 and self.symmetry_tolerance >= 0):
            raise ConfigError("data.asr_tolerance and data.symmetry_tolerance must be >= 0")


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
        if self.head not in ("equivariant", "cartesian"):
            raise ConfigError(f"charges.head must be 'equivariant' or 'cartesian', got {self.head!r}")
        if self.n_dcm < 1 or self.features < 1 or self.layers < 1:
            raise ConfigError("charges.n_dcm, features and layers must be >= 1")
        if self.max_displacement <= 0:
            raise ConfigError(f"charges.max_displacement must be positive, got {self.max_displacement}")


@dataclasses.dataclass(frozen=True)
class FitConfig:
    """Everything ``tensorprop fit`` needs; the YAML file has these sections (``charges`` is
    read only by charge models)."""

    model: ModelConfig = ModelConfig()
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
        raise ConfigError(f"unknown key(s) {', '.join(prefix + k for k in unknown)}; "
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


def load_yaml_config(path: str | Path, cls: type[T]) -> T:
    """Read a YAML file into ``cls``; errors name the file and the key."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    try:
        return config_from_dict(cls, data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
