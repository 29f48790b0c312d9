"""Rank-2 Cartesian tensors <-> e3nn irreps, and the constraints Z* and eps_inf obey.

A Born effective charge Z*[a, b] = dP_a/du_b is the product of two polar vectors,
1o x 1o = 0e + 1e + 2e (9 numbers, not symmetric): the trace (0e), the antisymmetric
part as a pseudovector (1e) and the symmetric traceless part (2e). The dielectric tensor
is symmetric, 0e + 2e (6 numbers). Both bases come from e3nn's reduced tensor products
and are orthonormal, so the inverse map is the transpose. The Cartesian index order is
(x, y, z), the same as e3nn's ``1o`` (its Wigner D of a vector is the rotation matrix).

Examples
--------
>>> import numpy as np
>>> z = np.arange(9.0).reshape(3, 3)
>>> x = cartesian_to_irreps(z)
>>> str(x.irreps)
'1x0e+1x1e+1x2e'
>>> bool(np.allclose(irreps_to_cartesian(x), z, atol=1e-5))
True
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from .._lazy import e3nn

__all__ = [
    "BORN_IRREPS",
    "EPSILON_IRREPS",
    "cartesian_to_irreps",
    "irreps_to_cartesian",
    "apply_acoustic_sum_rule",
    "epsilon_from_log",
    "bound_log_epsilon",
    "log_epsilon",
    "antisymmetric_pseudovector",
]

#: irreps of Z* (1o x 1o, 9 numbers) and of eps_inf's symmetric part (6 numbers); strings, so that defining them
#: imports no e3nn-jax (:mod:`tensorprop._lazy`); ``e3nn.Irreps`` compares equal to them
BORN_IRREPS = "0e + 1e + 2e"
EPSILON_IRREPS = "0e + 2e"


@functools.cache
def _basis(symmetric: bool) -> np.ndarray:
    """Orthonormal change of basis, shape (3, 3, 9) or (3, 3, 6), Cartesian (x, y, z)."""
    if symmetric:
        q = e3nn.reduced_symmetric_tensor_product_basis("1o", 2)
    else:
        q = e3nn.reduced_tensor_product_basis("ij", i="1o", j="1o")
    return np.asarray(q.array, dtype=np.float64)


def cartesian_to_irreps(tensor, *, symmetric: bool = False) -> e3nn.IrrepsArray:
    """(..., 3, 3) Cartesian tensor -> IrrepsArray (..., 9) ``0e+1e+2e`` or (..., 6) ``0e+2e``.

    With ``symmetric=True`` only the symmetric part of ``tensor`` is kept.
    """
    tensor = jnp.asarray(tensor)
    q = jnp.asarray(_basis(symmetric), dtype=tensor.dtype)
    irreps = EPSILON_IRREPS if symmetric else BORN_IRREPS
    return e3nn.IrrepsArray(irreps, jnp.einsum("...ab,abk->...k", tensor, q))


def irreps_to_cartesian(x, *, symmetric: bool | None = None) -> jax.Array:
    """IrrepsArray (..., 9) ``0e+1e+2e`` or (..., 6) ``0e+2e`` -> (..., 3, 3) Cartesian tensor.

    ``symmetric`` is read off the irreps of an IrrepsArray; give it for a plain array.
    """
    if isinstance(x, e3nn.IrrepsArray):
        if x.irreps not in (BORN_IRREPS, EPSILON_IRREPS):
            raise ValueError(f"expected irreps {BORN_IRREPS} or {EPSILON_IRREPS}, got {x.irreps}")
        symmetric = x.irreps == EPSILON_IRREPS
        x = x.array
    if symmetric is None:
        raise ValueError("give symmetric=True/False for a plain array")
    x = jnp.asarray(x)
    q = jnp.asarray(_basis(symmetric), dtype=x.dtype)
    return jnp.einsum("...k,abk->...ab", x, q)


def apply_acoustic_sum_rule(born_charges, node_graph, node_mask, n_graphs: int, weights=None) -> jax.Array:
    """Remove each structure's total Z* so that the sum over its atoms is exactly zero.

    Parameters
    ----------
    born_charges : (n_nodes, 3, 3)
        Raw per-atom tensors (padded nodes allowed).
    node_graph : (n_nodes,) int
        Index of the structure each node belongs to.
    node_mask : (n_nodes,) bool
        True for real atoms; padded nodes neither contribute nor receive.
    n_graphs : int
        Number of structures (graph slots) in the batch.
    weights : (n_nodes,) positive, optional
        Share of the correction each atom takes: atom i gets ``w_i / sum_j w_j`` of its
        structure's total. None (default): equal shares, i.e. the structure's mean is
        subtracted. Learned weights must be invariant scalars (``model.sum_rule: weighted``).

    Returns
    -------
    (n_nodes, 3, 3) with ``sum_{i in g} Z*_i = 0`` for every structure g.
    With invariant weights the correction is equivariant, permutation invariant and the
    same for any supercell of the same crystal (total and weight sum both scale with it).
    """
    m = node_mask.astype(born_charges.dtype)
    w = m if weights is None else weights.astype(born_charges.dtype) * m
    total = jax.ops.segment_sum(born_charges * m[:, None, None], node_graph, num_segments=n_graphs)
    w_sum = jax.ops.segment_sum(w, node_graph, num_segments=n_graphs)
    share = w / jnp.where(w_sum > 0, w_sum, 1.0)[node_graph]
    return (born_charges - share[:, None, None] * total[node_graph]) * m[:, None, None]


LOG_EPSILON_BOUND = 20.0  # |logm(eps - I)|_F is softly kept below this (eps - 1 < 5e8)


def bound_log_epsilon(s, bound: float = LOG_EPSILON_BOUND) -> jax.Array:
    """Softly rescale symmetric S (..., 3, 3) so that its Frobenius norm stays below ``bound``.

    S -> S * b tanh(|S|/b) / |S|: the identity for |S| << b (< 1.3% change at |S| = 4,
    i.e. eps_inf ~ 11), equivariant because the norm is invariant, and it keeps expm
    finite in float32 for any weights.
    """
    n2 = jnp.sum(s * s, axis=(-2, -1), keepdims=True)
    n = jnp.sqrt(jnp.where(n2 > 0, n2, 1.0))
    ratio = jnp.where(n2 > 0, bound * jnp.tanh(n / bound) / n, 1.0)
    return s * ratio


def epsilon_from_log(s) -> jax.Array:
    """eps = I + expm(S) for symmetric S (..., 3, 3): symmetric with eigenvalues > 1.

    expm commutes with rotations (expm(R S R^T) = R expm(S) R^T), so the map is
    equivariant, and unlike an eigendecomposition its gradient is finite for the
    degenerate eigenvalues of cubic and uniaxial crystals. Use :func:`bound_log_epsilon`
    first when S comes from a network.
    """
    s = 0.5 * (s + jnp.swapaxes(s, -1, -2))
    return jnp.eye(3, dtype=s.dtype) + jax.scipy.linalg.expm(s)


def log_epsilon(eps: np.ndarray) -> np.ndarray:
    """Inverse of :func:`epsilon_from_log` for labels: S = logm(eps - I), numpy, (..., 3, 3).

    Eigenvalues of eps at or below 1 (unphysical) are clipped to 1 + 1e-6.
    """
    eps = 0.5 * (eps + np.swapaxes(eps, -1, -2))
    w, v = np.linalg.eigh(eps - np.eye(3))
    w = np.log(np.maximum(w, 1e-6))
    return np.einsum("...ik,...k,...jk->...ij", v, w, v)


def antisymmetric_pseudovector(tensor) -> jax.Array:
    """The 1e part of a rank-2 tensor as a Cartesian pseudovector w, (..., 3).

    ``w_a = 1/2 eps_abc T_bc``, so the antisymmetric part is ``(T - T^T)/2 = eps_abc w_a``
    (e.g. its [y, z] entry is w_x). It transforms as ``w -> det(R) R w``.
    """
    t = jnp.asarray(tensor)
    return 0.5 * jnp.stack(
        [t[..., 1, 2] - t[..., 2, 1], t[..., 2, 0] - t[..., 0, 2], t[..., 0, 1] - t[..., 1, 0]], axis=-1
    )
