"""Cost of one training step of a config: compile time, steady-state step time, memory, throughput."""

from __future__ import annotations

import time

import jax
import numpy as np

from ..data.batching import padding_efficiency
from .state import make_train_step

__all__ = ["measure_train_step"]


def _xla_analysis(step, state, stats, batch) -> dict:
    """XLA's memory and cost analysis of the compiled step (buffers in bytes, FLOPs), where the backend has them."""
    try:
        compiled = step.lower(state, stats, batch).compile()
    except Exception:  # e.g. a step that is not a plain jitted function
        return {}
    out = {}
    try:
        m = compiled.memory_analysis()
        out.update(argument_bytes=int(m.argument_size_in_bytes), output_bytes=int(m.output_size_in_bytes),
                   temp_bytes=int(m.temp_size_in_bytes))
    except Exception:  # not every backend/jax version reports it
        pass
    try:
        out["flops_per_step"] = float((compiled.cost_analysis() or {}).get("flops", float("nan")))
    except Exception:
        pass
    return out


def measure_train_step(setup, steps: int = 50, warmup: int = 3) -> dict:
    """Time ``steps`` training steps after ``warmup`` of a :class:`~tensorprop.train.loop.TrainingSetup`.

    Returns compile time of the first step (s), median and mean step time (s) of steps timed one by
    one, the mean step time of the same number of steps run as ``fit`` runs them (batches collated
    from the stream on the fly, no wait between steps) and the fraction of that time spent outside
    the compiled step (data loading, host transfers), structures and atoms per
    step and per second, padding efficiency, XLA memory figures and FLOPs (per step, per real
    structure, achieved rate), parameter count and device.
    """
    model, state = setup.model, setup.state
    step = make_train_step(model.apply, setup.optimizer, setup.cfg.train, setup.loss)
    stream = setup.stream(0)
    batches = [next(stream)[1] for _ in range(steps + warmup + 1)]
    analysis = _xla_analysis(step, state, model.stats, batches[0])
    t0 = time.perf_counter()
    state, m = step(state, model.stats, batches[0])
    jax.block_until_ready(m)
    compile_s = time.perf_counter() - t0
    for b in batches[1:warmup + 1]:
        state, m = step(state, model.stats, b)
    jax.block_until_ready(m)
    times = []
    for b in batches[warmup + 1:]:
        t = time.perf_counter()
        state, m = step(state, model.stats, b)
        jax.block_until_ready(m)
        times.append(time.perf_counter() - t)
    median = float(np.median(times))
    # the loop as fit runs it: each batch collated from the stream while the previous step computes
    live = setup.stream(warmup + 1)  # the same batches as the steps timed one by one
    t = time.perf_counter()
    for _ in range(steps):
        state, m = step(state, model.stats, next(live)[1])
    jax.block_until_ready(m)
    loop_s = (time.perf_counter() - t) / steps
    timed = batches[warmup + 1:]
    structs = float(np.mean([b.graph.graph_mask.sum() for b in timed]))
    atoms = float(np.mean([b.graph.node_mask.sum() for b in timed]))
    return {"n_parameters": model.n_parameters, "device": str(jax.devices()[0]), "compile_s": round(compile_s, 2),
            "median_step_s": round(median, 5), "mean_step_s": round(float(np.mean(times)), 5),
            "loop_step_s": round(loop_s, 5),
            "outside_compiled_fraction": round(max(0.0, 1.0 - float(np.mean(times)) / loop_s), 3),
            "structures_per_step": structs,
            "structures_per_s": round(structs / median, 1), "atoms_per_s": round(atoms / median, 1),
            "padding_efficiency": padding_efficiency(batches), **analysis,
            **({"flops_per_structure": analysis["flops_per_step"] / structs,
                "achieved_gflops_per_s": analysis["flops_per_step"] / median / 1e9} if "flops_per_step" in analysis else {})}
