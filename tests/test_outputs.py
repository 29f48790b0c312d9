"""The output-key registry (tensorprop.outputs): every key a model predicts is registered, with the
shape and index symmetry the registry states."""

from __future__ import annotations

import numpy as np

from tensorprop.outputs import BORN_CHARGES, EPSILON, OUTPUTS, per_atom, per_structure, split_structures

from tests.conftest import rocksalt_nacl, wurtzite_zno


def _check(pred: dict, n_atoms: int):
    for key, value in pred.items():
        spec = OUTPUTS[key]  # KeyError: an output the registry does not know
        lead = (n_atoms,) if spec.per == "atom" else ()
        assert value.shape[:len(lead)] == lead, key
        if spec.shape is not None:
            assert value.shape == lead + spec.shape, key
        if spec.symmetry == "ij=ji":
            np.testing.assert_allclose(value, np.swapaxes(value, -1, -2), atol=1e-6, err_msg=key)


def test_tensor_predictions_follow_the_registry(tiny_model):
    crystals = [rocksalt_nacl(), wurtzite_zno()]
    preds = tiny_model.predict_many(crystals)
    for c, p in zip(crystals, preds):
        assert set(p) == {BORN_CHARGES, EPSILON}
        _check(p, c.n_atoms)
    # Z* ("ij") is not symmetric in general: the registry must not claim it
    assert OUTPUTS[BORN_CHARGES].symmetry == "ij"


def test_split_structures_slices_atoms_and_indexes_structures():
    out = {BORN_CHARGES: np.arange(5 * 9.0).reshape(5, 3, 3), EPSILON: np.arange(3 * 9.0).reshape(3, 3, 3)}
    parts = split_structures(out, per_atom(OUTPUTS) + per_structure(OUTPUTS), [slice(0, 2), slice(2, 5)])
    assert len(parts) == 2 and list(parts[0]) == [BORN_CHARGES, EPSILON]
    np.testing.assert_array_equal(parts[1][BORN_CHARGES], out[BORN_CHARGES][2:5])
    np.testing.assert_array_equal(parts[1][EPSILON], out[EPSILON][1])
    assert parts[0][EPSILON].dtype == np.float64
