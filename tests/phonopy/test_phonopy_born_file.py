"""BORN files and yaml nac blocks written by tensorprop are read back by phonopy's own parsers."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest

from tensorprop.phonopy import nac_yaml_block, predict_nac, write_born
from tensorprop.phonopy.born_file import born_lines, independent_atoms


@pytest.mark.parametrize("name", ["NaCl", "ZnO", "SnO2", "SiO2-HP", "Al2O3"])
def test_born_round_trip(oracle_for, examples_dir, tmp_path, name):
    from phonopy.file_IO import get_born_parameters, parse_BORN
    from phonopy.structure.symmetry import Symmetry

    phonon, oracle, _ = oracle_for(name)
    result = predict_nac(oracle, phonon)
    path = tmp_path / "BORN"
    text = write_born(path, result)
    lines = text.splitlines()
    # line 1 the factor, line 2 eps, one line per independent atom, as phonopy's Symmetry names them
    symmetry = Symmetry(phonon.primitive, symprec=result.symprec)
    indep = symmetry.get_independent_atoms()
    assert float(lines[0]) == pytest.approx(result.factor, abs=1e-7)
    assert len(lines) == 2 + len(indep) and all(len(x.split()) == 9 for x in lines[1:])
    np.testing.assert_array_equal(independent_atoms(result.primitive, result.born, result.dielectric)[0], indep)

    parsed = parse_BORN(phonon.primitive, filename=str(path))
    np.testing.assert_allclose(parsed["born"], result.born, atol=2e-8)
    np.testing.assert_allclose(parsed["dielectric"], result.dielectric, atol=2e-8)
    assert parsed["factor"] == pytest.approx(result.factor, abs=1e-7)
    with open(path) as f:  # the lower-level parser with the Phonopy's own symmetry
        again = get_born_parameters(f, phonon.primitive, phonon.primitive_symmetry)
    np.testing.assert_allclose(again["born"], result.born, atol=2e-8)
    # and phonopy.load takes it as born_filename
    import phonopy

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = phonopy.load(examples_dir / name / "phonopy_disp.yaml", produce_fc=False, born_filename=path)
    np.testing.assert_allclose(loaded.nac_params["born"], result.born, atol=2e-8)
    assert loaded.nac_params["factor"] == pytest.approx(result.factor, abs=1e-7)


def test_born_from_dict_and_stream(oracle_for):
    from phonopy.file_IO import parse_BORN_from_strings

    phonon, oracle, ref = oracle_for("SnO2")
    stream = io.StringIO()
    write_born(stream, {"born": ref["born"], "dielectric": ref["dielectric"]}, phonon.primitive)
    text = stream.getvalue()
    assert text.splitlines()[0] == "14.39965173"  # phonopy's default (VASP-like units) when none is given
    parsed = parse_BORN_from_strings(text, phonon.primitive)
    np.testing.assert_allclose(parsed["born"], ref["born"], atol=2e-8)
    with pytest.raises(TypeError, match="primitive cell"):
        born_lines({"born": ref["born"], "dielectric": ref["dielectric"]})
    with pytest.raises(ValueError, match="atoms"):
        born_lines({"born": ref["born"][:2], "dielectric": ref["dielectric"]}, phonon.primitive)


def test_born_file_symmetrises_raw_tensors(oracle_for):
    """A BORN file holds independent atoms only, so what it says is the symmetrised tensor."""
    from phonopy.file_IO import parse_BORN_from_strings

    phonon, noisy, _ = oracle_for("ZnO", noise=0.02)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = predict_nac(noisy, phonon, symmetrize=False)
    parsed = parse_BORN_from_strings(write_born(io.StringIO(), result), phonon.primitive)
    from phonopy.structure.symmetry import symmetrize_borns_and_epsilon

    sym, eps = symmetrize_borns_and_epsilon(result.born_raw, result.dielectric_raw, phonon.primitive)
    np.testing.assert_allclose(parsed["born"], sym, atol=2e-8)


@pytest.mark.parametrize("name", ["NaCl", "ZnO"])
def test_yaml_block_read_by_phonopy(oracle_for, examples_dir, tmp_path, name):
    import phonopy

    phonon, oracle, _ = oracle_for(name)
    result = predict_nac(oracle, phonon)
    block = nac_yaml_block(result)
    assert block.startswith("nac:\n  born_effective_charge:\n  - # 1 (")
    assert block.count("  - # ") == len(phonon.primitive)
    text = (examples_dir / name / "phonopy_disp.yaml").read_text()
    assert "\nnac:" not in text
    path = tmp_path / "phonopy_nac.yaml"
    path.write_text(text.rstrip("\n") + "\n\n" + block)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = phonopy.load(path, produce_fc=False, is_nac=True)
    np.testing.assert_allclose(loaded.nac_params["born"], result.born, atol=1e-12)
    np.testing.assert_allclose(loaded.nac_params["dielectric"], result.dielectric, atol=1e-12)
    assert loaded.nac_params["factor"] == pytest.approx(result.factor, abs=1e-7)
