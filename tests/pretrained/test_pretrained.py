"""The model bundled with the package loads offline and predicts physically sensible tensors."""

import numpy as np
import pytest
from ase.build import bulk

import tensorprop
from tensorprop import testing
from tensorprop.cli import main

pytestmark = pytest.mark.slow  # the bundled five-member ensemble: loading and compiling it takes a while


@pytest.fixture(scope="module")
def bundled():
    return tensorprop.load_model()


def test_bundled_model_loads_with_its_provenance(bundled):
    assert set(bundled.targets) == {"born_charges", "epsilon"}
    assert bundled.metadata["dataset"] == "phonon-becs" and bundled.metadata["n_train"] == 1216
    assert len(bundled.elements) >= 60
    assert tensorprop.load_model("default").n_parameters == bundled.n_parameters


def test_bundled_predictions_are_physical(bundled):
    out = bundled.predict(bulk("NaCl", "rocksalt", a=5.64))
    z, eps = out["born_charges"], out["epsilon"]
    assert np.abs(z.sum(axis=0)).max() < 1e-5  # exact acoustic sum rule
    assert 0.5 < z[0, 0, 0] < 2.0 and -2.0 < z[1, 0, 0] < -0.5  # Na+ / Cl-, DFT: +-1.09
    np.testing.assert_allclose(z[0], z[0, 0, 0] * np.eye(3), atol=1e-4)  # cubic site: isotropic
    w = np.linalg.eigvalsh(eps)
    assert w.min() > 1.0 and w.max() - w.min() < 1e-4 and 1.5 < w.mean() < 4.0  # DFT: 2.43


def test_bundled_model_is_equivariant(bundled):
    from tensorprop.data.convert import from_ase

    zno = from_ase(bulk("ZnO", "wurtzite", a=3.25, c=5.21))
    predict = bundled.predict
    testing.check_rotation(predict, zno, testing.random_rotation(4, improper=True))
    testing.check_supercell(predict, zno, np.diag([1, 2, 2]))


def test_predict_default_from_the_command_line(tmp_path, capsys):
    poscar = tmp_path / "POSCAR"
    poscar.write_text("MgO\n1.0\n0 2.1 2.1\n2.1 0 2.1\n2.1 2.1 0\nMg O\n1 1\nDirect\n0 0 0\n0.5 0.5 0.5\n")
    assert main(["predict", "default", str(poscar)]) == 0
    text = capsys.readouterr().out
    assert "eps_inf" in text and "  0 Mg" in text and "  1 O" in text
