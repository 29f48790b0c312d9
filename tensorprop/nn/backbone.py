"""NequIP-style interaction network in e3nn-jax + haiku.

The network takes plain arrays (edge vectors, atomic numbers, senders, receivers, masks)
and returns per-atom irreps features; it knows nothing of Born charges or cells.
"""

from __future__ import annotations

import e3nn_jax as e3nn
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

from .radial import radial_embedding

__all__ = ["with_gate_scalars", "gated", "Interaction", "Backbone", "NUM_ELEMENTS"]

NUM_ELEMENTS = 119  # embedding rows, indexed by atomic number (0 = padding)


def with_gate_scalars(irreps: e3nn.Irreps) -> e3nn.Irreps:
    """Irreps to produce before :func:`gated`: scalars, then one 0e gate per non-scalar, then non-scalars."""
    irreps = e3nn.Irreps(irreps)
    scalars = e3nn.Irreps([(m, ir) for m, ir in irreps if ir.l == 0])
    vectors = e3nn.Irreps([(m, ir) for m, ir in irreps if ir.l > 0])
    gates = e3nn.Irreps(f"{vectors.num_irreps}x0e") if vectors.num_irreps else e3nn.Irreps("")
    return scalars + gates + vectors


def gated(x: e3nn.IrrepsArray) -> e3nn.IrrepsArray:
    """Gate nonlinearity: silu on even scalars, tanh on odd ones, sigmoid gates on l > 0."""
    return e3nn.gate(x, even_act=jax.nn.silu, odd_act=jnp.tanh, even_gate_act=jax.nn.sigmoid)


def _scale_per_irrep(x: e3nn.IrrepsArray, weights: jax.Array) -> e3nn.IrrepsArray:
    """Multiply each irrep copy of x (n, irreps) by its own weight (n, num_irreps)."""
    index = np.repeat(np.arange(x.irreps.num_irreps), [ir.dim for mul, ir in x.irreps for _ in range(mul)])
    return e3nn.IrrepsArray(x.irreps, x.array * weights[:, index])


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
        messages = e3nn.tensor_product(h[senders], edge_sh, filter_ir_out=target)  # [n_edges, paths]
        weights = e3nn.haiku.MultiLayerPerceptron(
            self.radial_hidden + (messages.irreps.num_irreps,), jax.nn.silu, output_activation=False,
            name="radial_mlp")(edge_radial)  # [n_edges, num_paths]
        weights = weights * edge_mask[:, None]
        messages = _scale_per_irrep(messages, weights)
        summed = e3nn.scatter_sum(messages, dst=receivers, output_size=n_nodes)  # [n_nodes, paths]
        summed = summed / jnp.sqrt(self.avg_num_neighbors)
        out = e3nn.haiku.Linear(target, name="post_linear", force_irreps_out=True)(summed) + self_connection
        return gated(out)  # [n_nodes, irreps_out]


class Backbone(hk.Module):
    """Species embedding + ``num_layers`` interactions -> per-atom features ``hidden_irreps``."""

    def __init__(self, config, name=None):
        super().__init__(name=name)
        self.config = config

    def __call__(self, vectors, numbers, senders, receivers, edge_mask):
        """
        vectors (E, 3) Angstrom, numbers (N,) int, senders/receivers (E,) int, edge_mask (E,) bool
        -> IrrepsArray (N, hidden_irreps).
        """
        cfg = self.config
        hidden = e3nn.Irreps(cfg.hidden_irreps)
        lengths = jnp.linalg.norm(vectors, axis=-1)  # [E]
        edge_sh = e3nn.spherical_harmonics(e3nn.Irreps.spherical_harmonics(cfg.sh_lmax), vectors,
                                           normalize=True, normalization="component")  # [E, sh]
        edge_radial = radial_embedding(lengths, n=cfg.num_radial_basis, cutoff=cfg.cutoff,
                                       p=cfg.envelope_exponent)  # [E, n_basis]
        n_scalars = hidden.filter(keep=["0e"]).num_irreps
        embedding = hk.Embed(NUM_ELEMENTS, n_scalars, name="species_embedding")(numbers)  # [N, n_scalars]
        x = e3nn.IrrepsArray(f"{n_scalars}x0e", embedding)
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
