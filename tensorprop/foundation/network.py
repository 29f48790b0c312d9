"""The Nequix interaction network as pure functions over its weights (e3nn-jax).

Nequix (Koker et al., arXiv 2508.16067) is a NequIP-style network: one-hot species in; per layer an
e3nn linear, a tensor product of the neighbours' features with the edge spherical harmonics (l <= 3)
weighted per path by an MLP of a Bessel radial basis (polynomial envelope), a sum over neighbours
divided by sqrt(avg_n_neighbors), a linear plus a self-connection, an RMS layer norm and a gate; a
linear readout of the last layer's scalars gives per-atom energies.

Why plain functions and not haiku like the rest of tensorprop: the network is fixed by a published
checkpoint, never initialised here, so haiku's init/apply and parameter naming would only add a name
mapping between the file and the params; a plain params pytree (:func:`~tensorprop.foundation.
architecture.weight_layout`) is read straight from the file, passes to optax unchanged for fine-tuning,
and the functions can be called from inside a haiku-transformed head (it is just jax code).

Port of Nequix (https://github.com/atomicarchitects/nequix, MIT licence, copyright (c) 2025 Teddy
Koker; the notice is in ``tensorprop/foundation/LICENSE-nequix``). Written from its model source; the
numbers agree with the nequix package to float32 precision (tests/foundation/).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .._lazy import e3nn
from ..nn.backbone import normalized_activation, weighted_messages
from .architecture import NequixArchitecture, layer_linears, linear_map, linear_weight_names

__all__ = ["edge_embedding", "interaction", "node_features", "layers_from", "node_energies"]


def _apply_linear(lin: e3nn.FunctionalLinear, weights: dict, x: e3nn.IrrepsArray) -> e3nn.IrrepsArray:
    """``lin`` with its named weights on every row of x [n, irreps_in] -> [n, irreps_out]."""
    ws = [weights[name] for name, _ in linear_weight_names(lin)]
    x = x.remove_zero_chunks().regroup()
    return e3nn.utils.vmap(lambda row: lin(ws, row))(x)


def _mlp(weights: list, x: jax.Array) -> jax.Array:
    """Bias-free MLP with silu between layers: [e, in] -> [e, out]."""
    for k, w in enumerate(weights):
        x = x @ w
        if k < len(weights) - 1:
            x = jax.nn.silu(x)
    return x


def _rms_layer_norm(weights: list, x: e3nn.IrrepsArray) -> e3nn.IrrepsArray:
    """Equivariant RMS norm over all irreps of a node (each l weighted equally), times a learned
    per-channel scale; no centring, no bias (as Nequix's ``RMSLayerNorm(centering=False)``)."""
    n_irreps = len(x.irreps)
    sq = [jnp.mean(jnp.sum(c**2, axis=-2) / (ir.dim * n_irreps), axis=-1)  # [n]
          for (_, ir), c in zip(x.irreps, x.chunks)]
    inv = jax.lax.rsqrt(sum(sq) + 1e-12)[:, None, None]  # [n, 1, 1]
    chunks = [c * w[:, None] * inv for w, c in zip(weights, x.chunks)]
    return e3nn.from_chunks(x.irreps, chunks, x.shape[:-1], x.dtype)


def edge_embedding(arch: NequixArchitecture, vectors: jax.Array) -> tuple[e3nn.IrrepsArray, jax.Array]:
    """Spherical harmonics [e, 0e+1o+...+lmax] ("component" normalised) and the radial basis [e, n_basis]:
    Bessel functions times the polynomial envelope, zero at and beyond the cutoff (vectors in Angstrom)."""
    sq = jnp.sum(vectors**2, axis=-1)  # [e]
    safe = jnp.where(sq == 0.0, 1.0, sq)
    r = jnp.where(sq == 0.0, 0.0, jnp.sqrt(safe))  # [e]
    n = jnp.arange(1, arch.radial_basis_size + 1, dtype=vectors.dtype) * jnp.pi  # [b]
    rc = arch.cutoff
    bessel = (2.0 / rc) * jnp.where(r[:, None] == 0.0, n / rc,
                                    jnp.sin(n * r[:, None] / rc) / jnp.where(r == 0.0, 1.0, r)[:, None])
    p, x = arch.radial_polynomial_p, r / rc
    envelope = (1.0 - (p + 1.0) * (p + 2.0) / 2.0 * x**p + p * (p + 2.0) * x ** (p + 1.0)
                - p * (p + 1.0) / 2.0 * x ** (p + 2.0)) * (x < 1.0)  # [e]
    sh = e3nn.spherical_harmonics(e3nn.s2_irreps(arch.lmax), vectors, normalize=True, normalization="component")
    return sh, bessel * envelope[:, None]


def interaction(arch: NequixArchitecture, i: int, weights: dict, features: e3nn.IrrepsArray,
                sh: e3nn.IrrepsArray, radial: jax.Array, senders: jax.Array, receivers: jax.Array, *,
                unrolled: bool = False) -> e3nn.IrrepsArray:
    """Interaction layer ``i``: features [n, irreps_in] -> [n, irreps_out] (after the gate).

    sh [e, sh irreps]; radial [e, n_basis] (zero rows for padded edges); senders, receivers [e].
    ``unrolled``: the message sums written out per component (:func:`~tensorprop.nn.backbone.weighted_messages`):
    on CPU the fastest forward pass; under a gradient (forces, fine-tuning) the einsum form (False) runs as fast
    and compiles 2.5x faster (BENCHMARKS.md).
    """
    lin = layer_linears(arch, i)
    x = _apply_linear(lin["linear_1"], weights["linear_1"], features)  # [n, irreps_in]
    # sum over neighbours of tensor_product(x[senders], sh, filter_ir_out=output irreps) * radial weight per path
    summed = weighted_messages(x, sh, _mlp(weights["radial_mlp"], radial), senders, receivers, features.shape[0],
                               arch.layer_irreps(i)[1], unrolled=unrolled)  # [n, tp irreps]
    summed = summed / jnp.sqrt(arch.avg_n_neighbors)
    x = _apply_linear(lin["linear_2"], weights["linear_2"], summed) + \
        _apply_linear(lin["skip"], weights["skip"], features)  # [n, gated irreps]
    if arch.layer_norm:
        x = _rms_layer_norm(weights["layer_norm"], x)
    act = normalized_activation  # e3nn's normalize_act, computed once per process instead of per call
    return e3nn.gate(x, even_act=act(jax.nn.silu), odd_act=act(jax.nn.tanh), even_gate_act=act(jax.nn.silu),
                     odd_gate_act=act(jax.nn.tanh), normalize_act=False)


def node_features(params: dict, arch: NequixArchitecture, vectors: jax.Array, species: jax.Array,
                  senders: jax.Array, receivers: jax.Array, edge_mask: jax.Array | None = None, *,
                  unrolled: bool = False) -> list[e3nn.IrrepsArray]:
    """Hidden node features after each interaction layer.

    Parameters
    ----------
    vectors : [e, 3] edge vectors r_sender - r_receiver (+ image shift), Angstrom.
    species : [n] int species indices (``arch.species_table[numbers]``).
    senders, receivers : [e] int node indices.
    edge_mask : [e] bool, optional; False edges carry no message.
    unrolled : see :func:`interaction`.

    Returns
    -------
    list of ``arch.n_layers`` IrrepsArrays [n, irreps]: ``hidden_irreps`` (e.g. 128x0e+64x1o+32x2e+32x3o)
    after every layer but the last, whose output is the scalars only (128x0e).
    """
    x = e3nn.IrrepsArray(f"{arch.n_species}x0e", jax.nn.one_hot(species, arch.n_species, dtype=vectors.dtype))
    return layers_from(arch, 0, params["layers"], x, vectors, senders, receivers, edge_mask, unrolled=unrolled)


def layers_from(arch: NequixArchitecture, first: int, layer_weights, features: e3nn.IrrepsArray, vectors: jax.Array,
                senders: jax.Array, receivers: jax.Array, edge_mask: jax.Array | None = None, *,
                unrolled: bool = False) -> list[e3nn.IrrepsArray]:
    """Interaction layers ``first`` ... ``arch.n_layers - 1`` from ``features`` [n, irreps]: the one-hot species
    (``first`` = 0) or the output of layer ``first - 1``; ``layer_weights[i]`` are layer i's weights (a list of
    all layers', or a dict of those from ``first`` on: the fine-tuned ones). Other arguments as
    :func:`node_features`. -> the outputs of the layers run, in order."""
    sh, radial = edge_embedding(arch, vectors)
    if edge_mask is not None:
        radial = jnp.where(edge_mask[:, None], radial, 0.0)
    out, x = [], features
    for i in range(first, arch.n_layers):
        x = interaction(arch, i, layer_weights[i], x, sh, radial, senders, receivers, unrolled=unrolled)
        out.append(x)
    return out


def node_energies(params: dict, arch: NequixArchitecture, features: e3nn.IrrepsArray, species: jax.Array
                  ) -> jax.Array:
    """Per-atom energies [n] in eV from the last layer's scalars [n, n x 0e]: linear readout, times
    ``scale`` plus ``shift``, plus the isolated-atom energy of the species."""
    readout = linear_map(features.irreps, "0e")
    e = _apply_linear(readout, params["readout"], features).array[:, 0]  # [n]
    return e * arch.scale + arch.shift + jnp.asarray(params["atom_energies"])[species]
