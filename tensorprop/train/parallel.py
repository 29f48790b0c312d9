"""Data-parallel training over local devices with jax.sharding (and several hosts with jax.distributed).

A global step takes D padded batches (one per device), stacked along a leading axis that is
sharded over a 1-D device mesh named ``"data"``. The loss is the mean of the D per-batch losses,
computed under ``vmap``; XLA partitions the vmapped computation over the devices and reduces
the gradients itself (no hand-written all-reduce). Parameters and optimiser state are replicated.

Several hosts: start the same command on every host with the coordinator's address, e.g.::

    # host k of N (k = 0 .. N-1), 4 GPUs each:
    JAX_COORDINATOR_ADDRESS=host0:1234 JAX_NUM_PROCESSES=N JAX_PROCESS_ID=k \
        tensorprop fit becs-eps --config C.yaml --train.devices 0 --train.distributed true

``train.distributed`` calls ``jax.distributed.initialize()`` (which reads those variables or a
cluster's own, e.g. SLURM), after which ``jax.devices()`` lists the devices of all hosts; each
host feeds its own slice of the global batch. Multi-host runs are documented, not tested here.
"""

from __future__ import annotations

from typing import Callable, Iterator

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from .state import TrainState, apply_update

__all__ = ["data_mesh", "stack_batches", "stacked_stream", "make_parallel_train_step"]


def data_mesh(n_devices: int = 0) -> Mesh:
    """A 1-D mesh ``("data",)`` over the first ``n_devices`` devices (0: all of them)."""
    devices = jax.devices()
    n = len(devices) if n_devices in (0, None) else int(n_devices)
    if n > len(devices):
        from ..errors import ConfigError

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
            values, errors = jax.vmap(lambda b: loss(apply(params, stats, b), b, cfg))(batches)
            return jnp.mean(values), jax.tree.map(jnp.sum, errors)

        (value, errors), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
        new_state, ok = apply_update(state, value, grads, optimizer, cfg, lr_scale)
        return new_state, {"loss": value, "finite": ok, **errors}

    jitted = jax.jit(step_fn, in_shardings=(replicated, replicated, sharded, replicated), out_shardings=replicated,
                     donate_argnums=(0,))

    def run(state, stats, batches, lr_scale=jnp.float32(1.0)):
        return jitted(state, stats, jax.device_put(batches, sharded), lr_scale)

    return run
