"""Writers of NAC parameters in phonopy's two formats: the BORN file and the yaml ``nac:`` block.

BORN (read by ``phonopy --nac`` / ``phonopy.load(born_filename=...)``)::

    14.39965173                                   <- NAC unit conversion factor
    eps_xx eps_xy eps_xz eps_yx ... eps_zz        <- eps_inf, 9 numbers row by row
    Z_xx Z_xy Z_xz Z_yx ... Z_zz                  <- one line per symmetry-independent atom
    ...                                              of the primitive cell, Z[a, b] = dP_a/du_b

phonopy expands the independent atoms to the whole primitive cell by symmetry, so a
BORN file can only hold symmetric tensors; :func:`write_born` symmetrises (as phonopy's
own writer does) and lists the independent atoms that
:func:`phonopy.structure.symmetry.elaborate_borns_and_epsilon` names, which are those
phonopy's parser expects.

The yaml block (as in ``phonopy.yaml`` / ``phonopy_disp.yaml``) lists every atom::

    nac:
      born_effective_charge:
      - # 1 (Na)
        - [ Zxx, Zxy, Zxz ]
        ...
      dielectric_constant:
        - [ ... ]
      unit_conversion_factor: 14.399652
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import IO

import numpy as np

from tensorprop.phonopy.nac import NacResult, default_nac_factor

__all__ = ["born_lines", "write_born", "nac_yaml_block", "independent_atoms"]

_PHONOPY_BORN_WARNING = "Symmetry of Born effective charge is largely broken"


def _unpack(nac, primitive):
    """(born (n,3,3), eps (3,3), factor or None, primitive) of a NacResult or a nac_params dict."""

    if isinstance(nac, NacResult):
        return nac.born, nac.dielectric, nac.factor, nac.primitive if primitive is None else primitive
    try:
        born = np.asarray(nac["born"], dtype=np.float64)
        eps = np.asarray(nac["dielectric"], dtype=np.float64).reshape(3, 3)
    except (KeyError, TypeError) as exc:
        raise TypeError(f"expected a NacResult or a dict with 'born' and 'dielectric': {exc}") from None
    factor = nac.get("factor") if hasattr(nac, "get") else None
    return born.reshape(-1, 3, 3), eps, None if factor is None else float(factor), primitive


def independent_atoms(primitive, born, epsilon, symprec: float = 1e-5):
    """Symmetry-independent atoms of the primitive cell and their symmetrised tensors.

    Parameters
    ----------
    primitive : PhonopyAtoms
        phonopy's primitive cell.
    born : (n_prim, 3, 3) array_like
        Born charges of every atom of ``primitive``, e.
    epsilon : (3, 3) array_like
    symprec : float
        Symmetry tolerance (length unit of ``primitive``).

    Returns
    -------
    indices : (n_indep,) ndarray of int
        0-based indices into ``primitive`` of the atoms a BORN file lists, in order.
    born_indep : (n_indep, 3, 3) ndarray
        Their symmetrised Born charges, e.
    epsilon : (3, 3) ndarray
        Symmetrised eps_inf.
    """
    from phonopy.structure.symmetry import elaborate_borns_and_epsilon

    born = np.asarray(born, dtype=np.float64)
    if born.shape != (len(primitive), 3, 3):
        raise ValueError(f"born has shape {born.shape}; the primitive cell has {len(primitive)} atoms")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_PHONOPY_BORN_WARNING)
        born_indep, eps, indices = elaborate_borns_and_epsilon(
            primitive, born, np.asarray(epsilon, dtype=np.float64), symmetrize_tensors=True, symprec=symprec)
    return np.asarray(indices, dtype=int), np.asarray(born_indep), np.asarray(eps)


def born_lines(nac, primitive=None, symprec: float = 1e-5, factor: float | None = None) -> list[str]:
    """The lines of a BORN file (without newlines).

    Parameters
    ----------
    nac : NacResult or dict
        :class:`~tensorprop.phonopy.nac.NacResult`, or a ``nac_params`` dict with ``born``
        (n_prim, 3, 3) e and ``dielectric`` (3, 3), optionally ``factor``.
    primitive : PhonopyAtoms, optional
        phonopy's primitive cell of ``born``; taken from a NacResult when omitted.
    symprec : float
        Symmetry tolerance.
    factor : float, optional
        NAC unit conversion factor for line 1; default the one in ``nac``, else phonopy's
        VASP-like default (:func:`~tensorprop.phonopy.nac.default_nac_factor`).
    """

    born, eps, nac_factor, primitive = _unpack(nac, primitive)
    if primitive is None:
        raise TypeError("a primitive cell (PhonopyAtoms) is needed to write a BORN file from a nac_params dict")
    if factor is None:
        factor = default_nac_factor() if nac_factor is None else nac_factor
    _, born_indep, eps_sym = independent_atoms(primitive, born, eps, symprec=symprec)
    lines = [f"{float(factor):.8f}", _numbers(eps_sym)]
    lines += [_numbers(z) for z in born_indep]
    return lines


def _numbers(tensor) -> str:
    """9 numbers of a 3x3 tensor, row by row, 8 decimals, no negative zeros."""
    return " ".join(f"{round(float(x), 8) + 0.0:14.8f}" for x in np.asarray(tensor).reshape(9))


def write_born(path_or_stream: str | os.PathLike | IO[str], nac, primitive=None, symprec: float = 1e-5,
               factor: float | None = None) -> str:
    """Write a BORN file that phonopy reads.

    Parameters
    ----------
    path_or_stream : str, PathLike or text stream
        Where to write (a stream is not closed).
    nac, primitive, symprec, factor
        See :func:`born_lines`.

    Returns
    -------
    str
        The text written.
    """
    text = "\n".join(born_lines(nac, primitive, symprec=symprec, factor=factor)) + "\n"
    if isinstance(path_or_stream, (str, os.PathLike)):
        Path(path_or_stream).write_text(text)
    else:
        path_or_stream.write(text)
    return text


def _row(v) -> str:
    return "[ " + ", ".join(f"{round(float(x), 15) + 0.0:19.15f}" for x in v) + " ]"


def nac_yaml_block(nac, primitive=None) -> str:
    """phonopy-yaml ``nac:`` block with the Born charges of every atom of the primitive cell.

    The keys are those phonopy's ``PhonopyYaml`` reads and writes:
    ``born_effective_charge`` (one 3x3 per atom, rows ``Z[a, :]``), ``dielectric_constant``
    and ``unit_conversion_factor``. Append the block to a ``phonopy.yaml`` (that has none)
    and ``phonopy.load`` picks it up.

    Parameters
    ----------
    nac : NacResult or dict
        See :func:`born_lines`. No symmetrisation is applied here.
    primitive : PhonopyAtoms, optional
        Only used for the chemical symbols in the comments.

    Returns
    -------
    str
        The block, ending with a newline.
    """
    born, eps, factor, primitive = _unpack(nac, primitive)
    symbols = list(primitive.symbols) if primitive is not None and len(primitive) == len(born) else None
    out = io.StringIO()
    out.write("nac:\n  born_effective_charge:\n")
    for i, z in enumerate(born):
        out.write(f"  - # {i + 1}" + (f" ({symbols[i]})" if symbols else "") + "\n")
        for row in z:
            out.write(f"    - {_row(row)}\n")
    out.write("  dielectric_constant:\n")
    for row in eps:
        out.write(f"    - {_row(row)}\n")
    if factor is not None:
        out.write(f"  unit_conversion_factor: {float(factor):.8f}\n")
    return out.getvalue()
