"""Where a training step's time goes, from jax's profiler, on a real batch of the config.

    python benchmarks/step_breakdown.py [--config configs/reference-size.yaml] [--repeats 20]

1. The whole training step (median of --repeats, compiled).
2. A profile of 5 steps (``jax.profiler.trace``, Perfetto JSON): the time of every XLA operation,
   attributed to the part of the network it came from through the compiled HLO's ``op_name``
   metadata (message sums, radial MLPs, node linears, heads, scatter/gather, the rest), as shares of
   the summed operation time (on several cores operations overlap, so the sum exceeds the wall time).
3. One layer's message sum alone (forward + backward): :func:`weighted_messages` against the plain
   e3nn composition it replaces (tensor product, one weight per irrep copy, scatter-sum).

Prints JSON.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import time

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
import numpy as np

from tensorprop.config import FitConfig, load_yaml_config
from tensorprop.nn.backbone import message_paths, weighted_messages, with_gate_scalars
from tensorprop.train.loop import prepare_training
from tensorprop.train.state import make_train_step


def _median_time(fn, *args, repeats: int) -> float:
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def _composition(x, sh, weights, senders, receivers, n_nodes, irreps_out):
    """The message sum as tensor product -> per-copy weights -> scatter-sum (what weighted_messages replaces)."""
    m = e3nn.tensor_product(x[senders], sh, filter_ir_out=irreps_out)
    index = np.repeat(np.arange(m.irreps.num_irreps), [ir.dim for mul, ir in m.irreps for _ in range(mul)])
    return e3nn.scatter_sum(e3nn.IrrepsArray(m.irreps, m.array * weights[:, index]), dst=receivers,
                            output_size=n_nodes)


#: parts of the network, found in an operation's op_name (first match wins)
PARTS = (("message sums (weighted_messages einsums)", "eui,ej,ijk,eu->euk"), ("radial MLPs", "radial_mlp"),
         ("node linears (pre/post/self-connection)", ("pre_linear", "post_linear", "self_connection")),
         ("segment sums / scatters", ("segment_sum", "scatter")), ("gathers", "gather"),
         ("heads", "head"), ("optimizer + EMA", ("optax", "adam", "ema")))


def _part(op_name: str) -> str:
    for part, keys in PARTS:
        if any(k in op_name for k in ((keys,) if isinstance(keys, str) else keys)):
            return part
    return "other (gates, geometry, loss, elementwise)"


def _profile(step, holder, stats, batch, n_steps: int = 5) -> dict:
    """Share of the summed XLA operation time per part of the network, from a profile of ``n_steps`` steps."""
    import collections
    import glob
    import gzip
    import re
    import tempfile

    hlo = step.lower(holder[0], stats, batch).compile().as_text()
    op_names = {m.group(1): (re.search(r'op_name="([^"]+)"', m.group(0)) or [None, ""])[1]
                for m in re.finditer(r"\n\s*%?([\w.\-]+) = [^\n]*", hlo)}
    with tempfile.TemporaryDirectory() as folder:
        with jax.profiler.trace(folder, create_perfetto_trace=True):
            for _ in range(n_steps):
                holder[0], metrics = step(holder[0], stats, batch)
                jax.block_until_ready(metrics)
        files = glob.glob(f"{folder}/**/*.trace.json.gz", recursive=True)
        if not files:
            return {"profile": "no Perfetto trace was written"}
        events = json.load(gzip.open(files[0]))
    events = events["traceEvents"] if isinstance(events, dict) else events
    totals = collections.Counter()
    for e in events:
        if e.get("ph") == "X" and e["name"] in op_names:
            totals[_part(op_names[e["name"]])] += e.get("dur", 0)
    total = sum(totals.values())
    return {"op_time_per_step_s": round(total / n_steps / 1e6, 4),
            "op_time_share": {k: round(v / total, 3) for k, v in totals.most_common()}}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser()
    p.add_argument("--config", default="configs/reference-size.yaml")
    p.add_argument("--repeats", type=int, default=20)
    args = p.parse_args(argv)
    setup = prepare_training(load_yaml_config(args.config, FitConfig), progress=False)
    mc = setup.cfg.model
    batch = next(setup.stream(0))[1]
    step = make_train_step(setup.model.apply, setup.optimizer, setup.cfg.train, setup.loss)
    holder = [setup.state]  # the step donates its state: each call takes the previous call's output

    def train_step():
        holder[0], metrics = step(holder[0], setup.model.stats, batch)
        return metrics

    full = _median_time(train_step, repeats=args.repeats)

    profile = _profile(step, holder, setup.model.stats, batch)

    graph = batch.graph  # the GraphBatch of the Batch(inputs, labels) the step trains on
    vectors = jnp.asarray(graph.positions[graph.receivers] - graph.positions[graph.senders] + graph.shifts)
    senders, receivers = jnp.asarray(graph.senders), jnp.asarray(graph.receivers)
    n_nodes = graph.positions.shape[0]
    hidden = e3nn.Irreps(mc.hidden_irreps)
    target = with_gate_scalars(hidden)

    sh = e3nn.spherical_harmonics(e3nn.Irreps.spherical_harmonics(mc.sh_lmax), vectors, normalize=True,
                                  normalization="component")
    sh_irreps, sh_array = sh.irreps, sh.array  # rebuilt inside each traced function (no IrrepsArray captured)
    _, message_irreps = message_paths(hidden, sh_irreps, target)
    rng = np.random.default_rng(0)

    def grad_of(f):
        return jax.jit(jax.grad(lambda *a: jnp.sum(jnp.sin(f(*a))), argnums=(0, 1)))

    def message_time(how, irreps_in):  # forward + backward of one layer's message sum, input features irreps_in
        _, out_irreps = message_paths(irreps_in, sh_irreps, target)
        xx = jnp.asarray(rng.normal(size=(n_nodes, irreps_in.dim)), jnp.float32)
        ww = jnp.asarray(rng.normal(size=(vectors.shape[0], out_irreps.num_irreps)), jnp.float32) * 0.1
        return _median_time(grad_of(lambda a, b: how(e3nn.IrrepsArray(irreps_in, a), e3nn.IrrepsArray(
            sh_irreps, sh_array), b, senders, receivers, n_nodes, target).array), xx, ww, repeats=args.repeats)

    fused_s, plain_s = (message_time(how, hidden) for how in (weighted_messages, _composition))
    return {
        "config": args.config, "n_edges_real": int(graph.edge_mask.sum()), "n_edges_padded": int(vectors.shape[0]),
        "n_nodes_padded": n_nodes, "message_dim": message_irreps.dim,
        "train_step_s": round(full, 4), **profile,
        "one_layer_message_sum_s": {"weighted_messages": round(fused_s, 4), "e3nn_composition": round(plain_s, 4),
                                    "speedup": round(plain_s / fused_s, 2)},
        "machine": f"{platform.machine()}, {platform.system()}, {jax.device_count()} jax device(s): {jax.devices()[0]}",
        "date": datetime.date.today().isoformat(),
    }


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
