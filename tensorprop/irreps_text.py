"""Sums of irreps as configs and checkpoints write them (``32x0e + 16x1o``), read without e3nn-jax.

Checking a config or reading a foundation checkpoint happens at every model load, and importing e3nn-jax costs
about a second (:mod:`tensorprop._lazy`). The plain form (terms ``[mul x] l p`` with parity ``e``/``o``, joined by
``+``) is read here; anything else returns None and the caller hands it to ``e3nn.Irreps``, which parses it or
says why not.
"""

from __future__ import annotations

import re

__all__ = ["plain_irreps", "irreps_terms", "normalized_irreps", "irreps_dim"]

_TERM = re.compile(r"\s*(?:(\d+)\s*x\s*)?(\d+)([eo])\s*")


def plain_irreps(text) -> list[tuple[int, str]] | None:
    """``"32x0e + 16x1o"`` -> ``[(32, "0e"), (16, "1o")]`` (multiplicity 1 where none is written); None when
    ``text`` is not a non-empty string of the plain form."""
    if not isinstance(text, str) or not text.strip():
        return None
    out = []
    for term in text.split("+"):
        match = _TERM.fullmatch(term)
        if match is None:
            return None
        out.append((int(match.group(1) or 1), f"{int(match.group(2))}{match.group(3)}"))
    return out


def irreps_terms(text) -> list[tuple[int, str]]:
    """:func:`plain_irreps`, or for any other form e3nn-jax's reading of ``text`` as (multiplicity, irrep) pairs (its
    ValueError for what it cannot read): the one place that falls back to e3nn-jax."""
    terms = plain_irreps(text)
    if terms is None:
        import e3nn_jax as e3nn  # lazy: ~1 s of imports, only for irreps outside the plain form

        terms = [(mul, str(ir)) for mul, ir in e3nn.Irreps(text)]
    return terms


def normalized_irreps(text) -> str:
    """``text`` as ``str(e3nn.Irreps(text))`` writes it (``"32x0e+16x1o"``; e3nn's own string, e.g. ``Irreps()``
    for no irreps, for what is not plain)."""
    terms = plain_irreps(text)
    if terms is None:
        import e3nn_jax as e3nn  # lazy: ~1 s of imports, only for irreps outside the plain form

        return str(e3nn.Irreps(text))
    return "+".join(f"{mul}x{ir}" for mul, ir in terms)


def irreps_dim(text) -> int:
    """The number of components of ``text`` (``e3nn.Irreps(text).dim``: sum of multiplicity x (2l + 1))."""
    return sum(mul * (2 * int(ir[:-1]) + 1) for mul, ir in irreps_terms(text))
