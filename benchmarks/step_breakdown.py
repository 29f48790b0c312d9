"""Where a training step's time goes: the parts of the network timed alone on a real batch.

    python benchmarks/step_breakdown.py [--config configs/reference-size.yaml] [--repeats 20]

Times, on the first training batch of the config (forward + backward, jit-compiled, median of
--repeats): the whole training step; the edge geometry (spherical harmonics + radial basis); the
radial MLPs of all layers; the message sums of all layers (:func:`weighted_messages`, and the
plain e3nn composition it replaces: tensor product, per-copy weights, scatter-sum); the rest of
the step is the difference (node linears, gates, heads, loss, optimizer). Prints JSON.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import time

import e3nn_jax as e3nn
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

from tensorprop.config import FitConfig, load_yaml_config
from tensorprop.nn.backbone import message_paths, weighted_messages, with_gate_scalars
from tensorprop.nn.radial import radial_embedding
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


def main(argv=None) -> dict:
    p = argparse.ArgumentParser()
    p.add_argument("--config", default="configs/reference-size.yaml")
    p.add_argument("--repeats", type=int, default=20)
    args = p.parse_args(argv)
    setup = prepare_training(load_yaml_config(args.config, FitConfig), progress=False)
    mc, n_backbones = setup.cfg.model, (len(setup.cfg.model.targets) if setup.cfg.model.backbone_per_target else 1)
    batch = next(setup.stream(0))[1]
    step = make_train_step(setup.model.apply, setup.optimizer, setup.cfg.train, setup.loss)
    holder = [setup.state]  # the step donates its state: each call takes the previous call's output

    def train_step():
        holder[0], metrics = step(holder[0], setup.model.stats, batch)
        return metrics

    full = _median_time(train_step, repeats=args.repeats)

    vectors = jnp.asarray(batch.positions[batch.receivers] - batch.positions[batch.senders] + batch.shifts)
    senders, receivers = jnp.asarray(batch.senders), jnp.asarray(batch.receivers)
    n_nodes, n_layers = batch.positions.shape[0], mc.num_layers * n_backbones
    hidden = e3nn.Irreps(mc.hidden_irreps)
    target = with_gate_scalars(hidden)

    def geometry(v):
        sh = e3nn.spherical_harmonics(e3nn.Irreps.spherical_harmonics(mc.sh_lmax), v, normalize=True,
                                      normalization="component")
        rb = radial_embedding(jnp.linalg.norm(v, axis=-1), n=mc.num_radial_basis, cutoff=mc.cutoff,
                              p=mc.envelope_exponent)
        return sh, rb

    sh, radial = jax.jit(geometry)(vectors)
    sh_irreps, sh_array = sh.irreps, sh.array  # rebuilt inside each traced function (no IrrepsArray captured)
    _, message_irreps = message_paths(hidden, sh_irreps, target)
    mlp = hk.without_apply_rng(hk.transform(lambda r: e3nn.haiku.MultiLayerPerceptron(
        tuple(mc.radial_hidden) + (message_irreps.num_irreps,), jax.nn.silu, output_activation=False)(r)))
    mlp_params = mlp.init(jax.random.PRNGKey(0), radial)
    rng = np.random.default_rng(0)

    def grad_of(f):
        return jax.jit(jax.grad(lambda *a: jnp.sum(jnp.sin(f(*a))), argnums=tuple(range(2))))

    geometry_s = _median_time(grad_of(lambda v, _: sum(jnp.sum(t.array if hasattr(t, "array") else t)
                                                       for t in geometry(v))), vectors, 0.0, repeats=args.repeats)
    mlp_s = _median_time(grad_of(lambda prm, r: mlp.apply(prm, r)), mlp_params, radial, repeats=args.repeats)
    def message_time(how, irreps_in):  # forward + backward of one layer's message sum, input features irreps_in
        _, out_irreps = message_paths(irreps_in, sh_irreps, target)
        xx = jnp.asarray(rng.normal(size=(n_nodes, irreps_in.dim)), jnp.float32)
        ww = jnp.asarray(rng.normal(size=(vectors.shape[0], out_irreps.num_irreps)), jnp.float32) * 0.1
        return _median_time(grad_of(lambda a, b: how(e3nn.IrrepsArray(irreps_in, a), e3nn.IrrepsArray(
            sh_irreps, sh_array), b, senders, receivers, n_nodes, target).array), xx, ww, repeats=args.repeats)

    first = e3nn.Irreps(f"{hidden.filter(keep=['0e']).num_irreps}x0e")  # layer 0 sees the species embedding only
    fused_s, plain_s = (message_time(how, hidden) for how in (weighted_messages, _composition))
    fused_first = message_time(weighted_messages, first)
    parts = {"edge_geometry": geometry_s, "radial_mlps": mlp_s * n_layers,
             "message_sums": (fused_first + fused_s * (mc.num_layers - 1)) * n_backbones}
    parts["rest"] = full - sum(parts.values())
    return {
        "config": args.config, "n_edges_real": int(batch.edge_mask.sum()), "n_edges_padded": int(vectors.shape[0]),
        "n_nodes_padded": n_nodes, "message_dim": message_irreps.dim, "layers_timed": n_layers,
        "train_step_s": round(full, 4),
        "parts_s": {k: round(v, 4) for k, v in parts.items()},
        "parts_fraction": {k: round(v / full, 3) for k, v in parts.items()},
        "message_sum_per_layer_s": {"weighted_messages": round(fused_s, 4), "e3nn_composition": round(plain_s, 4),
                                    "speedup": round(plain_s / fused_s, 2), "first_layer": round(fused_first, 4)},
        "machine": f"{platform.machine()}, {platform.system()}, {jax.device_count()} jax device(s): {jax.devices()[0]}",
        "date": datetime.date.today().isoformat(),
    }


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
