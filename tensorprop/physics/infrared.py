"""Infrared response of the zone-centre phonons: mode effective charges, IR intensities, eps_0.

Pure numpy functions of the Born effective charges Z*, the atomic masses and the
Gamma-point eigenvectors of the mass-weighted dynamical matrix (phonopy's normalised
eigenvectors, one mode per *column*). Formulae and units (also in docs/conventions.md):

- mode effective charge of mode m, e/sqrt(amu):
  ``Z_m[a] = sum_(i,b) Z*_i[a, b] e_m[(i, b)] / sqrt(M_i)``
- IR intensity (powder/orientation average up to a constant), e^2/amu:
  ``I_m = |Z_m|^2``
- oscillator strength, e^2/amu: ``S_m[a, b] = Re(Z_m[a] conj(Z_m[b]))``
- static dielectric tensor (SI form of eps_0 = eps_inf + (4 pi / Omega) sum_m S_m / omega_m^2):
  ``eps_0 = eps_inf + e^2 / (eps_vac Omega) sum_m S_m / (M_unit (2 pi nu_m)^2)``
  with Omega in Angstrom^3 and nu_m in THz; the constant is :data:`EPS_ION_PREFACTOR`
  = e^2 / (eps_vac * 1 A^3 * 1 amu * (2 pi 1 THz)^2) = 44224.5 (CODATA via scipy).

The acoustic modes (translations; their Z_m vanishes by the acoustic sum rule) are excluded.
"""

from __future__ import annotations

import numpy as np
import scipy.constants as _c

__all__ = ["EPS_ION_PREFACTOR", "mode_effective_charges", "ir_intensities", "oscillator_strengths",
           "acoustic_weights", "optical_mask", "ionic_dielectric", "static_dielectric", "degenerate_average",
           "lyddane_sachs_teller_ratio", "lorentzian_spectrum"]

#: e^2 / (eps_vac * Angstrom^3 * amu * (2 pi THz)^2): eps_ion = PREFACTOR / Omega[A^3] * S[e^2/amu] / nu[THz]^2
EPS_ION_PREFACTOR = _c.e ** 2 / (_c.epsilon_0 * 1e-30 * _c.atomic_mass * (2.0 * np.pi * 1e12) ** 2)


def _check(born, masses, eigenvectors):
    born = np.asarray(born, dtype=float)
    masses = np.asarray(masses, dtype=float)
    vecs = np.asarray(eigenvectors)
    n = len(masses)
    if born.shape != (n, 3, 3) or vecs.shape != (3 * n, 3 * n):
        raise ValueError(f"born {born.shape}, masses {masses.shape}, eigenvectors {vecs.shape}: expected "
                         f"({n}, 3, 3), ({n},), ({3 * n}, {3 * n})")
    return born, masses, vecs


def mode_effective_charges(born, masses, eigenvectors) -> np.ndarray:
    """Mode effective charges Z_m (polarisation per unit normal-mode amplitude).

    Parameters
    ----------
    born : (n, 3, 3) array_like
        Z*_i[a, b] = dP_a/du_(i,b), e.
    masses : (n,) array_like
        amu.
    eigenvectors : (3n, 3n) array_like
        Normalised eigenvectors of the mass-weighted dynamical matrix, mode m in column m,
        rows ordered (atom i, Cartesian b) as phonopy's.

    Returns
    -------
    (3n, 3) ndarray, complex
        Z_m[a], e/sqrt(amu).
    """
    born, masses, vecs = _check(born, masses, eigenvectors)
    n = len(masses)
    u = vecs.reshape(n, 3, 3 * n) / np.sqrt(masses)[:, None, None]  # displacement pattern (i, b, m)
    return np.einsum("iab,ibm->ma", born, u)


def ir_intensities(mode_charges) -> np.ndarray:
    """IR intensity of each mode, I_m = |Z_m|^2, e^2/amu. ``mode_charges``: (3n, 3) -> (3n,)."""
    z = np.asarray(mode_charges)
    return np.real(np.sum(z * np.conj(z), axis=1))


def oscillator_strengths(mode_charges) -> np.ndarray:
    """S_m[a, b] = Re(Z_m[a] conj(Z_m[b])), e^2/amu. ``mode_charges``: (3n, 3) -> (3n, 3, 3)."""
    z = np.asarray(mode_charges)
    return np.real(z[:, :, None] * np.conj(z[:, None, :]))


def acoustic_weights(masses, eigenvectors) -> np.ndarray:
    """Weight of each mode in the space of rigid translations (1 for an acoustic mode at Gamma, 0 for optical).

    The translations in mass-weighted coordinates are t_a[(i, b)] = sqrt(M_i) delta_ab / sqrt(sum M).

    Returns
    -------
    (3n,) ndarray in [0, 1]
    """
    masses = np.asarray(masses, dtype=float)
    vecs = np.asarray(eigenvectors)
    n = len(masses)
    t = np.zeros((3, 3 * n))
    for a in range(3):
        t[a, a::3] = np.sqrt(masses)
    t /= np.sqrt(masses.sum())
    return np.sum(np.abs(t @ vecs) ** 2, axis=0)


def optical_mask(masses, eigenvectors) -> np.ndarray:
    """(3n,) bool: modes that are not translations (acoustic weight < 0.5; exactly 3 modes are dropped)."""
    w = acoustic_weights(masses, eigenvectors)
    mask = np.ones(len(w), dtype=bool)
    mask[np.argsort(w)[-3:]] = False
    return mask


def ionic_dielectric(mode_charges, frequencies_thz, volume, mask=None) -> np.ndarray:
    """Ionic contribution of each mode to eps_0, (3n, 3, 3), dimensionless.

    Parameters
    ----------
    mode_charges : (3n, 3) array_like
        e/sqrt(amu) (:func:`mode_effective_charges`).
    frequencies_thz : (3n,) array_like
        Ordinary frequencies nu_m, THz (not angular).
    volume : float
        Cell volume Omega, Angstrom^3 (of the cell the modes belong to).
    mask : (3n,) bool, optional
        Modes to include (default :func:`optical_mask` is the caller's job; None includes every mode
        with a positive frequency). Excluded modes contribute zero.
    """
    nu = np.asarray(frequencies_thz, dtype=float)
    s = oscillator_strengths(mode_charges)
    keep = nu > 0 if mask is None else np.asarray(mask, dtype=bool) & (nu > 0)
    out = np.zeros_like(s)
    out[keep] = EPS_ION_PREFACTOR / float(volume) * s[keep] / nu[keep, None, None] ** 2
    return out


def static_dielectric(eps_inf, mode_charges, frequencies_thz, volume, mask=None) -> np.ndarray:
    """eps_0 = eps_inf + sum of :func:`ionic_dielectric` over the modes, (3, 3), symmetric."""
    eps = np.asarray(eps_inf, dtype=float) + ionic_dielectric(mode_charges, frequencies_thz, volume, mask).sum(0)
    return 0.5 * (eps + eps.T)


def degenerate_average(values, degenerate_sets) -> np.ndarray:
    """Replace each value by its mean over its degenerate set (a basis-independent per-mode value).

    ``values``: (3n,); ``degenerate_sets``: list of lists of mode indices covering the modes.
    """
    values = np.asarray(values, dtype=float)
    out = values.copy()
    for group in degenerate_sets:
        group = list(group)
        out[group] = values[group].mean()
    return out


def lyddane_sachs_teller_ratio(lo_thz, to_thz) -> float:
    """prod_m (nu_LO,m / nu_TO,m)^2 over paired polar modes (ascending order pairs them in a cubic crystal)."""
    lo = np.sort(np.asarray(lo_thz, dtype=float))
    to = np.sort(np.asarray(to_thz, dtype=float))
    if lo.shape != to.shape:
        raise ValueError(f"{lo.size} LO and {to.size} TO frequencies")
    return float(np.prod((lo / to) ** 2))


def lorentzian_spectrum(grid, centres, intensities, width) -> np.ndarray:
    """Sum of Lorentzians of full width at half maximum ``width`` with area ``intensities`` at ``centres``.

    All frequencies in the same unit (e.g. cm^-1); returns (len(grid),) in intensity / frequency unit.
    """
    grid = np.asarray(grid, dtype=float)[:, None]
    c = np.asarray(centres, dtype=float)[None, :]
    g = 0.5 * float(width)
    return (np.asarray(intensities, dtype=float)[None, :] * (g / np.pi) / ((grid - c) ** 2 + g ** 2)).sum(axis=1)
