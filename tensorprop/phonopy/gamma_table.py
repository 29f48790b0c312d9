"""The zone-centre modes of a phonopy calculation: irreps, IR intensities, LO/TO, eps_0, as one table.

:func:`gamma_analysis` takes a ``phonopy.Phonopy`` with force constants and phonopy's
``nac_params`` (Z* of the primitive cell, eps_inf) and returns a :class:`GammaAnalysis`
built from the pure functions of :mod:`tensorprop.physics.infrared` (formulae and units in
docs/conventions.md). TO frequencies are those without NAC; the LO columns are phonopy's
frequencies with NAC for q -> 0 along each Cartesian direction (band index order).
"""

from __future__ import annotations

import csv
import dataclasses
import io
from typing import Sequence

import numpy as np

from tensorprop.phonopy.bands import XYZ, _nac_set, direction_label, gamma_modes, thz_to_cm
from tensorprop.physics import infrared

__all__ = ["GammaAnalysis", "gamma_analysis", "IR_ACTIVE_REL"]

#: a mode is IR active when its intensity exceeds this fraction of the strongest mode's (and 1e-8 e^2/amu)
IR_ACTIVE_REL = 1e-4


@dataclasses.dataclass(frozen=True, eq=False)
class GammaAnalysis:
    """Gamma-point modes of the primitive cell (3n modes, ascending TO frequency).

    Attributes
    ----------
    frequencies_thz, frequencies_cm : (3n,) ndarray
        Frequencies without NAC (TO and non-polar modes), THz and cm^-1 (imaginary negative).
    irreps : list of str or None
        phonopy's irreducible-representation label of each mode (None where phonopy finds none).
    degenerate_sets : list of list of int
        phonopy's groups of degenerate modes.
    acoustic : (3n,) bool
        The three translations.
    mode_charges : (3n, 3) ndarray, complex
        Z_m, e/sqrt(amu).
    ir_intensity : (3n,) ndarray
        |Z_m|^2 averaged over each degenerate set, e^2/amu; 0 for acoustic modes.
    ir_active : (3n,) bool
    lo_cm : dict
        Direction label (``"x"``, ``"y"``, ``"z"``) -> (3n,) frequencies with NAC for q -> 0 along it, cm^-1.
    lo_max_cm : dict
        Direction label -> highest frequency of a mode with longitudinal polar character (an LO mode,
        :attr:`tensorprop.phonopy.bands.GammaModes.lo_max`), cm^-1; None when no mode is polar. A
        non-polar mode (e.g. rutile's B2g) may lie above it.
    eps_inf, eps_ionic, eps_0 : (3, 3) ndarray
        Electronic, ionic and static dielectric tensors.
    volume : float
        Primitive-cell volume, Angstrom^3.
    """

    frequencies_thz: np.ndarray
    frequencies_cm: np.ndarray
    irreps: list
    degenerate_sets: list
    acoustic: np.ndarray
    mode_charges: np.ndarray
    ir_intensity: np.ndarray
    ir_active: np.ndarray
    lo_cm: dict
    lo_max_cm: dict
    eps_inf: np.ndarray
    eps_ionic: np.ndarray
    eps_0: np.ndarray
    volume: float

    def rows(self) -> list[dict]:
        """One dict per mode: index, THz, cm^-1, irrep, acoustic, IR intensity, IR active, LO cm^-1 per direction."""
        out = []
        for m in range(len(self.frequencies_thz)):
            row = {"mode": m + 1, "freq_thz": round(float(self.frequencies_thz[m]), 5),
                   "freq_cm": round(float(self.frequencies_cm[m]), 3), "irrep": self.irreps[m] or "",
                   "acoustic": bool(self.acoustic[m]), "ir_intensity": float(self.ir_intensity[m]),
                   "ir_active": bool(self.ir_active[m])}
            for name, freqs in self.lo_cm.items():
                row[f"nac_q{name}_cm"] = round(float(freqs[m]), 3)
            out.append(row)
        return out

    def to_csv(self) -> str:
        rows = self.rows()
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buf.getvalue()

    def to_text(self) -> str:
        """The table for a terminal: TO (no NAC) in cm^-1 and THz, irrep, IR intensity, NAC frequencies along x, y, z."""
        names = list(self.lo_cm)
        head = (f"{'mode':>4} {'cm^-1':>9} {'THz':>8} {'irrep':>6} {'IR int.':>9} {'IR':>3} "
                + " ".join(f"{'NAC q' + n:>9}" for n in names))
        lines = [head, "-" * len(head)]
        for r in self.rows():
            ir = "ac" if r["acoustic"] else ("yes" if r["ir_active"] else "no")
            lines.append(f"{r['mode']:>4} {r['freq_cm']:>9.2f} {r['freq_thz']:>8.4f} {r['irrep']:>6} "
                         f"{r['ir_intensity']:>9.4f} {ir:>3} " + " ".join(f"{r[f'nac_q{n}_cm']:>9.2f}" for n in names))
        lines.append("IR intensity |Z_m|^2 in e^2/amu (averaged over degenerate modes)")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"modes": self.rows(), "degenerate_sets": [list(map(int, g)) for g in self.degenerate_sets],
                "eps_inf": self.eps_inf.tolist(), "eps_ionic": self.eps_ionic.tolist(), "eps_0": self.eps_0.tolist(),
                "eps_0_isotropic": float(np.trace(self.eps_0) / 3.0), "volume_A3": self.volume,
                "highest_to_cm": float(self.frequencies_cm.max()),
                "highest_lo_cm": dict(self.lo_max_cm),
                "highest_with_nac_cm": {n: float(f.max()) for n, f in self.lo_cm.items()}}


def _irreps(phonon, degeneracy_tolerance):
    """phonopy's irreps at Gamma without NAC: (label per mode, degenerate sets)."""
    n = 3 * len(phonon.primitive)
    try:
        phonon.run_irreps([0.0, 0.0, 0.0], degeneracy_tolerance=degeneracy_tolerance)
        ir = phonon.irreps
        sets = [list(g) for g in ir.band_indices]
        labels = getattr(ir, "_ir_labels", None)  # phonopy keeps the labels only on this attribute
    except Exception:  # irreps are a label only; a failure (odd symmetry) must not stop the analysis
        return [None] * n, [[m] for m in range(n)]
    per_mode: list = [None] * n
    if labels is not None:
        for group, label in zip(sets, labels):
            for m in group:
                per_mode[m] = label
    return per_mode, sets


def gamma_analysis(phonon, nac_params: dict, directions: Sequence = XYZ,
                   degeneracy_tolerance: float | None = None) -> GammaAnalysis:
    """Zone-centre modes with irreps, IR intensities, LO frequencies and eps_0.

    Parameters
    ----------
    phonon : phonopy.Phonopy
        With force constants; lengths in Angstrom, masses in amu (ase/VASP-like units).
        Its ``nac_params`` is restored afterwards.
    nac_params : dict
        phonopy's ``{"born": (n_prim, 3, 3), "dielectric": (3, 3), "factor": float}``.
    directions : sequence of (3,)
        Cartesian q directions for the LO columns.
    degeneracy_tolerance : float, optional
        phonopy's tolerance for degenerate modes (THz).

    Returns
    -------
    GammaAnalysis
    """
    born = np.asarray(nac_params["born"], dtype=float)
    eps_inf = np.asarray(nac_params["dielectric"], dtype=float)
    masses = np.asarray(phonon.primitive.masses, dtype=float)
    with _nac_set(phonon, None):
        phonon.run_qpoints([[0.0, 0.0, 0.0]], with_eigenvectors=True)
        nu = np.asarray(phonon.qpoints.frequencies[0], dtype=float)
        vecs = np.asarray(phonon.qpoints.eigenvectors[0])
        irreps, sets = _irreps(phonon, degeneracy_tolerance)
    optical = infrared.optical_mask(masses, vecs)
    z = infrared.mode_effective_charges(born, masses, vecs)
    intensity = infrared.degenerate_average(infrared.ir_intensities(z), sets)
    intensity[~optical] = 0.0
    active = optical & (intensity > max(1e-8, IR_ACTIVE_REL * float(intensity.max(initial=0.0))))
    volume = float(abs(np.linalg.det(np.asarray(phonon.primitive.cell, dtype=float))))
    eps_ionic = infrared.ionic_dielectric(z, nu, volume, mask=optical).sum(axis=0)
    eps_ionic = 0.5 * (eps_ionic + eps_ionic.T)
    modes = {direction_label(k): m for k, m in gamma_modes(phonon, nac_params, directions).items()}
    return GammaAnalysis(frequencies_thz=nu, frequencies_cm=nu * thz_to_cm(), irreps=irreps, degenerate_sets=sets,
                         acoustic=~optical, mode_charges=z, ir_intensity=intensity, ir_active=active,
                         lo_cm={n: m.frequencies for n, m in modes.items()},
                         lo_max_cm={n: m.lo_max for n, m in modes.items()},
                         eps_inf=eps_inf, eps_ionic=eps_ionic, eps_0=eps_inf + eps_ionic, volume=volume)
