"""Data-parallel training over local devices with jax.sharding (and several hosts with jax.distributed).

A global step takes D padded batches (one per device), stacked along a leading axis that is
sharded over a 1-D device mesh named ``"data"``. The loss is the mean of the D per-batch losses,
computed under ``vmap``; XLA partitions the vmapped computation over the devices and reduces
the gradients itself (no hand-written all-reduce). Parameters and optimiser state are replicated.

Several hosts: start the same command on every host with the coordinator's address, e.g.::

    # host k of N (k = 0 .. N-1), 4 GPUs each:
    JAX_COORDINATOR_ADDRESS=host0:1234 JAX_NUM_PROCESSES=N JAX_PROCESS_ID=k \
        tensorprop fit becs-eps --config C.yaml --train.devices 0 --train.distributed true

``train.distributed`` calls :func:`initialize_distributed`, which passes those three variables to
``jax.distributed.initialize`` (jax itself reads only the address) or, without them, lets jax
detect a cluster (SLURM, Open MPI); ``jax.devices()`` then lists the devices of all processes.
Every process builds the same global stack of batches (same seed, same stream) and
``jax.device_put`` keeps each process's own slice. tests/train/test_parallel.py runs two processes on
127.0.0.1 with CPU (gloo) collectives and checks the result equals one process's.
"""

from __future__ import annotations

from typing import Callable, Iterator

import os

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ..errors import ConfigError
from .state import TrainState, apply_update

__all__ = ["initialize_distributed", "data_mesh", "stack_batches", "stacked_stream", "make_parallel_train_step"]


def initialize_distributed() -> None:
    """``jax.distributed.initialize`` from ``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES``, ``JAX_PROCESS_ID``.

    Without ``JAX_NUM_PROCESSES`` jax detects the cluster itself (SLURM, Open MPI, ...).
    """
    env = os.environ
    if env.get("JAX_NUM_PROCESSES"):
        try:
            n, k = int(env["JAX_NUM_PROCESSES"]), int(env.get("JAX_PROCESS_ID", ""))
        except ValueError:
            raise ConfigError("train.distributed: JAX_NUM_PROCESSES and JAX_PROCESS_ID must be integers, got "
                              f"{env.get('JAX_NUM_PROCESSES')!r} and {env.get('JAX_PROCESS_ID')!r}") from None
        if not env.get("JAX_COORDINATOR_ADDRESS"):
            raise ConfigError("train.distributed: JAX_NUM_PROCESSES is set but JAX_COORDINATOR_ADDRESS is not")
        jax.distributed.initialize(coordinator_address=env["JAX_COORDINATOR_ADDRESS"], num_processes=n, process_id=k)
    else:
        jax.distributed.initialize()


def data_mesh(n_devices: int = 0) -> Mesh:
    """A 1-D mesh ``("data",)`` over the first ``n_devices`` devices (0: all of them)."""
    devices = jax.devices()
    n = len(devices) if n_devices in (0, None) else int(n_devices)
    if n > len(devices):
        raise ConfigError(f"train.devices = {n} but jax sees only {len(devices)} device(s): {devices}")
    return Mesh(np.asarray(devices[:n]), ("data",))


def stack_batches(batches) -> object:
    """D padded batches of identical shapes -> one pytree with a leading axis of size D."""
    return jax.tree.map(lambda *xs: np.stack(xs), *batches)


def stacked_stream(stream: Iterator, n: int) -> Iterator:
    """Group a stream of (epoch, batch) into (epoch of the last, stacked n batches)."""
    while True:
        items = [next(stream) for _ in range(n)]
        yield items[-1][0], stack_batches([b for _, b in items])


def make_parallel_train_step(apply: Callable, optimizer, cfg, loss: Callable, mesh: Mesh) -> Callable:
    """``(state, stats, stacked batch) -> (state, metrics)`` jit-compiled over ``mesh``.

    Same update rule, EMA and non-finite skipping as :func:`tensorprop.train.state.make_train_step`;
    error sums are summed over the D batches, the loss is their mean.
    """
    replicated = NamedSharding(mesh, PartitionSpec())
    sharded = NamedSharding(mesh, PartitionSpec("data"))

    def step_fn(state: TrainState, stats, batches, lr_scale):
        def objective(params):
            values, errors = jax.vmap(lambda b: loss(apply(params, stats, b.inputs), b, cfg))(batches)
            return jnp.mean(values), jax.tree.map(jnp.sum, errors)

        (value, errors), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
        new_state, ok = apply_update(state, value, grads, optimizer, cfg, lr_scale)
        return new_state, {"loss": value, "finite": ok, **errors}

    jitted = jax.jit(step_fn, in_shardings=(replicated, replicated, sharded, replicated), out_shardings=replicated,
                     donate_argnums=(0,))

    def run(state, stats, batches, lr_scale=jnp.float32(1.0)):
        return jitted(state, stats, jax.device_put(batches, sharded), lr_scale)

    return run
