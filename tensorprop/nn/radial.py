"""Radial embedding of edge lengths: Bessel functions times a smooth cutoff envelope."""

from __future__ import annotations

import jax.numpy as jnp

__all__ = ["polynomial_envelope", "bessel_basis", "radial_embedding"]


def polynomial_envelope(x, p: int = 6):
    """NequIP's polynomial cutoff u(x), x = r / r_cut.

    u(0) = 1, and u, u' and u'' vanish at x = 1, so messages fade smoothly as neighbours
    cross the cutoff; u = 0 for x >= 1.

    u(x) = 1 - (p+1)(p+2)/2 x^p + p(p+2) x^(p+1) - p(p+1)/2 x^(p+2)
    """
    u = 1.0 - 0.5 * (p + 1) * (p + 2) * x**p + p * (p + 2) * x ** (p + 1) - 0.5 * p * (p + 1) * x ** (p + 2)
    return jnp.where(x < 1.0, u, 0.0)


def bessel_basis(r, n: int, cutoff: float):
    """sqrt(2/c) sin(k pi r / c) / r for k = 1..n; r > 0 (Angstrom) -> (..., n)."""
    k = jnp.arange(1, n + 1, dtype=r.dtype)
    r = r[..., None]
    return jnp.sqrt(2.0 / cutoff) * jnp.sin(k * jnp.pi * r / cutoff) / r


def radial_embedding(r, *, n: int, cutoff: float, p: int):
    """(...,) edge lengths, Angstrom -> (..., n) Bessel basis times the envelope."""
    return bessel_basis(r, n, cutoff) * polynomial_envelope(r / cutoff, p)[..., None]
