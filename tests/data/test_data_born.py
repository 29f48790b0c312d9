"""phonopy BORN files read with phonopy's parser on the primitive cell phonopy_disp.yaml names."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from tensorprop.data.convert import from_phonopy_atoms, to_phonopy_atoms
from tensorprop.data.readers import read_born, read_structure
from tensorprop.data.validate import acoustic_sum_rule_violation
from tensorprop.errors import DataError


def primitive_of(folder):
    """The primitive cell phonopy used: POSCAR-unitcell times primitive_matrix of phonopy_disp.yaml."""
    from phonopy.structure.cells import get_primitive

    doc = yaml.safe_load((folder / "phonopy_disp.yaml").read_text())
    matrix = np.array(doc.get("primitive_matrix", np.eye(3)), dtype=float)
    unit = read_structure(folder / "POSCAR-unitcell")
    return unit, from_phonopy_atoms(get_primitive(to_phonopy_atoms(unit), matrix))


def test_nacl_born(phonopy_dir):
    unit, prim = primitive_of(phonopy_dir / "NaCl")
    assert unit.n_atoms == 8 and prim.n_atoms == 2  # conventional unit cell, FCC primitive
    born, eps, factor = read_born(phonopy_dir / "NaCl" / "BORN", prim)
    assert born.shape == (2, 3, 3) and eps.shape == (3, 3) and factor == pytest.approx(14.4)
    na = born[prim.numbers == 11][0]
    cl = born[prim.numbers == 17][0]
    assert np.allclose(na, 1.08703 * np.eye(3)) and np.allclose(cl, -1.08672 * np.eye(3))
    assert 1.0 < na[0, 0] < 1.2
    assert acoustic_sum_rule_violation(born) < 1e-3
    assert np.allclose(eps, 2.43533967 * np.eye(3))


def test_zno_born(phonopy_dir):
    unit, prim = primitive_of(phonopy_dir / "ZnO")
    assert prim.n_atoms == 4
    born, eps, factor = read_born(phonopy_dir / "ZnO" / "BORN", prim)
    assert np.allclose(born[prim.numbers == 30], np.diag([2.1195, 2.1195, 2.14964]))
    assert np.allclose(born[prim.numbers == 8], np.diag([-2.14963, -2.14963, -2.12582]))
    assert acoustic_sum_rule_violation(born) < 0.1  # 0.06 e as published
    assert np.allclose(eps, np.diag([5.97, 5.97, 4.558]))


@pytest.mark.parametrize("name", ["MgO", "SnO2", "SiO2-HP", "Al2O3"])
def test_other_born_files(phonopy_dir, name):
    _, prim = primitive_of(phonopy_dir / name)
    born, eps, _ = read_born(phonopy_dir / name / "BORN", prim)
    assert born.shape == (prim.n_atoms, 3, 3)
    assert acoustic_sum_rule_violation(born) < 0.01
    assert np.allclose(eps, eps.T) and np.all(np.linalg.eigvalsh(eps) > 1)
    assert np.all(np.trace(born[prim.numbers == 8], axis1=1, axis2=2) < 0)  # oxygen is negative


def test_bad_born_files(tmp_path, phonopy_dir):
    _, prim = primitive_of(phonopy_dir / "NaCl")
    with pytest.raises(DataError, match="no such file"):
        read_born(tmp_path / "BORN", prim)
    lines = (phonopy_dir / "NaCl" / "BORN").read_text().splitlines()
    (tmp_path / "BORN").write_text("\n".join(lines[:3]) + "\n")  # the Cl line is missing
    with pytest.raises(DataError) as err:
        read_born(tmp_path / "BORN", prim)
    assert str(err.value).startswith(f"{tmp_path / 'BORN'}: cannot parse BORN file")
    (tmp_path / "BORN").write_text("14.4\n1 2 3\n")
    with pytest.raises(DataError, match="line 2"):
        read_born(tmp_path / "BORN", prim)
