"""Small, reproducible studies that the notebooks run: train a charge head, then measure it.

Notebooks only loop over settings and draw; the training and the figures of merit live here
so that they are tested and reusable.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from .config import (
    BatchConfig,
    ChargesConfig,
    DataConfig,
    FitConfig,
    ModelConfig,
    TrainConfig,
    config_to_dict,
    load_yaml_config,
)
from .data.molecules import write_esp_dataset
from .data.readers import read_extxyz
from .data.writers import write_extxyz
from .loading import load_model
from .model_file import read_npz_with_header
from .qm.esp import generate_esp_dataset
from .qm.field import generate_field_dataset
from .tasks.tensors import HEAD_FIT_DEFAULTS
from .testing import random_rotation, rotate
from .train.evaluate import charge_metrics, dipole_rotation_error, field_born_report, rotated_copies, tensor_metrics
from .train.loop import fit, prepare_training, read_run_config
from .train.profile import measure_train_step

__all__ = ["charge_fit_config", "train_run", "charge_head_report", "step_cost", "esp_dataset",
           "tensor_fit_config", "tensor_head_report", "field_dataset", "field_fit_config", "field_born_report"]


def charge_fit_config(dataset: str, *, head: str = "equivariant", n_dcm: int = 2, steps: int = 300,
                      augment_rotations: bool = False, max_train: int = 0, split: str = "random", seed: int = 0,
                      hidden_irreps: str = "32x0e + 16x1o + 8x1e + 8x2e", head_irreps: str = "16x0e + 8x1o",
                      num_layers: int = 2, learning_rate: float = 3e-3, features: int = 64, layers: int = 2,
                      esp_weight: float = 1.0, dipole_weight: float = 1.0) -> FitConfig:
    """A FitConfig for a charge head on a molecular data set (both heads share the backbone settings)."""
    return FitConfig(
        model=ModelConfig(cutoff=4.0, hidden_irreps=hidden_irreps, head_irreps=head_irreps, num_layers=num_layers,
                          radial_hidden=(32,), targets=("charges",)),
        batch=BatchConfig(max_nodes=96, max_edges=1024, max_graphs=16),
        train=TrainConfig(max_steps=steps, learning_rate=learning_rate, warmup_steps=min(50, steps // 5),
                          eval_every=max(steps // 4, 1), checkpoint_every=steps, seed=seed, huber_delta=0.5,
                          esp_weight=esp_weight, dipole_weight=dipole_weight, augment_rotations=augment_rotations),
        data=DataConfig(dataset=str(dataset), max_train=max_train, split=split),
        charges=ChargesConfig(head=head, n_dcm=n_dcm, features=features, layers=layers),
    )


def train_run(cfg: FitConfig, out_dir: str | Path, *, progress: bool = False):
    """Train (or reuse a finished run in ``out_dir`` with the same config) -> (model, summary dict)."""

    def comparable(c: FitConfig) -> dict:  # a data file named by a relative or an absolute path is one file
        d = config_to_dict(c)
        if Path(d["data"]["dataset"]).is_file():
            d["data"]["dataset"] = str(Path(d["data"]["dataset"]).resolve())
        return d

    out = Path(out_dir)
    if (out / "summary.json").is_file():
        done = read_run_config(out)
        if comparable(done) == comparable(dataclasses.replace(cfg, model=done.model)):
            return load_model(out), json.loads((out / "summary.json").read_text())
    summary = fit(cfg, out, progress=progress, log=lambda *_: None)
    return load_model(out), summary


def charge_head_report(model, molecules, *, n_rotation_molecules: int = 8, n_rotations: int = 16,
                       seed: int = 0) -> dict:
    """Figures of merit of a charge model on held-out molecules.

    ``as_given``/``rotated``: :func:`~tensorprop.train.evaluate.charge_metrics` on the molecules
    and on randomly rotated copies; ``rotation_error``: |R^T d(Rx) - d(x)| in Debye over random
    rotations of a few molecules (max and median); ``n_parameters``; ``predict_ms_per_molecule``.
    """

    molecules = list(molecules)
    model.predict_many(molecules)  # compile outside the timing
    t0 = time.perf_counter()
    pred = model.predict_many(molecules)
    elapsed = time.perf_counter() - t0
    rotated, _ = rotated_copies(molecules, seed)
    errs = np.concatenate([dipole_rotation_error(model, m, n_rotations, seed + i)
                           for i, m in enumerate(molecules[:n_rotation_molecules])])
    return {"as_given": charge_metrics(molecules, pred), "rotated": charge_metrics(rotated, model.predict_many(rotated)),
            "rotation_error": {"max": float(errs.max()), "median": float(np.median(errs))},
            "n_parameters": model.n_parameters, "predict_ms_per_molecule": 1e3 * elapsed / max(len(molecules), 1)}


def step_cost(cfg: FitConfig, steps: int = 20) -> dict:
    """Step time, throughput and XLA memory of one training step of ``cfg`` (see train/profile.py)."""

    return measure_train_step(prepare_training(cfg), steps)


def esp_dataset(path: str | Path, molecules=("water", "methanol"), n_conformers: int = 8, *, basis: str = "def2-svp",
                method: str = "HF", seed: int = 0, progress: bool = False) -> Path:
    """An ESP set at ``path``, generated with PySCF unless a file with the same settings is already there."""

    path = Path(path)
    meta = {"method": method, "basis": basis, "molecules": list(molecules), "n_conformers": n_conformers, "seed": seed}
    if path.is_file():
        if {k: v for k, v in read_npz_with_header(path, "ESP set")[1].items() if k in meta} == meta:
            return path
    path.parent.mkdir(parents=True, exist_ok=True)
    mols = generate_esp_dataset(list(molecules), n_conformers, method=method, basis=basis, seed=seed, progress=progress)
    return write_esp_dataset(path, mols, meta)


def tensor_fit_config(config: str | Path | None = None, *, head: str = "equivariant", steps: int = 1500,
                      augment_rotations: bool = False, max_train: int = 0, seed: int = 0, **model) -> FitConfig:
    """The bundled model's config (or ``config``, a YAML file) with another head, budget or training-set size."""

    path = Path(config) if config else Path(__file__).resolve().parents[1] / "configs" / "becs-eps.yaml"
    cfg = load_yaml_config(path, FitConfig) if path.is_file() else FitConfig()
    tc = cfg.train
    model_defaults, train_defaults = HEAD_FIT_DEFAULTS.get(head, ({}, {}))
    return dataclasses.replace(
        cfg, model=dataclasses.replace(cfg.model, head=head, **{**model_defaults, **model}),
        train=dataclasses.replace(tc, max_steps=steps, warmup_steps=min(tc.warmup_steps, steps // 5),
                                  eval_every=max(min(tc.eval_every, steps // 4), 1), checkpoint_every=steps,
                                  augment_rotations=augment_rotations, seed=seed,
                                  **{"epsilon_loss": tc.epsilon_loss, **train_defaults}),
        data=dataclasses.replace(cfg.data, max_train=max_train))


def tensor_head_report(model, crystals, *, n_rotation_structures: int = 8, n_rotations: int = 8, seed: int = 0) -> dict:
    """Errors of a Z*/eps model on crystals as given and randomly rotated (with their labels), and the
    rotation error max over a few structures and rotations of |R^T Z*(R x) R - Z*(x)| (e) and the same for eps."""

    crystals = list(crystals)
    rng = np.random.default_rng(seed)
    rotated = [rotate(c, random_rotation(rng)) for c in crystals]
    checked = crystals[:n_rotation_structures]
    rots = [[random_rotation(rng) for _ in range(n_rotations)] for _ in checked]
    copies = [x for c, rs in zip(checked, rots) for x in [c] + [rotate(c, r) for r in rs]]
    # one call: every structure shares a few padded shapes (each compiled once)
    preds = model.predict_many(crystals + rotated + copies, unseen_elements="warn")
    n = len(crystals)
    out = {"as_given": tensor_metrics(crystals, preds[:n]), "rotated": tensor_metrics(rotated, preds[n:2 * n]),
           "n_parameters": model.n_parameters}
    errors = {"born_charges": [], "epsilon": []}
    for k, rs in enumerate(rots):
        group = preds[2 * n + k * (n_rotations + 1):2 * n + (k + 1) * (n_rotations + 1)]
        for key in errors:
            if key in group[0]:
                errors[key] += [float(np.abs(r.T @ p[key] @ r - group[0][key]).max()) for r, p in zip(rs, group[1:])]
    out["rotation_error"] = {k: max(v) for k, v in errors.items() if v}
    return out


def field_dataset(path: str | Path, molecules=("water",), n_conformers: int = 60, *, basis: str = "def2-svp",
                  method: str = "HF", max_field: float = 0.5, n_born: int | None = None, seed: int = 0,
                  born_on: str = "all", progress: bool = False) -> Path:
    """An ext-xyz set of molecules in uniform fields at ``path`` (see :func:`tensorprop.qm.field.generate_field_dataset`),
    generated with PySCF unless the file is already there. Finite-difference reference Z*: ``born_on="all"``
    gives them to every conformer (or to the first ``n_born`` of each molecule); ``born_on="test"`` only to
    the conformers of the seeded 80/10/10 test split that ``fit`` will hold out (``data.split: random``),
    which is all a model trained with ``born_weight 0`` is checked on, at a seventh of the SCF cost."""

    if born_on not in ("all", "test"):
        raise ValueError(f"born_on must be 'all' or 'test', not {born_on!r}")
    path = Path(path)
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_extxyz(path, generate_field_dataset(list(molecules), n_conformers, max_field=max_field, method=method,
                                                  basis=basis, seed=seed, progress=progress, born_on_test_split=born_on == "test",
                                                  n_born=n_conformers if n_born is None else n_born))
    return path


def field_fit_config(dataset: str | Path, *, steps: int = 1500, born_weight: float = 0.0, seed: int = 0,
                     hidden_irreps: str = "32x0e + 8x0o + 16x1o + 8x1e + 8x2e + 4x2o",
                     head_irreps: str = "16x0e + 8x1o + 8x2e", num_layers: int = 2, max_nodes: int | None = None,
                     max_edges: int | None = None, max_graphs: int = 16) -> FitConfig:
    """A field model E(R, F) of molecules trained on energies, forces and dipoles under fields (and on Z*
    only when ``born_weight`` > 0: by default its Born charges are pure derivatives, never fitted).
    Unless given, the batch budget holds ``max_graphs`` copies of the data set's largest molecule (n atoms):
    max_nodes = max(48, 16 n), max_edges = max(256, 16 n (n - 1))."""
    if max_nodes is None or max_edges is None:
        n = max(len(m.numbers) for m in read_extxyz(dataset, require_labels=False))
        max_nodes = max(48, max_graphs * n) if max_nodes is None else max_nodes
        max_edges = max(256, max_graphs * n * (n - 1)) if max_edges is None else max_edges
    return FitConfig(
        model=ModelConfig(cutoff=4.0, hidden_irreps=hidden_irreps, head_irreps=head_irreps, num_layers=num_layers,
                          radial_hidden=(32,), head="field", targets=("field",)),
        batch=BatchConfig(max_nodes=max_nodes, max_edges=max_edges, max_graphs=max_graphs),
        train=TrainConfig(max_steps=steps, learning_rate=3e-3, warmup_steps=min(100, steps // 5),
                          eval_every=max(steps // 6, 1), checkpoint_every=steps, born_weight=born_weight,
                          energy_weight=1.0, forces_weight=1.0, dipole_weight=1.0, seed=seed),
        data=DataConfig(dataset=str(dataset), split="random"))

