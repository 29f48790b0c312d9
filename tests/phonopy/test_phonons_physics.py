"""IR intensities, eps_0 and the Gamma table on phonopy's examples with their DFT force sets and BORN files."""

from __future__ import annotations

import numpy as np
import pytest

from tensorprop.phonopy.gamma_table import gamma_analysis
from tensorprop.physics import infrared


@pytest.mark.parametrize("name", ["NaCl", "MgO"])
def test_static_dielectric_obeys_lyddane_sachs_teller_for_cubic_crystals(example, name):
    phonon, ref = example(name)
    g = gamma_analysis(phonon, ref)
    polar = g.ir_active
    assert polar.sum() == 3  # one triply degenerate T1u optical mode in rock salt
    eps0 = g.eps_0
    assert np.allclose(eps0, eps0[0, 0] * np.eye(3), atol=1e-8)  # cubic: isotropic
    thz = g.frequencies_cm[polar] / g.frequencies_thz[polar]
    for name_q, lo in g.lo_cm.items():
        # q along one axis: one LO (the highest) and two TO of the polar triplet
        lo_polar = lo[polar] / thz
        ratio = infrared.lyddane_sachs_teller_ratio(lo_polar, g.frequencies_thz[polar])
        assert eps0[0, 0] / g.eps_inf[0, 0] == pytest.approx(ratio, rel=2e-4), name_q
    assert eps0[0, 0] > 1.5 * g.eps_inf[0, 0]  # the ionic part is not negligible in these crystals


def test_raman_only_and_silent_modes_of_rutile_have_no_ir_intensity(example):
    phonon, ref = example("SnO2")  # rutile, centrosymmetric (P4_2/mnm)
    g = gamma_analysis(phonon, ref)
    labels = np.array([lab or "" for lab in g.irreps])
    optical = ~g.acoustic
    assert set(labels[optical]) == {"A1g", "A2g", "B1g", "B2g", "Eg", "A2u", "B1u", "Eu"}
    strongest = g.ir_intensity.max()
    for m in np.flatnonzero(optical):
        if labels[m].endswith("g") or labels[m] == "B1u":  # Raman-only and silent
            assert g.ir_intensity[m] < 1e-8 * strongest, (m, labels[m])
            assert not g.ir_active[m]
        else:  # A2u and Eu are IR active
            assert g.ir_intensity[m] > 1e-2 * strongest, (m, labels[m])
            assert g.ir_active[m]
    assert np.all(g.ir_intensity[g.acoustic] == 0.0)
    # the highest LO (phonopy 4.10 with the DFT BORN: 712.5 q||a, 652.9 q||c) lies below the non-polar B2g mode
    assert g.lo_max_cm["x"] == pytest.approx(712.5, abs=0.1) and g.lo_max_cm["z"] == pytest.approx(652.9, abs=0.1)
    assert g.lo_cm["x"].max() == pytest.approx(733.2, abs=0.1)
    # tetragonal: eps_0 uniaxial, xx = yy != zz, and above eps_inf along every axis
    assert g.eps_0[0, 0] == pytest.approx(g.eps_0[1, 1], rel=1e-8)
    assert abs(g.eps_0[0, 0] - g.eps_0[2, 2]) > 0.1
    assert np.all(np.diag(g.eps_0) > np.diag(g.eps_inf) + 1.0)


def test_acoustic_modes_are_the_translations_and_carry_no_charge(example):
    phonon, ref = example("ZnO")
    g = gamma_analysis(phonon, ref)
    assert g.acoustic.sum() == 3
    assert np.all(np.abs(g.frequencies_cm[g.acoustic]) < 1.0)
    # the acoustic sum rule makes their mode charges vanish (up to the DFT BORN file's own sum-rule error)
    asr = np.abs(np.asarray(ref["born"]).sum(axis=0)).max()
    assert np.abs(g.mode_charges[g.acoustic]).max() < 2 * asr + 1e-6
    assert np.abs(g.mode_charges[g.acoustic]).max() < 1e-2 * np.abs(g.mode_charges).max()


def test_mode_charges_and_eps0_by_hand_for_a_diatomic_chain():
    # two atoms, masses m1, m2, Z* = +-z I, optical mode e = (sqrt(m2), -sqrt(m1)) / sqrt(M) along x
    m1, m2, z = 2.0, 8.0, 1.5
    born = np.array([z * np.eye(3), -z * np.eye(3)])
    vecs = np.zeros((6, 6))
    for a in range(3):
        vecs[a, a], vecs[3 + a, a] = np.sqrt(m1 / (m1 + m2)), np.sqrt(m2 / (m1 + m2))  # translations
        vecs[a, 3 + a], vecs[3 + a, 3 + a] = np.sqrt(m2 / (m1 + m2)), -np.sqrt(m1 / (m1 + m2))
    zm = infrared.mode_effective_charges(born, [m1, m2], vecs)
    mu = m1 * m2 / (m1 + m2)
    assert np.allclose(np.abs(zm[3:]), z / np.sqrt(mu) * np.eye(3))  # Z / sqrt(reduced mass)
    assert np.allclose(zm[:3], 0.0)
    assert list(infrared.optical_mask([m1, m2], vecs)) == [False] * 3 + [True] * 3
    nu = np.array([0.0, 0.0, 0.0, 5.0, 5.0, 5.0])
    eps = infrared.static_dielectric(2.0 * np.eye(3), zm, nu, 40.0, infrared.optical_mask([m1, m2], vecs))
    expected = 2.0 + infrared.EPS_ION_PREFACTOR / 40.0 * z ** 2 / mu / 25.0
    assert np.allclose(eps, expected * np.eye(3))
    # the prefactor is 4 pi e^2/(4 pi eps_vac) in eV A x phonopy's (sqrt(eV/A^2/amu) -> THz)^2
    assert infrared.EPS_ION_PREFACTOR == pytest.approx(4 * np.pi * 14.399645 * 15.633302 ** 2, rel=1e-5)


def test_lorentzian_spectrum_has_the_mode_intensities_as_areas():
    grid = np.linspace(-5000.0, 5000.0, 400001)
    s = infrared.lorentzian_spectrum(grid, [100.0, 300.0], [2.0, 0.5], width=10.0)
    assert np.trapezoid(s, grid) == pytest.approx(2.5, rel=2e-3)
    assert s[np.argmin(abs(grid - 100.0))] == pytest.approx(2.0 / (np.pi * 5.0), rel=1e-3)
