"""Phonon frequencies at Gamma and along band paths, with and without NAC, and their plot.

Frequencies are returned in cm^-1 (phonopy computes THz; 1 THz = 33.35641 cm^-1, phonopy's
``THzToCm``). Every function here sets ``phonon.nac_params`` only for the time of its
computation and restores the previous value afterwards.

At q = 0 the NAC term depends on the direction from which q approaches Gamma:
:func:`gamma_frequencies` passes it to phonopy as ``nac_q_direction``. Directions are
Cartesian by default (``(1, 0, 0)`` is x), or, with ``reduced=True``, in reduced
coordinates of the primitive reciprocal lattice as phonopy's ``nac_q_direction`` /
``Q_DIRECTION`` take them.
"""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

__all__ = ["XYZ", "thz_to_cm", "GammaModes", "gamma_modes", "gamma_frequencies", "direction_label",
           "BandData", "band_path", "band_structure", "plot_bands"]

#: the Cartesian axes, the default q directions at Gamma
XYZ = ((1, 0, 0), (0, 1, 0), (0, 0, 1))
_AXIS_NAMES = {(1.0, 0.0, 0.0): "x", (0.0, 1.0, 0.0): "y", (0.0, 0.0, 1.0): "z"}


def thz_to_cm() -> float:
    """phonopy's conversion factor from THz to cm^-1 (33.3564...)."""
    try:
        from phonopy.physical_units import get_physical_units

        return float(get_physical_units().THzToCm)
    except ImportError:  # phonopy < 2.38
        from phonopy.units import THzToCm

        return float(THzToCm)


def direction_label(direction, reduced: bool = False) -> str:
    """``"x"``, ``"y"``, ``"z"`` for the Cartesian axes, else e.g. ``"[1,1,0]"`` (``"[1,0,0]*"`` when reduced)."""
    key = tuple(float(x) for x in np.asarray(direction, dtype=float).reshape(3))
    if not reduced and key in _AXIS_NAMES:
        return _AXIS_NAMES[key]
    text = "[" + ",".join(f"{x:g}" for x in key) + "]"
    return text + "*" if reduced else text


@contextlib.contextmanager
def _nac_set(phonon, nac_params):
    """Temporarily set ``phonon.nac_params``."""
    previous = phonon.nac_params
    phonon.nac_params = None if nac_params is None else dict(nac_params)
    try:
        yield phonon
    finally:
        phonon.nac_params = previous


@dataclasses.dataclass(frozen=True, eq=False)
class GammaModes:
    """Phonon modes at q = 0 approached along one direction.

    Attributes
    ----------
    direction : (3,) ndarray
        q direction as given (Cartesian unless ``reduced``).
    reduced : bool
        Whether ``direction`` is in reduced reciprocal coordinates.
    frequencies : (3 n_prim,) ndarray
        Frequencies, cm^-1, ascending (imaginary ones negative).
    lo_weight : (3 n_prim,) ndarray
        Share of each mode in the longitudinal polarisation along q: |<e_j|v>|^2 / |v|^2 with
        v_(i,b) = sum_a qhat_a Z*_i[a, b] / sqrt(m_i). Sums to 1 over the modes; 0 for
        transverse and non-polar modes, and everywhere without NAC.
    """

    direction: np.ndarray
    reduced: bool
    frequencies: np.ndarray
    lo_weight: np.ndarray

    LO_THRESHOLD = 1e-4

    @property
    def lo_mask(self) -> np.ndarray:
        """(3 n_prim,) bool: modes with a longitudinal polar component (LO modes)."""
        return self.lo_weight > self.LO_THRESHOLD

    @property
    def lo(self) -> np.ndarray:
        """Frequencies of the LO modes, cm^-1."""
        return self.frequencies[self.lo_mask]

    @property
    def lo_max(self) -> float | None:
        """Highest LO frequency, cm^-1 (None without NAC)."""
        return float(self.lo.max()) if self.lo.size else None

    def to_dict(self) -> dict:
        return {"direction": self.direction.tolist(), "reduced": self.reduced,
                "frequencies": [round(float(f), 4) for f in self.frequencies],
                "lo": [round(float(f), 4) for f in self.lo], "lo_max": self.lo_max}


def gamma_modes(phonon, nac_params, directions: Sequence = XYZ, reduced: bool = False) -> dict:
    """Modes at Gamma for each q direction, with their LO character.

    Parameters
    ----------
    phonon : phonopy.Phonopy
        With force constants.
    nac_params : dict or None
        phonopy's ``{"born", "dielectric", "factor"}``; None for no NAC.
    directions : sequence of (3,) array_like
        q directions, Cartesian (default) or reduced (``reduced=True``).
    reduced : bool

    Returns
    -------
    dict
        ``tuple(direction) -> GammaModes``.
    """
    factor_cm = thz_to_cm()
    cell = np.asarray(phonon.primitive.cell, dtype=float)
    masses = np.asarray(phonon.primitive.masses, dtype=float)
    out = {}
    with _nac_set(phonon, nac_params):
        dm = phonon.dynamical_matrix
        born = getattr(dm, "born", None) if nac_params is not None else None  # what phonopy uses (symmetrised)
        for d in directions:
            d = np.asarray(d, dtype=float).reshape(3)
            if not np.linalg.norm(d) > 0:
                raise ValueError(f"q direction {d} has zero length")
            q_red = d if reduced else cell @ d  # reduced q of a Cartesian q (lattice vectors as rows)
            q_cart = np.linalg.inv(cell) @ q_red
            q_hat = q_cart / np.linalg.norm(q_cart)
            phonon.run_qpoints([[0.0, 0.0, 0.0]], with_eigenvectors=True,
                               nac_q_direction=None if nac_params is None else q_red)
            freqs = np.asarray(phonon.qpoints.frequencies[0], dtype=float) * factor_cm
            if born is None:
                weight = np.zeros_like(freqs)
            else:
                vecs = np.asarray(phonon.qpoints.eigenvectors[0])  # columns: mass-weighted modes
                v = (np.einsum("a,iab->ib", q_hat, np.asarray(born)) / np.sqrt(masses)[:, None]).reshape(-1)
                norm = float(v @ v)
                weight = np.abs(v @ vecs) ** 2 / norm if norm > 0 else np.zeros_like(freqs)
            out[tuple(d.tolist())] = GammaModes(direction=d, reduced=bool(reduced), frequencies=freqs,
                                                lo_weight=np.asarray(weight, dtype=float))
    return out


def gamma_frequencies(phonon, nac_params, directions: Sequence = XYZ, reduced: bool = False) -> dict:
    """Frequencies at q = 0 approached along each direction, cm^-1.

    Parameters
    ----------
    phonon : phonopy.Phonopy
        With force constants.
    nac_params : dict or None
        phonopy's ``{"born", "dielectric", "factor"}`` (e.g. from
        :func:`~tensorprop.phonopy.nac.nac_params`); None for no NAC.
    directions : sequence of (3,) array_like
        q directions; default x, y, z (Cartesian).
    reduced : bool
        Directions in reduced reciprocal coordinates (phonopy's ``nac_q_direction``).

    Returns
    -------
    dict
        ``tuple(direction) -> (3 n_prim,) ndarray`` of frequencies, cm^-1, ascending.
    """
    return {k: m.frequencies for k, m in gamma_modes(phonon, nac_params, directions, reduced).items()}


@dataclasses.dataclass(frozen=True, eq=False)
class BandData:
    """Phonon bands along a path of straight segments.

    Attributes
    ----------
    distances : list of (nq,) ndarray
        Path length at each q-point, 1/Angstrom (phonopy's, without 2 pi), continuous over segments.
    frequencies : list of (nq, 3 n_prim) ndarray
        cm^-1.
    qpoints : list of (nq, 3) ndarray
        Reduced coordinates of the primitive reciprocal lattice.
    labels : list of str
        Labels of the segment ends (phonopy's convention: one per joint, two at a jump).
    path_connections : list of bool
        Whether each segment continues into the next one.
    """

    distances: list
    frequencies: list
    qpoints: list
    labels: list
    path_connections: list

    def ticks(self) -> tuple[list[float], list[str]]:
        """Tick positions (path distance) and labels; ``"A|B"`` where the path jumps."""
        positions = [float(self.distances[0][0])]
        names = []
        labels = list(self.labels)
        k = 0
        names.append(labels[k])
        k += 1
        for seg, connected in enumerate(self.path_connections):
            positions.append(float(self.distances[seg][-1]))
            if connected or seg == len(self.path_connections) - 1:
                names.append(labels[k])
                k += 1
            else:
                names.append(f"{labels[k]}|{labels[k + 1]}")
                k += 2
        return positions, names


def band_path(primitive, npoints: int = 51):
    """High-symmetry band path of seekpath (HPKOT), in phonopy's primitive reciprocal coordinates.

    seekpath's path is defined on its own standardised primitive cell; its points are
    transformed into the reduced coordinates of ``primitive`` itself (seekpath's
    ``get_path_orig_cell``), so the path is right also for non-standard primitive cells.

    Parameters
    ----------
    primitive : PhonopyAtoms
    npoints : int
        q-points on the longest segment (end points included); other segments get
        proportionally fewer, at least 2.

    Returns
    -------
    paths : list of (nq, 3) ndarray
    labels : list of str
    path_connections : list of bool
    """
    import seekpath

    res = seekpath.get_path_orig_cell((np.asarray(primitive.cell), np.asarray(primitive.scaled_positions),
                                       np.asarray(primitive.numbers)))
    coords = {k: np.asarray(v, dtype=float) for k, v in res["point_coords"].items()}
    rec = np.linalg.inv(np.asarray(primitive.cell, dtype=float))  # columns: reciprocal vectors (no 2 pi)
    segments = [(a, b) for a, b in res["path"]]
    lengths = [np.linalg.norm(rec @ (coords[b] - coords[a])) for a, b in segments]
    longest = max(lengths)
    paths = []
    for (a, b), length in zip(segments, lengths):
        n = max(2, int(round(npoints * length / longest)))
        paths.append(coords[a] + np.linspace(0.0, 1.0, n)[:, None] * (coords[b] - coords[a]))
    labels: list[str] = []
    connections: list[bool] = []
    for i, (a, b) in enumerate(segments):
        if i == 0:
            labels.append(a)
        elif segments[i - 1][1] != a:
            labels.append(a)
        connects = i + 1 < len(segments) and segments[i + 1][0] == b
        connections.append(connects)
        labels.append(b)
    labels = ["\u0393" if lab.startswith("GAMMA") else lab.replace("_", "") for lab in labels]
    return paths, labels, connections


def band_structure(phonon, nac_params, npoints: int = 51) -> BandData:
    """Phonon bands along seekpath's high-symmetry path (:func:`band_path`).

    Parameters
    ----------
    phonon : phonopy.Phonopy
        With force constants.
    nac_params : dict or None
        NAC parameters, or None for none. Near Gamma phonopy takes the NAC direction
        from the path.
    npoints : int
        q-points on the longest segment.

    Returns
    -------
    BandData
        Frequencies in cm^-1.
    """
    paths, labels, connections = band_path(phonon.primitive, npoints)
    factor_cm = thz_to_cm()
    with _nac_set(phonon, nac_params):
        bs = phonon.run_band_structure(paths, path_connections=connections, labels=labels)
        distances = [np.asarray(d, dtype=float) for d in bs.distances]
        freqs = [np.asarray(f, dtype=float) * factor_cm for f in bs.frequencies]
        qpoints = [np.asarray(q, dtype=float) for q in bs.qpoints]
    return BandData(distances=distances, frequencies=freqs, qpoints=qpoints, labels=labels,
                    path_connections=connections)


_STYLES = [dict(color="0.55", lw=1.0, ls="--"), dict(color="tab:red", lw=1.3), dict(color="tab:blue", lw=1.0, ls=":"),
           dict(color="tab:green", lw=1.0), dict(color="tab:purple", lw=1.0)]


def plot_bands(results: Mapping[str, BandData], path, title: str | None = None, dpi: int = 150) -> Path:
    """Overlay several band structures on the same path and write a PNG.

    Parameters
    ----------
    results : mapping label -> BandData
        E.g. ``{"no NAC": ..., "predicted NAC": ..., "DFT NAC": ...}``; all on the same path.
        Styles go in order: grey dashed, red, blue dotted, ... (matplotlib's Agg canvas; pyplot is not used)
    path : str or PathLike
        Output file (PNG).
    title : str, optional

    Returns
    -------
    Path
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not results:
        raise ValueError("nothing to plot")
    fig = Figure(figsize=(7.0, 4.5))  # no pyplot: leaves the caller's backend alone
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    first = next(iter(results.values()))
    for k, (label, data) in enumerate(results.items()):
        style = _STYLES[k % len(_STYLES)]
        for seg, (d, f) in enumerate(zip(data.distances, data.frequencies)):
            ax.plot(d, f, label=label if seg == 0 else None, **style)
    positions, names = first.ticks()
    for x in positions:
        ax.axvline(x, color="0.8", lw=0.6, zorder=0)
    ax.axhline(0.0, color="0.8", lw=0.6, zorder=0)
    ax.set_xticks(positions)
    ax.set_xticklabels(names)
    ax.set_xlim(positions[0], positions[-1])
    ax.set_ylabel("frequency (cm$^{-1}$)")
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    ax.legend(unique.values(), unique.keys(), loc="best", fontsize=8, frameon=False)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    return out
