"""Irreps sums read without e3nn-jax agree with e3nn-jax's own reading; other forms go to e3nn."""

from __future__ import annotations

import e3nn_jax as e3nn
import pytest

from tensorprop._lazy import LazyModule
from tensorprop.irreps_text import irreps_dim, normalized_irreps, plain_irreps

PLAIN = ["32x0e + 16x1e + 16x2e + 16x1o", "0e+1o", "1x0e", "128x0e+64x1o+32x2e+32x3o", " 2x1e +0x2o + 3e ",
         "10x11o"]


@pytest.mark.parametrize("text", PLAIN)
def test_plain_sums_read_as_e3nn_reads_them(text):
    reference = e3nn.Irreps(text)
    assert plain_irreps(text) == [(mul, str(ir)) for mul, ir in reference]
    assert normalized_irreps(text) == str(reference)
    assert irreps_dim(text) == reference.dim


@pytest.mark.parametrize("text", ["2x1y + 0e", "0e + 1o + (bad)", "", "3x", None])
def test_other_forms_are_left_to_e3nn(text):
    assert plain_irreps(text) is None
    try:
        reference = e3nn.Irreps(text)
    except Exception:  # noqa: BLE001 (e3nn's own error is what the caller sees)
        with pytest.raises(Exception):
            normalized_irreps(text)
        return
    assert normalized_irreps(text) == str(reference) and irreps_dim(text) == reference.dim


def test_a_lazy_module_imports_on_first_attribute():
    lazy = LazyModule("json")
    assert lazy.dumps([1]) == "[1]" and lazy.imported
    with pytest.raises(AttributeError):
        lazy.__wrapped__  # noqa: B018 (introspection probes do not import)
    missing = LazyModule("no_such_module_tensorprop")
    assert not missing.imported
    with pytest.raises(ModuleNotFoundError):
        missing.anything  # noqa: B018
