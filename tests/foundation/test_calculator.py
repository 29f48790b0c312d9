"""tensorprop.foundation.calculator under ase's Calculator contract, against the nequix package's numbers."""

from __future__ import annotations

import numpy as np
import pytest

from tensorprop.foundation import calculator, energy_forces_stress


def test_calculator_follows_the_ase_contract(models_dir, reference, monkeypatch):
    monkeypatch.setenv("TENSORPROP_DATA_DIR", str(models_dir.parent / "datasets"))
    name = "MgO-2x1x1-rattled"
    ref = reference["results"]["nequix-mp-1-pft"][name]
    atoms = reference["structures"][name].to_ase()
    calc = calculator("nequix-mp-1-pft")  # found by name next to TENSORPROP_DATA_DIR
    assert set(calc.implemented_properties) == {"energy", "free_energy", "forces", "stress"}
    atoms.calc = calc

    assert atoms.get_potential_energy() == pytest.approx(ref["energy"], abs=1e-3)
    assert atoms.get_potential_energy(force_consistent=True) == pytest.approx(ref["energy"], abs=1e-3)
    np.testing.assert_allclose(atoms.get_forces(), ref["forces"], atol=1e-3)
    np.testing.assert_allclose(atoms.get_stress(), ref["stress"], atol=1e-4)
    assert calc.n_evaluations == 1  # one network call served every property; the rest came from ase's cache
    assert calc.get_property("forces", atoms) is not None and calc.n_evaluations == 1

    sizes = calc.sizes
    moved = atoms.copy()
    moved.positions[0] += [0.05, -0.02, 0.01]
    moved.calc = calc
    assert calc.check_state(moved) == ["positions"]
    forces = moved.get_forces()
    assert calc.n_evaluations == 2 and calc.sizes == sizes  # recomputed, same padded shape
    assert np.abs(forces - np.asarray(ref["forces"])).max() > 1e-3
    np.testing.assert_allclose(forces.sum(axis=0), 0.0, atol=1e-4)  # translation invariance of the energy

    strained = atoms.copy()
    strained.set_cell(atoms.cell[:] * 1.01, scale_atoms=True)
    strained.calc = calc
    e_strained = strained.get_potential_energy()
    assert calc.n_evaluations == 3 and e_strained != pytest.approx(ref["energy"], abs=1e-4)

    compiled = energy_forces_stress._cache_size()
    again = calculator(models_dir / "nequix-mp-1-pft.nqx")  # a second calculator reuses the compiled function
    atoms.calc = again
    assert atoms.get_potential_energy() == pytest.approx(ref["energy"], abs=1e-3)
    assert energy_forces_stress._cache_size() == compiled


def test_stress_is_the_strain_derivative(models_dir, reference):
    """sigma = (1/V) dE/d(eps): central difference of the energy under a small symmetric strain."""
    atoms = reference["structures"]["MgO-2x1x1-rattled"].to_ase()
    atoms.calc = calculator(models_dir / "nequix-mp-1-pft.nqx")
    stress = atoms.get_stress(voigt=False)
    h, eps = 1e-3, np.array([[0.0, 0.5, 0.0], [0.5, 0.0, 0.0], [0.0, 0.0, 1.0]])
    energies = []
    for sign in (1, -1):
        a = atoms.copy()
        a.calc = atoms.calc
        a.set_cell(atoms.cell[:] @ (np.eye(3) + sign * h * eps), scale_atoms=True)
        energies.append(a.get_potential_energy())
    assert (energies[0] - energies[1]) / (2 * h) / atoms.get_volume() == pytest.approx(np.sum(stress * eps), abs=2e-4)
