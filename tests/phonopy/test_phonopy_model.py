"""The NAC pipeline with a random, untrained tensorprop model: shapes, symmetry, files, rotations."""

from __future__ import annotations

import io

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from tensorprop.phonopy import (NacError, attach_nac, gamma_frequencies, nac_params, predict_nac, run_nac,
                                write_born)
from tests.conftest import rocksalt_nacl, triclinic, wurtzite_zno


@pytest.mark.parametrize("name", ["NaCl", "ZnO", "SnO2"])
def test_tiny_model_nac_on_phonopy(example, tiny_untrained, name):
    from phonopy.file_IO import parse_BORN_from_strings

    phonon, _ = example(name)
    n = len(phonon.primitive)
    result = predict_nac(tiny_untrained, phonon)
    assert result.born.shape == result.born_raw.shape == (n, 3, 3)
    assert result.dielectric.shape == (3, 3) and result.symmetrized
    assert np.abs(result.born.sum(axis=0)).max() < 1e-10  # acoustic sum rule after symmetrisation
    np.testing.assert_allclose(result.dielectric, result.dielectric.T, atol=1e-12)
    assert np.linalg.eigvalsh(result.dielectric).min() >= 1.0 - 1e-9
    # the correction is reported; an equivariant model on a symmetric cell needs almost none
    assert np.isfinite(result.born_correction_max) and np.isfinite(result.dielectric_correction_max)
    assert result.born_correction_max < 1e-3 and result.dielectric_correction_max < 1e-3
    assert result.born_sum_rule_max < 1e-4  # the head enforces it
    assert "phonon.primitive" in result.primitive_source

    params = nac_params(tiny_untrained, phonon)
    assert set(params) == {"born", "dielectric", "factor"}
    np.testing.assert_allclose(params["born"], result.born)

    parsed = parse_BORN_from_strings(write_born(io.StringIO(), result), phonon.primitive)
    np.testing.assert_allclose(parsed["born"], result.born, atol=2e-8)

    freqs = gamma_frequencies(phonon, params)
    assert all(f.shape == (3 * n,) and np.isfinite(f).all() for f in freqs.values())


def test_attach_nac_and_run_nac_with_tiny_model(example, examples_dir, tiny_untrained, tmp_path):
    phonon, _ = example("NaCl")
    result = attach_nac(phonon, tiny_untrained)
    np.testing.assert_allclose(phonon.nac_params["born"], result.born)
    with pytest.raises(TypeError, match="Phonopy"):
        attach_nac(phonon.primitive, tiny_untrained)

    d = examples_dir / "NaCl"
    summary = run_nac(d / "phonopy_disp.yaml", d / "FORCE_SETS", model=tiny_untrained, out_dir=tmp_path,
                      npoints=21)
    assert summary["reference"] is None and summary["errors"] is None
    assert summary["gamma"]["reference"] is None
    assert summary["predicted"]["born_correction_max"] < 1e-3
    for name in ("BORN", "bands.png", "nac_summary.json"):
        assert (tmp_path / name).is_file(), name
    from tensorprop.phonopy import format_gamma_table

    assert "LO, predicted NAC" in format_gamma_table(summary)


def test_structure_inputs_find_primitive_cell(tiny_untrained, tmp_path):
    from ase.build import bulk

    conventional = bulk("NaCl", "rocksalt", a=5.64, cubic=True)  # 8 atoms
    result = predict_nac(tiny_untrained, conventional)
    assert len(result.primitive) == 2 and result.born.shape == (2, 3, 3)
    assert "guess_primitive_matrix" in result.primitive_source and "8 atoms -> 2" in result.primitive_source
    assert result.factor == pytest.approx(14.39965, abs=1e-5)

    poscar = tmp_path / "POSCAR"
    conventional.write(poscar, format="vasp")
    from_file = predict_nac(tiny_untrained, poscar)
    np.testing.assert_allclose(from_file.born, result.born, atol=1e-5)
    from_pymatgen = predict_nac(tiny_untrained, rocksalt_nacl().to_pymatgen())
    np.testing.assert_allclose(np.sort(from_pymatgen.born[:, 0, 0]), np.sort(result.born[:, 0, 0]), atol=1e-5)


@pytest.mark.parametrize("make", [triclinic, wurtzite_zno], ids=["triclinic", "ZnO"])
def test_rotated_structure_gives_rotated_nac(tiny_untrained, make):
    """nac_params(R structure) = R nac_params(structure) R^T atom by atom (symmetrize=False)."""
    crystal = make()
    rot = Rotation.from_euler("zyx", [0.7, -0.4, 1.1]).as_matrix()
    rotated = crystal.replace(positions=crystal.positions @ rot.T, cell=crystal.cell @ rot.T)
    a = predict_nac(tiny_untrained, crystal, symmetrize=False)
    b = predict_nac(tiny_untrained, rotated, symmetrize=False)
    np.testing.assert_allclose(np.asarray(b.primitive.positions), np.asarray(a.primitive.positions) @ rot.T,
                               atol=1e-6)
    np.testing.assert_allclose(b.born, rot @ a.born @ rot.T, atol=2e-5)
    np.testing.assert_allclose(b.dielectric, rot @ a.dielectric @ rot.T, atol=2e-5)
    # with symmetrisation too (phonopy's symmetrisation is covariant)
    sa = nac_params(tiny_untrained, crystal)
    sb = nac_params(tiny_untrained, rotated)
    np.testing.assert_allclose(sb["born"], rot @ sa["born"] @ rot.T, atol=2e-5)


def test_bohr_calculator_is_converted_to_angstrom(example, tiny_untrained):
    """A Phonopy working in Bohr (QE): the model still sees Angstrom; the factor is QE's (2 Ry Bohr)."""
    from phonopy import Phonopy
    from phonopy.structure.atoms import PhonopyAtoms

    phonon, _ = example("ZnO")
    bohr = 0.529177210903
    unit = phonon.unitcell
    cell_bohr = PhonopyAtoms(numbers=unit.numbers, cell=np.asarray(unit.cell) / bohr,
                             scaled_positions=unit.scaled_positions)
    qe = Phonopy(cell_bohr, supercell_matrix=np.eye(3, dtype=int), primitive_matrix=None, calculator="qe")
    a = predict_nac(tiny_untrained, phonon)
    b = predict_nac(tiny_untrained, qe)
    np.testing.assert_allclose(b.born, a.born, atol=1e-5)
    assert b.factor == pytest.approx(2.0)


def test_model_without_born_head_is_refused(example):
    class EpsOnly:
        def predict(self, structure):
            return {"epsilon": np.eye(3) * 2}

    phonon, _ = example("NaCl")
    with pytest.raises(NacError, match="born_charges"):
        nac_params(EpsOnly(), phonon)

    class WrongShape:
        def predict(self, structure):
            return {"born_charges": np.zeros((3, 3, 3)), "epsilon": np.eye(3)}

    with pytest.raises(NacError, match="expected"):
        nac_params(WrongShape(), phonon)


def test_ensemble_spread_reaches_the_nac_report(example, tiny_untrained):
    """An ensemble's disagreement is reported with its NAC parameters; a single model has none."""
    import tensorprop
    from tensorprop.phonopy.nac import spread_text
    from tests.conftest import TINY

    phonon, _ = example("ZnO")
    single = predict_nac(tiny_untrained, phonon)
    assert single.born_spread is None and single.dielectric_spread is None
    assert single.to_dict()["born_spread"] is None
    pair = tensorprop.ensemble([tiny_untrained, tensorprop.build_model(TINY, seed=1)])
    result = predict_nac(pair, phonon)
    assert result.born_spread.shape == (len(phonon.primitive),) and result.born_spread.min() > 0
    assert result.dielectric_spread > 0
    # the per-atom spread is a rotation invariant: equal on symmetry-equivalent atoms (the two Zn, the two O)
    np.testing.assert_allclose(result.born_spread[0], result.born_spread[1], rtol=1e-4)
    np.testing.assert_allclose(result.born_spread[2], result.born_spread[3], rtol=1e-4)
    text = spread_text(result.born_spread, result.dielectric_spread, result.symbols)
    i = int(np.argmax(result.born_spread))
    assert f"{result.born_spread[i]:.3f} e (atom {i}, {result.symbols[i]})" in text
    assert result.to_dict()["dielectric_spread"] == result.dielectric_spread
