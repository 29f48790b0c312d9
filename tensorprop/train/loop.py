"""``fit``: data -> statistics -> model -> optimiser -> loop, writing a run folder.

Run folder layout::

    RUN/config.yaml          resolved FitConfig (avg_num_neighbors filled in from data)
    RUN/split.json           dataset indices of train/valid/test actually used, excluded formulas,
                             the structures of data.extra_train used (and how many were left out)
    RUN/metrics.jsonl        one JSON line per validation
    RUN/checkpoints/last.npz full training state (atomic; see train/checkpoint.py)
    RUN/model.npz            EMA weights with the best validation loss (a tensorprop model file)
    RUN/summary.json         final figures
"""

from __future__ import annotations

import dataclasses
import json
import signal
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, NamedTuple

import jax
import numpy as np
import optax
import yaml

from ..api import TensorModel, init_params
from ..config import FitConfig, config_from_dict, config_to_dict
from ..data.batching import graph_part, make_batches, padding_efficiency
from ..errors import ConfigError
from ..model_file import read_model_file
from .checkpoint import load_checkpoint, save_checkpoint
from .data import SplitData, batch_stream, build_graphs, load_training_data
from .losses import loss_fn
from .selection import target_groups, update_best
from .state import TrainState, init_state, make_eval_step, make_optimizer, make_train_step
from .statistics import training_statistics
from ..outputs import CHARGES, ENERGY, EPSILON

__all__ = ["fit", "prepare_training", "TrainingSetup", "read_run_config", "summarize_errors", "validation_errors"]


def read_run_config(run: str | Path) -> FitConfig:
    path = Path(run) / "config.yaml"
    if not path.is_file():
        raise ConfigError(f"{path}: no config in run folder {run}")
    return config_from_dict(FitConfig, yaml.safe_load(path.read_text()))


def summarize_errors(sums: dict, prefix: str) -> dict:
    """Error sums ``{t}_abs``, ``{t}_sq``, ``{t}_count`` (see losses.tensor_errors, charge_losses.charge_errors)
    -> ``{prefix}_{t}_mae`` and ``{prefix}_{t}_rmse`` for every target ``t`` with a non-zero count."""
    out = {}
    for target in [k[:-len("_count")] for k in sums if k.endswith("_count")]:
        n = float(sums[f"{target}_count"])
        if n > 0:
            out[f"{prefix}_{target}_mae"] = float(sums[f"{target}_abs"]) / n
            out[f"{prefix}_{target}_rmse"] = float(np.sqrt(float(sums[f"{target}_sq"]) / n))
    return out


@contextmanager
def _stop_on_signals(flag: dict):
    """SIGINT/SIGTERM set ``flag["stop"]``; the loop then checkpoints and returns."""

    def handler(signum, frame):
        flag["stop"] = signal.Signals(signum).name

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def validation_errors(eval_step, params, stats, batches) -> dict:
    """Mean loss over real structures (``valid_loss``) and the error metrics that ``eval_step`` sums over
    ``batches`` ((epoch, padded batch) pairs, as the batch iterators yield them), as MAE/RMSE keys prefixed
    ``valid_``. Serves the training loop's validation and ``tensorprop evaluate`` alike."""
    sums: dict = {}
    loss, n = 0.0, 0
    for _, b in batches:
        _, m = eval_step(params, stats, b)
        m = jax.device_get(m)
        real = int(graph_part(b).graph_mask.sum())
        loss += float(m.pop("loss")) * real
        n += real
        for k, v in m.items():
            sums[k] = sums.get(k, 0.0) + float(v)
    return {"valid_loss": loss / max(n, 1), **summarize_errors(sums, "valid")}


class TrainingSetup(NamedTuple):
    cfg: FitConfig  # with avg_num_neighbors filled in from the training graphs
    data: SplitData
    train_graphs: list
    valid_graphs: list
    model: object  # TensorModel or ChargeModel: initial weights, training statistics, elements seen
    optimizer: optax.GradientTransformation
    state: TrainState
    loss: Callable  # (predictions, batch, TrainConfig) -> (scalar, error sums)
    stream: Callable  # start_step -> iterator of (epoch, padded batch)
    valid_batches: list  # [(indices, padded batch)]


def _adapt(cfg: FitConfig, train_graphs, adapt_model: bool):
    stats, avg_neighbors = training_statistics(train_graphs)
    if adapt_model:
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, avg_num_neighbors=round(avg_neighbors, 4)))
    return cfg, stats


def _truncate_metrics(path: Path, step: int) -> None:
    """Keep the metrics lines up to ``step`` (a killed or rolled-back run wrote later ones; a line cut
    off by a kill does not parse and goes too)."""
    if not path.exists():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= step:
                keep.append(line)
        except (ValueError, KeyError, TypeError):
            continue
    path.write_text("".join(line + "\n" for line in keep))


def prepare_training(cfg: FitConfig, *, adapt_model: bool = True, progress: bool = False) -> TrainingSetup:
    """data -> graphs -> statistics -> model -> optimiser state: everything before the first step.

    ``adapt_model`` sets ``model.avg_num_neighbors`` from the training graphs (off when resuming,
    whose config already holds it). Crystal tensors or, with ``model.targets: [charges]``,
    molecular distributed charges.
    """
    tc = cfg.train
    dtype = np.dtype(tc.dtype)
    if tc.distributed:
        from .parallel import initialize_distributed

        initialize_distributed()
    if dtype == np.float64:
        jax.config.update("jax_enable_x64", True)  # entry point of a float64 run, before any array is made
    if cfg.data.extra_train and (CHARGES in cfg.model.targets or cfg.model.head == "field"):
        raise ConfigError("data.extra_train adds crystals with Z*/eps_inf labels; it is not available for "
                          f"model.targets {list(cfg.model.targets)} with head {cfg.model.head!r}")
    if CHARGES in cfg.model.targets:
        return _prepare_charges(cfg, adapt_model, dtype)
    if cfg.model.foundation is not None:
        from .foundation import prepare_foundation

        return prepare_foundation(cfg, adapt_model, dtype, progress)
    if cfg.model.targets == ("field",):
        return _prepare_field(cfg, adapt_model, dtype, progress)
    if cfg.model.head == "field" and EPSILON in cfg.model.targets and tc.epsilon_loss == "log":
        raise ConfigError("model.head 'field' needs train.epsilon_loss: huber (its eps_inf comes from the "
                          "polarisability, not from I + expm(S))")
    data = load_training_data(cfg.data, tc.seed)
    train_graphs = build_graphs(data.train, cfg.model.cutoff, progress=progress, desc="train graphs")
    for extra in data.extra_train:  # train-only structures of data.extra_train, after the main ones
        train_graphs += build_graphs(extra, cfg.model.cutoff, progress=progress, desc=f"{extra.name} graphs")
    valid_graphs = build_graphs(data.valid, cfg.model.cutoff, progress=progress, desc="valid graphs")
    cfg, stats = _adapt(cfg, train_graphs, adapt_model)
    params = jax.tree.map(lambda x: np.asarray(x, dtype), init_params(cfg.model, tc.seed))
    elements = sorted(set(data.train.elements).union(*(x.elements for x in data.extra_train)))
    metadata = {"dataset": cfg.data.dataset, "n_train": len(data.train)}
    if data.extra_train:
        metadata["extra_train"] = {x.name: len(x) for x in data.extra_train}
    model = TensorModel(cfg.model, params, stats, elements=elements, metadata=metadata)
    optimizer = make_optimizer(tc)

    def stream(start):
        return batch_stream(train_graphs, cfg.batch, tc.seed, start_step=start, dtype=dtype,
                            augment_rotations=tc.augment_rotations, position_noise=tc.position_noise)

    return TrainingSetup(cfg, data, train_graphs, valid_graphs, model, optimizer, init_state(model.params, optimizer),
                         loss_fn, stream, make_batches(valid_graphs, cfg.batch, dtype=dtype))


def _prepare_charges(cfg: FitConfig, adapt_model: bool, dtype) -> TrainingSetup:
    from ..charges import ChargeModel, init_charge_params
    from ..data.molecule_batching import make_molecule_batches, molecule_graphs, molecule_stream
    from .charge_losses import charge_loss_fn
    from .data import load_molecule_data

    tc = cfg.train
    data = load_molecule_data(cfg.data, tc.seed)
    train_graphs = molecule_graphs(data.train, cfg.model.cutoff)
    valid_graphs = molecule_graphs(data.valid, cfg.model.cutoff)
    cfg, _ = _adapt(cfg, train_graphs, adapt_model)
    params = jax.tree.map(lambda x: np.asarray(x, dtype), init_charge_params(cfg.model, cfg.charges, tc.seed))
    elements = sorted({int(z) for m in data.train for z in m.numbers})
    model = ChargeModel(cfg.model, cfg.charges, params, elements=elements,
                        metadata={"dataset": cfg.data.dataset, "n_train": len(data.train)})
    max_points = max([1] + [m.n_points for part in (data.train, data.valid) for m in part])
    optimizer = make_optimizer(tc)

    def stream(start):
        return molecule_stream(data.train, train_graphs, cfg.batch, max_points, tc.seed, start_step=start,
                               dtype=dtype, augment_rotations=tc.augment_rotations)

    valid = make_molecule_batches(data.valid, valid_graphs, cfg.batch, max_points, dtype)
    return TrainingSetup(cfg, data, train_graphs, valid_graphs, model, optimizer, init_state(model.params, optimizer),
                         charge_loss_fn, stream, valid)


def energy_shift_per_species(crystals) -> np.ndarray:
    """Least-squares reference energy of each element (eV), E ~ sum_i e_Z(i), from labelled structures (119,)."""
    from ..nn.backbone import NUM_ELEMENTS

    rows = [(np.bincount(c.numbers, minlength=NUM_ELEMENTS), float(c.info[ENERGY])) for c in crystals
            if c.info.get(ENERGY) is not None]
    shift = np.zeros(NUM_ELEMENTS, np.float32)
    if rows:
        counts = np.array([r[0] for r in rows], float)
        present = counts.sum(0) > 0
        sol = np.linalg.lstsq(counts[:, present], np.array([r[1] for r in rows]), rcond=None)[0]
        shift[present] = sol
    return shift


def _prepare_field(cfg: FitConfig, adapt_model: bool, dtype, progress: bool) -> TrainingSetup:
    from ..data.field_batching import field_stream, make_field_batches
    from .field_losses import field_loss_fn

    tc = cfg.train
    data = load_training_data(cfg.data, tc.seed, require_labels=False)
    train_graphs = build_graphs(data.train, cfg.model.cutoff, progress=progress, desc="train graphs")
    valid_graphs = build_graphs(data.valid, cfg.model.cutoff, progress=progress, desc="valid graphs")
    cfg, stats = _adapt(cfg, train_graphs, adapt_model)
    stats["energy_shift"] = energy_shift_per_species(data.train)
    if tc.born_weight == 0:  # Z* labels unused: keep them out of the fixed charges too
        stats["born_shift"] = np.zeros_like(stats["born_shift"])
    params = jax.tree.map(lambda x: np.asarray(x, dtype), init_params(cfg.model, tc.seed))
    model = TensorModel(cfg.model, params, stats, elements=data.train.elements,
                        metadata={"dataset": cfg.data.dataset, "n_train": len(data.train)})
    optimizer = make_optimizer(tc)

    def stream(start):
        return field_stream(list(data.train), train_graphs, cfg.batch, tc.seed, start_step=start, dtype=dtype)

    valid = make_field_batches(list(data.valid), valid_graphs, cfg.batch, dtype)
    return TrainingSetup(cfg, data, train_graphs, valid_graphs, model, optimizer, init_state(model.params, optimizer),
                         field_loss_fn, stream, valid)


def _headline(record: dict) -> str:
    """The validation figures of the progress bar and the final summary line."""
    units = {"born_mae": "e", "epsilon_mae": "", "esp_rmse": "kcal/mol/e", "dipole_mae": "D",
             "energy_mae": "eV/atom", "forces_mae": "eV/A"}
    parts = [f"{k.replace('_', ' ')} {record[f'valid_{k}']:.4f}{(' ' + u) if u else ''}"
             for k, u in units.items() if f"valid_{k}" in record]
    return "valid " + ", ".join(parts)


def fit(cfg: FitConfig | None, out_dir: str | Path, *, resume: bool = False, max_steps: int | None = None,
        progress: bool = True, log: Callable[[str], None] = print) -> dict:
    """Train a model and write the run folder; returns the summary dict.

    With ``resume=True`` the run's own config.yaml and last checkpoint are used (``cfg`` is
    ignored) and training continues with exactly the batches and updates the uninterrupted
    run would have made. ``max_steps`` overrides ``cfg.train.max_steps``.
    """
    out = Path(out_dir)
    ckpt_path = out / "checkpoints" / "last.npz"
    if resume:
        cfg = read_run_config(out)
    elif ckpt_path.exists():
        raise ConfigError(f"{out}: run folder already holds a checkpoint; use --resume or another --out")
    cfg = cfg or FitConfig()
    if max_steps is not None:
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, max_steps=int(max_steps)))
    tc = cfg.train
    np.dtype(tc.dtype)
    setup = prepare_training(cfg, adapt_model=not resume, progress=progress)
    cfg, data = setup.cfg, setup.data
    model, optimizer, state = setup.model, setup.optimizer, setup.state
    best = {"valid_loss": float("inf"), "evals_since_best": 0, "best_step": 0}
    meta: dict = {}
    if resume and ckpt_path.exists():
        state, meta = load_checkpoint(ckpt_path, state)
        best = meta["best"]
        log(f"resumed {out} at step {int(state.step)}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
    (out / "split.json").write_text(json.dumps({
        "dataset": cfg.data.dataset, "train": list(data.train.indices), "valid": list(data.valid.indices),
        "test": list(data.test.indices), "excluded_formulas": data.excluded,
        "label_check": data.label_check, "extra_train": list(data.extra_report)}))
    metrics_path = out / "metrics.jsonl"
    start = int(state.step)
    _truncate_metrics(metrics_path, start)

    eval_step = make_eval_step(model.apply, tc, setup.loss)
    valid_batches = setup.valid_batches
    if tc.devices == 1:
        train_step = make_train_step(model.apply, optimizer, tc, setup.loss)
        stream_from = setup.stream
    else:  # one padded batch per device and step; a run (re)started at step s skips s * D batches
        from .parallel import data_mesh, make_parallel_train_step, stacked_stream

        mesh = data_mesh(tc.devices)
        train_step = make_parallel_train_step(model.apply, optimizer, tc, setup.loss, mesh)
        stream_from = lambda s: stacked_stream(setup.stream(s * mesh.size), mesh.size)  # noqa: E731
        log(f"data-parallel over {mesh.size} devices: {list(mesh.devices)}")
    stream = stream_from(start)
    checkpoint_header = {"config": config_to_dict(cfg)}
    flag: dict = {"stop": None}
    # wall_s counts on across --resume: the seconds the run had spent when its checkpoint was written
    wall_before = float(meta.get("wall_s", 0.0))
    t0, window, eff_batches = time.time() - wall_before, [], []
    step = start  # host-side copy of state.step: reading the device counter would stall async dispatch

    lr_scale, rollbacks = float(meta.get("lr_scale", 1.0)), int(meta.get("rollbacks", 0))
    groups = target_groups(cfg.model)  # targets whose best weights are kept separately (or None)
    best_params = None
    if groups is not None and resume and (out / "model.npz").exists():
        best_params = read_model_file(out / "model.npz")[0]

    def checkpoint():
        save_checkpoint(ckpt_path, state, {**checkpoint_header, "step": int(state.step), "best": best,
                                           "lr_scale": lr_scale, "rollbacks": rollbacks,
                                           "wall_s": round(time.time() - t0, 2)})

    if tc.nan_policy == "rollback" and not ckpt_path.exists():
        checkpoint()  # a point to return to before the first interval checkpoint

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=tc.max_steps, initial=start, desc="fit (compiling the first step)", unit="step",
                   dynamic_ncols=True)
        bar.refresh()
    with _stop_on_signals(flag):
        while step < tc.max_steps and flag["stop"] is None:
            epoch, batch = next(stream)
            if len(eff_batches) < 50:
                eff_batches.append(batch)
            state, m = train_step(state, model.stats, batch, np.float32(lr_scale))
            window.append(m)
            step += 1
            if bar is not None:
                if bar.desc != "fit":  # the first call has compiled (a new batch shape may compile again, briefly)
                    bar.set_description("fit", refresh=False)
                bar.update(1)
            evaluate_now = step % tc.eval_every == 0 or step == tc.max_steps
            if step % 10 == 0 or evaluate_now:
                host = jax.device_get(window)
                bad = [step - len(host) + 1 + k for k, x in enumerate(host) if not bool(x["finite"])]
                if bad:
                    log(f"step {step}: non-finite loss or gradient at step(s) {bad}; not applied "
                        f"({int(state.skipped)} skipped in this run so far)")
                if bad and tc.nan_policy == "rollback":
                    if rollbacks >= tc.max_rollbacks:
                        flag["stop"] = "non-finite loss"
                        log(f"stopping: still non-finite after {rollbacks} rollback(s); the last good checkpoint "
                            f"{ckpt_path} is kept")
                        break
                    rollbacks += 1
                    lr_scale *= tc.rollback_lr_factor
                    state, _ = load_checkpoint(ckpt_path, state)  # `best` stays: model.npz holds it
                    step, window = int(state.step), []
                    stream = stream_from(step)
                    _truncate_metrics(metrics_path, step)
                    log(f"rollback {rollbacks}/{tc.max_rollbacks}: back to step {step}, learning rate x{lr_scale:.3g}")
                    if bar is not None:
                        bar.n = step
                        bar.refresh()
                    continue
                sums = {k: sum(float(x[k]) for x in host) for k in host[0] if k not in ("finite",)}
                train = {"train_loss": sums.pop("loss") / len(host), **summarize_errors(sums, "train")}
                window = []
                if bar is not None:
                    bar.set_postfix_str(" ".join(f"{k.replace('train_', '')}={v:.4g}" for k, v in train.items()
                                                 if not k.endswith("rmse")))
            if evaluate_now:
                record = {"step": step, "epoch": epoch, "wall_s": round(time.time() - t0, 2),
                          "skipped": int(state.skipped), **train,
                          **validation_errors(eval_step, state.ema_params, model.stats, valid_batches)}
                with metrics_path.open("a") as f:
                    f.write(json.dumps(record) + "\n")
                best, improved = update_best(best, record, groups, lambda: jax.device_get(state.ema_params),
                                             best_params)
                if improved is not None:
                    best_params = improved
                    model.with_params(best_params, {"step": step, **best}).save(out / "model.npz")
                if bar is not None:
                    bar.write(f"step {step}: {_headline(record)}")
                if tc.patience and best["evals_since_best"] >= tc.patience:
                    flag["stop"] = "early stopping"
            if step % tc.checkpoint_every == 0:
                checkpoint()
        if flag["stop"] != "non-finite loss":  # never overwrite the last good checkpoint with a bad state
            checkpoint()
    if bar is not None:
        bar.close()
    summary = {"run": str(out), "steps": int(state.step), "stopped_by": flag["stop"] or "max_steps",
               "skipped_steps": int(state.skipped), "rollbacks": rollbacks, "lr_scale": lr_scale,
               "wall_s": round(time.time() - t0, 1),
               "n_parameters": model.n_parameters, "n_train": len(data.train),
               "n_extra_train": sum(len(x) for x in data.extra_train), "n_valid": len(data.valid),
               "padding_efficiency": padding_efficiency(eff_batches) if eff_batches else None, "best": best}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    log(f"{out}: {summary['steps']} steps ({summary['stopped_by']}) in {summary['wall_s']} s; best "
        f"{_headline(best)} at step {best['best_step']}")
    return summary
