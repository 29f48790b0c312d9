"""Fixtures of the phonopy NAC tests: phonopy's examples with DFT BORN files, an oracle model, a tiny model."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from tensorprop.data.convert import as_crystal

PHONOPY_EXAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "phonopy"
EXAMPLES = ("NaCl", "MgO", "ZnO", "SnO2", "SiO2-HP", "Al2O3")


class OracleModel:
    """A stand-in for a trained model: returns DFT Born charges and eps_inf of a reference cell.

    ``predict(structure)`` maps every atom of ``structure`` onto the atom of the reference
    primitive cell at the same position (modulo its lattice; same orientation), so it
    answers for that primitive cell in any atom order, or for a supercell of it.

    Parameters
    ----------
    primitive : PhonopyAtoms
        Reference cell, Angstrom.
    born : (n, 3, 3) array_like
        Z*[i, a, b] = dP_a/du_(i,b), e.
    epsilon : (3, 3) array_like
    transpose : bool
        Return Z*[i, b, a] instead (the wrong index order), for the convention test.
    noise : float
        Add Gaussian noise of this size (e) to every Born charge (breaks the symmetry).
    """

    def __init__(self, primitive, born, epsilon, transpose: bool = False, noise: float = 0.0, seed: int = 0):
        self.cell = np.asarray(primitive.cell, dtype=float)
        self.frac = np.asarray(primitive.scaled_positions, dtype=float)
        self.numbers = np.asarray(primitive.numbers)
        self.born = np.array(born, dtype=float)
        if transpose:
            self.born = self.born.transpose(0, 2, 1).copy()
        if noise:
            self.born += np.random.default_rng(seed).normal(scale=noise, size=self.born.shape)
        self.epsilon = np.array(epsilon, dtype=float)

    def predict(self, structure) -> dict:
        crystal = as_crystal(structure)
        frac = np.linalg.solve(self.cell.T, crystal.positions.T).T
        index = []
        for z, f in zip(crystal.numbers, frac):
            d = f - self.frac
            d -= np.round(d)
            dist = np.linalg.norm(d @ self.cell, axis=1)
            dist[self.numbers != z] = np.inf
            j = int(np.argmin(dist))
            assert dist[j] < 1e-3, f"atom at {f} not in the reference cell (nearest {dist[j]:.3g} A)"
            index.append(j)
        return {"born_charges": self.born[index].copy(), "epsilon": self.epsilon.copy()}


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    if not (PHONOPY_EXAMPLES / "NaCl" / "BORN").is_file():
        pytest.skip(f"phonopy examples not found at {PHONOPY_EXAMPLES} (the shared folder is absent)")
    return PHONOPY_EXAMPLES


@pytest.fixture(scope="session")
def _loaded(examples_dir):
    return {}


@pytest.fixture
def example(examples_dir, _loaded):
    """``example(name) -> (phonon, reference nac_params)``; phonon with force constants, NAC off.

    Phonopy objects are cached for the session; ``nac_params`` is reset to None on each call
    and after the test.
    """
    from phonopy.file_IO import parse_BORN

    from tensorprop.phonopy.nac import default_nac_factor
    from tensorprop.phonopy.workflow import load_phonopy

    used = []

    def get(name: str):
        if name not in _loaded:
            d = examples_dir / name
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # phonopy 4's primitive_matrix="auto" notice
                phonon = load_phonopy(d / "phonopy_disp.yaml", d / "FORCE_SETS")
            ref = parse_BORN(phonon.primitive, filename=str(d / "BORN"))
            ref.setdefault("factor", default_nac_factor(phonon.calculator))
            _loaded[name] = (phonon, ref)
        phonon, ref = _loaded[name]
        phonon.nac_params = None
        used.append(phonon)
        return phonon, {k: (np.array(v) if k != "factor" else v) for k, v in ref.items()}

    yield get
    for phonon in used:
        phonon.nac_params = None


@pytest.fixture
def oracle_for(example):
    """``oracle_for(name, **kw) -> (phonon, OracleModel, reference nac_params)``."""

    def make(name: str, **kwargs):
        phonon, ref = example(name)
        return phonon, OracleModel(phonon.primitive, ref["born"], ref["dielectric"], **kwargs), ref

    return make


@pytest.fixture(scope="session")
def oracle_class():
    """The :class:`OracleModel` class, for oracles of hand-made Born charges."""
    return OracleModel


@pytest.fixture(scope="session")
def tiny_untrained():
    """A random, untrained model (TINY config of tests/conftest.py, seed 0)."""
    import tensorprop
    from tests.conftest import TINY

    return tensorprop.build_model(TINY, seed=0)
