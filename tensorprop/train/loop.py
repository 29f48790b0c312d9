"""``fit``: a run folder (:mod:`.run_folder`) + ``prepare_training`` (the task's data, graphs, model, optimiser)
+ the loop (steps, NaN policy, validation) + selection of the best weights (:mod:`.selection`)."""

from __future__ import annotations

import signal
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import jax
import numpy as np
from tqdm.auto import tqdm

from ..config import FitConfig, config_to_dict
from ..data.batching import padding_efficiency
from ..loading import MODEL_FILE_KINDS
from ..tasks import FOUNDATION, init_params, task_of
from ..tasks.field import energy_shift_per_species
from .foundation import prepare_foundation
from .parallel import data_mesh, initialize_distributed, make_parallel_train_step, stacked_stream
from .run_folder import RunFolder, read_run_config
from .selection import target_groups, update_best
from .setup import TrainingSetup, adapt
from .evaluate import summarize_errors, validation_errors
from .state import init_state, make_eval_step, make_optimizer, make_train_step

__all__ = ["fit", "prepare_training", "TrainingSetup", "read_run_config", "summarize_errors", "validation_errors",
           "energy_shift_per_species"]


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


def prepare_training(cfg: FitConfig, *, adapt_model: bool = True, progress: bool = False) -> TrainingSetup:
    """data -> graphs -> statistics -> model -> optimiser state: everything before the first step, for the
    task ``cfg.model.task`` names (:mod:`tensorprop.tasks`: its data, graphs, batch stream and loss).

    ``adapt_model`` sets ``model.avg_num_neighbors`` from the training graphs (off when resuming,
    whose config already holds it).
    """
    tc = cfg.train
    dtype = np.dtype(tc.dtype)
    if tc.distributed:
        initialize_distributed()
    if dtype == np.float64:
        jax.config.update("jax_enable_x64", True)  # entry point of a float64 run, before any array is made
    task = task_of(cfg.model)
    task.check_fit(cfg)
    if task.name in WHOLE_PREPARATIONS:
        return WHOLE_PREPARATIONS[task.name](cfg, adapt_model, dtype, progress)
    inputs = task.training_data(cfg, dtype=dtype, progress=progress)
    cfg, stats = adapt(cfg, inputs.train_graphs, adapt_model)
    stats = task.training_stats(stats, inputs.data, cfg)
    arch = task.architecture(cfg.model, cfg.charges)
    params = jax.tree.map(lambda x: np.asarray(x, dtype), init_params(arch, tc.seed))
    model = MODEL_FILE_KINDS[task.model_kind]._create(cfg.model, params, stats, charges=cfg.charges,
                                                      elements=inputs.elements, metadata=inputs.metadata)
    optimizer = make_optimizer(tc)
    return TrainingSetup(cfg, inputs.data, inputs.train_graphs, inputs.valid_graphs, model, optimizer,
                         init_state(model.params, optimizer), task.loss, inputs.stream, inputs.valid_batches)


#: tasks whose preparation is one function of their own (the foundation heads read cached features)
WHOLE_PREPARATIONS = {FOUNDATION.name: prepare_foundation}


def _headline(record: dict) -> str:
    """The validation figures of the progress bar and the final summary line."""
    units = {"born_mae": "e", "epsilon_mae": "", "esp_rmse": "kcal/mol/e", "dipole_mae": "D",
             "energy_mae": "eV/atom", "forces_mae": "eV/A"}
    parts = [f"{k.replace('_', ' ')} {record[f'valid_{k}']:.4f}{(' ' + u) if u else ''}"
             for k, u in units.items() if f"valid_{k}" in record]
    return "valid " + ", ".join(parts)




def _step_functions(setup: TrainingSetup, log):
    """(train_step, eval_step, stream_from(step)) of a setup: on one device, or data-parallel over
    ``train.devices`` (one padded batch per device and step; a run (re)started at step s skips s * D batches)."""
    tc, model = setup.cfg.train, setup.model
    eval_step = make_eval_step(model.apply, tc, setup.loss)
    if tc.devices == 1:
        return make_train_step(model.apply, setup.optimizer, tc, setup.loss), eval_step, setup.stream
    mesh = data_mesh(tc.devices)
    train_step = make_parallel_train_step(model.apply, setup.optimizer, tc, setup.loss, mesh)
    log(f"data-parallel over {mesh.size} devices: {list(mesh.devices)}")
    return train_step, eval_step, lambda s: stacked_stream(setup.stream(s * mesh.size), mesh.size)


def _select(run: RunFolder, model, best: dict, record: dict, groups, ema_params, best_params, step: int):
    """Selection after a validation: update ``best`` with ``record`` and, when the weights improved, save them
    (per target group with ``model.backbone_per_target``) as the run's model. -> (best, best_params)."""
    best, improved = update_best(best, record, groups, lambda: jax.device_get(ema_params), best_params)
    if improved is not None:
        best_params = improved
        run.save_model(model.with_params(best_params, {"step": step, **best}))
    return best, best_params


def fit(cfg: FitConfig | None, out_dir: str | Path, *, resume: bool = False, max_steps: int | None = None,
        progress: bool = True, log: Callable[[str], None] = print) -> dict:
    """Train a model and write the run folder; returns the summary dict.

    With ``resume=True`` the run's own config.yaml and last checkpoint are used (``cfg`` is
    ignored) and training continues with exactly the batches and updates the uninterrupted
    run would have made. ``max_steps`` overrides ``cfg.train.max_steps``.
    """
    out = Path(out_dir)
    run = RunFolder(out)
    cfg = run.run_config(cfg, resume=resume, max_steps=max_steps)
    tc = cfg.train
    np.dtype(tc.dtype)
    setup = prepare_training(cfg, adapt_model=not resume, progress=progress)
    cfg, data = setup.cfg, setup.data
    model, optimizer, state = setup.model, setup.optimizer, setup.state
    best = {"valid_loss": float("inf"), "evals_since_best": 0, "best_step": 0}
    meta: dict = {}
    if resume and run.checkpoint.exists():
        state, meta = run.load_checkpoint(state)
        best = meta["best"]
        log(f"resumed {out} at step {int(state.step)}")
    run.write_start(cfg, data)
    start = int(state.step)
    run.truncate_metrics(start)

    train_step, eval_step, stream_from = _step_functions(setup, log)
    valid_batches = setup.valid_batches
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
    if groups is not None and resume:
        best_params = run.best_params()

    def checkpoint():
        run.save_checkpoint(state, {**checkpoint_header, "step": int(state.step), "best": best,
                                           "lr_scale": lr_scale, "rollbacks": rollbacks,
                                           "wall_s": round(time.time() - t0, 2)})

    if tc.nan_policy == "rollback" and not run.checkpoint.exists():
        checkpoint()  # a point to return to before the first interval checkpoint

    bar = None
    if progress:
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
                            f"{run.checkpoint} is kept")
                        break
                    rollbacks += 1
                    lr_scale *= tc.rollback_lr_factor
                    state, _ = run.load_checkpoint(state)  # `best` stays: model.npz holds it
                    step, window = int(state.step), []
                    stream = stream_from(step)
                    run.truncate_metrics(step)
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
                run.append_metrics(record)
                best, best_params = _select(run, model, best, record, groups, state.ema_params, best_params, step)
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
    run.write_summary(summary)
    log(f"{out}: {summary['steps']} steps ({summary['stopped_by']}) in {summary['wall_s']} s; best "
        f"{_headline(best)} at step {best['best_step']}")
    return summary
