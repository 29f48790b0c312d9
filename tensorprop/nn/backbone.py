"""NequIP-style interaction network in e3nn-jax + haiku.

The network takes plain arrays (edge vectors, atomic numbers, senders, receivers, masks)
and returns per-atom irreps features; it knows nothing of Born charges or cells.
"""

from __future__ import annotations

import functools

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

from .._lazy import e3nn
from .radial import radial_embedding

__all__ = ["with_gate_scalars", "gated", "normalized_activation", "message_paths", "weighted_messages", "RadialMLP",
           "Interaction", "Backbone", "NUM_ELEMENTS"]

NUM_ELEMENTS = 119  # embedding rows, indexed by atomic number (0 = padding)


def with_gate_scalars(irreps: e3nn.Irreps) -> e3nn.Irreps:
    """Irreps to produce before :func:`gated`: scalars, then one 0e gate per non-scalar, then non-scalars."""
    irreps = e3nn.Irreps(irreps)
    scalars = e3nn.Irreps([(m, ir) for m, ir in irreps if ir.l == 0])
    vectors = e3nn.Irreps([(m, ir) for m, ir in irreps if ir.l > 0])
    gates = e3nn.Irreps(f"{vectors.num_irreps}x0e") if vectors.num_irreps else e3nn.Irreps("")
    return scalars + gates + vectors


@functools.lru_cache(maxsize=None)
def normalized_activation(act):
    """``e3nn.normalize_function(act)`` once per process: e3nn computes the constant anew on every call by eager
    operations on 10^6 points (each compiled on first use), in every layer of every trace."""
    return e3nn.normalize_function(act)


def gated(x: e3nn.IrrepsArray) -> e3nn.IrrepsArray:
    """Gate nonlinearity: silu on even scalars, tanh on odd ones, sigmoid gates on l > 0 (each scaled to unit
    second moment on a standard normal input, as e3nn's ``normalize_act``)."""
    act = normalized_activation
    return e3nn.gate(x, even_act=act(jax.nn.silu), odd_act=act(jnp.tanh), even_gate_act=act(jax.nn.sigmoid),
                     odd_gate_act=act(jnp.tanh), normalize_act=False)


@functools.lru_cache(maxsize=64)
def message_paths(irreps_in: e3nn.Irreps, irreps_sh: e3nn.Irreps, irreps_out: e3nn.Irreps):
    """The tensor-product paths of :func:`weighted_messages` and the irreps of their sum.

    Paths are (input chunk, sh chunk, output irrep, multiplicity) of the regrouped inputs in the
    order of ``e3nn.tensor_product(x, sh, filter_ir_out=irreps_out)``; they are returned in that
    function's output order (sorted by output irrep, stable), with each path's offset among the
    output irrep copies (= column of the radial weights). -> (paths, message irreps)
    """
    irreps_in, irreps_sh = e3nn.Irreps(irreps_in).regroup(), e3nn.Irreps(irreps_sh).regroup()
    wanted = {ir for _, ir in e3nn.Irreps(irreps_out)}
    paths = [(i1, i2, ir, mul1 * mul2) for i1, (mul1, ir1) in enumerate(irreps_in)
             for i2, (mul2, ir2) in enumerate(irreps_sh) for ir in ir1 * ir2 if ir in wanted]
    if any(mul2 != 1 for mul2, _ in irreps_sh):
        raise ValueError(f"spherical harmonics must hold each irrep once, got {irreps_sh}")
    ordered, offset = [], 0
    for i1, i2, ir, mul in sorted(paths, key=lambda p: p[2]):  # stable: e3nn's IrrepsArray.sort
        ordered.append((i1, i2, ir, mul, offset))
        offset += mul
    irreps = e3nn.Irreps([(mul, ir) for _, _, ir, mul, _ in ordered]).regroup()
    return tuple(ordered), irreps


def weighted_messages(x: e3nn.IrrepsArray, edge_sh: e3nn.IrrepsArray, weights: jax.Array, senders, receivers,
                      n_nodes: int, irreps_out: e3nn.Irreps, *, unrolled: bool = True) -> e3nn.IrrepsArray:
    """sum over edges j->i of w_ij * (x_j (x) Y(r_ij)), every path with its own radial weight.

    Equal to ``scatter_sum(w * tensor_product(x[senders], edge_sh, filter_ir_out=irreps_out))``
    (component-normalised Clebsch-Gordan paths, e3nn's order of paths and weights), but each path
    takes its weight before the sum per receiver, so the (E, all paths) message array is never
    sorted or gathered for weights. The spherical harmonics are contracted with the Clebsch-Gordan
    coefficients once per (l_in, sh, l_out) into an (E, d_in, d_out) edge matrix A; then

    * ``unrolled`` (default): each output component is a short sum of (E, mul) products written out
      over the input components, which XLA fuses into one elementwise loop per path (on CPU about
      2x faster forward than the batched tiny matrix products; BENCHMARKS.md);
    * otherwise one einsum ``eui,eik,eu->euk`` per path.

    x (N, irreps_in); edge_sh (E, sh irreps); weights (E, num_paths) where num_paths is
    ``message_paths(...)[1].num_irreps``; senders, receivers (E,) -> (n_nodes, message irreps).
    """
    paths, irreps = message_paths(x.irreps, edge_sh.irreps, e3nn.Irreps(irreps_out))
    if weights.shape[-1] != irreps.num_irreps:
        raise ValueError(f"{weights.shape[-1]} radial weights for {irreps.num_irreps} message paths")
    x, edge_sh = x.regroup(), edge_sh.regroup()
    x_edges = [None if c is None else c[senders] for c in x.chunks]  # [E, mul, d_in] each
    sh = [None if c is None else c[:, 0, :] for c in edge_sh.chunks]  # [E, d_sh]
    edge_matrices, sums = {}, []
    for i1, i2, ir, mul, offset in paths:
        if x_edges[i1] is None or sh[i2] is None:
            sums.append(jnp.zeros((n_nodes, mul * ir.dim), x.dtype))
            continue
        l_in = x.irreps[i1].ir.l
        cg = e3nn.clebsch_gordan(l_in, edge_sh.irreps[i2].ir.l, ir.l) * np.sqrt(ir.dim)  # [d_in, d_sh, d_out]
        if (l_in, i2, ir.l) not in edge_matrices:
            edge_matrices[l_in, i2, ir.l] = jnp.einsum("ej,ijk->eik", sh[i2], cg.astype(x.dtype))
        path_sum = functools.partial(_path_sum, coupled=np.abs(cg).sum(axis=1) > 0, receivers=receivers,
                                     n_nodes=n_nodes, unrolled=unrolled)
        # rematerialised: the backward pass recomputes the path's (E, mul, d_out) messages from its inputs
        # instead of storing them (measured faster on CPU: BENCHMARKS.md)
        m = jax.checkpoint(path_sum)(x_edges[i1], edge_matrices[l_in, i2, ir.l], weights[:, offset:offset + mul])
        sums.append(m.reshape(n_nodes, mul * ir.dim))
    return e3nn.IrrepsArray(irreps, jnp.concatenate(sums, axis=-1))


def _path_sum(xe, a, w, *, coupled: np.ndarray, receivers, n_nodes: int, unrolled: bool):
    """One path's messages summed per receiver: sum_e w_eu sum_i xe_eui a_eik -> (n_nodes, mul, d_out).

    xe (E, mul, d_in) sender features; a (E, d_in, d_out) spherical harmonics x CG; w (E, mul);
    coupled (d_in, d_out) bool: which input components reach which output component.
    """
    if unrolled:
        columns = []
        for k in range(a.shape[2]):
            terms = [xe[:, :, i] * a[:, i, k, None] for i in range(a.shape[1]) if coupled[i, k]]
            columns.append(functools.reduce(jnp.add, terms) * w if terms else jnp.zeros_like(w))
        m = jnp.stack(columns, axis=-1)  # [E, mul, d_out]
    else:
        m = jnp.einsum("eui,eik,eu->euk", xe, a, w)
    return jax.ops.segment_sum(m, receivers, n_nodes)


class RadialMLP(hk.Module):
    """Edge radial embedding (E, n) -> (E, sizes[-1]) weights: bias-free linear layers with the silu of
    :func:`normalized_activation` between them (none after the last), each layer's output scaled by
    1/sqrt(fan-in) and its weights drawn from N(0, 1) (e3nn's "path" gradient normalisation). The same
    network and parameter names (``linear_<i>/w``) as ``e3nn.haiku.MultiLayerPerceptron(sizes, jax.nn.silu,
    output_activation=False)``, which recomputes the activation's normalisation by eager operations on
    10^6 points in every layer of every trace; here it is computed once per process."""

    def __init__(self, sizes, name=None):
        super().__init__(name=name)
        self.sizes = tuple(sizes)

    def __call__(self, x: jax.Array) -> jax.Array:
        act = normalized_activation(jax.nn.silu)
        for i, size in enumerate(self.sizes):
            scale = jnp.sqrt(1 / x.shape[-1])
            x = scale * hk.Linear(size, with_bias=False, w_init=hk.initializers.RandomNormal(stddev=1.0),
                                  name=f"linear_{i}")(x)
            if i < len(self.sizes) - 1:
                x = act(x)
        return x


class Interaction(hk.Module):
    """One message-passing layer: x_i' = gate(W1 x_i + W2 sum_j R(r_ij) (W3 x_j) (x) Y(r_ij) / sqrt(k)).

    R(r_ij) is an MLP of the radial embedding that weights every tensor-product path.
    """

    def __init__(self, irreps_out: e3nn.Irreps, *, radial_hidden, avg_num_neighbors: float, name=None):
        super().__init__(name=name)
        self.irreps_out = e3nn.Irreps(irreps_out)
        self.radial_hidden = tuple(radial_hidden)
        self.avg_num_neighbors = avg_num_neighbors

    def __call__(self, x, edge_sh, edge_radial, senders, receivers, edge_mask, species_weights=None):
        """species_weights: None (one self-connection for all elements) or (n_nodes, k) mixing weights."""
        target = with_gate_scalars(self.irreps_out)
        n_nodes = x.shape[0]
        self_linear = e3nn.haiku.Linear(target, name="self_connection", force_irreps_out=True)
        self_connection = self_linear(x) if species_weights is None else self_linear(species_weights, x)  # [n, target]
        h = e3nn.haiku.Linear(x.irreps, name="pre_linear")(x)  # [n_nodes, irreps]
        _, message_irreps = message_paths(h.irreps, edge_sh.irreps, target)
        weights = RadialMLP(self.radial_hidden + (message_irreps.num_irreps,), name="radial_mlp")(
            edge_radial)  # [n_edges, num_paths]
        weights = weights * edge_mask[:, None]
        summed = weighted_messages(h, edge_sh, weights, senders, receivers, n_nodes, target)  # [n_nodes, paths]
        summed = summed / jnp.sqrt(self.avg_num_neighbors)
        out = e3nn.haiku.Linear(target, name="post_linear", force_irreps_out=True)(summed) + self_connection
        return gated(out)  # [n_nodes, irreps_out]


def edge_embedding(config, vectors) -> tuple[e3nn.IrrepsArray, jax.Array]:
    """Edge vectors (E, 3) Angstrom -> spherical harmonics up to ``config.sh_lmax`` (E, sh; component
    normalisation) and the radial basis within ``config.cutoff`` (E, ``config.num_radial_basis``)."""
    edge_sh = e3nn.spherical_harmonics(e3nn.Irreps.spherical_harmonics(config.sh_lmax), vectors,
                                       normalize=True, normalization="component")
    edge_radial = radial_embedding(jnp.linalg.norm(vectors, axis=-1), n=config.num_radial_basis,
                                   cutoff=config.cutoff, p=config.envelope_exponent)
    return edge_sh, edge_radial


class Backbone(hk.Module):
    """Initial node features + ``num_layers`` interactions -> per-atom features ``hidden_irreps``.

    The initial node features are a learned embedding of the species, or (``initial`` given) a linear
    projection of per-atom features computed elsewhere onto the irreps of ``hidden_irreps`` they hold
    (the foundation model's features: :mod:`tensorprop.nn.feature_heads`, readout ``backbone``); the
    species then enter only through those features, so an element rare in the training data is
    represented as the pretrained network sees it, not by an embedding row fitted to a few crystals.
    """

    def __init__(self, config, name=None):
        super().__init__(name=name)
        self.config = config

    def __call__(self, vectors, numbers, senders, receivers, edge_mask, initial=None):
        """
        vectors (E, 3) Angstrom, numbers (N,) int, senders/receivers (E,) int, edge_mask (E,) bool,
        initial None or an IrrepsArray (N, irreps) -> IrrepsArray (N, hidden_irreps).
        """
        cfg = self.config
        hidden = e3nn.Irreps(cfg.hidden_irreps)
        edge_sh, edge_radial = edge_embedding(cfg, vectors)
        if initial is None:
            n_scalars = hidden.filter(keep=["0e"]).num_irreps
            embedding = hk.Embed(NUM_ELEMENTS, n_scalars, name="species_embedding")(numbers)  # [N, n_scalars]
            x = e3nn.IrrepsArray(f"{n_scalars}x0e", embedding)
        else:  # the irreps of hidden_irreps that the features hold (a linear map makes no others)
            x = e3nn.haiku.Linear(hidden, name="feature_projection")(initial)  # [N, <= hidden]
        species_weights = None
        if cfg.species_self_connection:  # [N, k], unit-norm rows so the mixture keeps the layer's scale
            species_weights = hk.Embed(NUM_ELEMENTS, cfg.species_self_connection,
                                       name="self_connection_species")(numbers)
            species_weights = species_weights / jnp.linalg.norm(species_weights, axis=-1, keepdims=True).clip(1e-6)
        for layer in range(cfg.num_layers):
            x = Interaction(hidden, radial_hidden=cfg.radial_hidden, avg_num_neighbors=cfg.avg_num_neighbors,
                            name=f"interaction_{layer}")(x, edge_sh, edge_radial, senders, receivers, edge_mask,
                                                         species_weights)
        return x
