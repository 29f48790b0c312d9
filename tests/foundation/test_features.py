"""Per-atom features of the foundation model for transfer learning: the right irreps, equivariant
under rotations and rotoinversions, and the very features the energy is read out from."""

from __future__ import annotations

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tensorprop import testing
from tensorprop.compiled import TRACES
from tensorprop.foundation import batch_features, features
from tensorprop.foundation.model import foundation_model_from_records
from tensorprop.foundation.nequix_source import NequixFeatureSource
from tensorprop.foundation.network import node_energies


def test_features_are_equivariant_and_feed_the_energy(mp1, reference):
    crystal = reference["structures"]["ZnO-rattled"]
    proper, improper = testing.random_rotation(5), testing.random_rotation(6, improper=True)
    batch = mp1.batch([crystal, testing.rotate(crystal, proper), testing.rotate(crystal, improper)])
    layers = features(mp1, batch)

    assert [str(x.irreps) for x in layers] == ["128x0e+64x1o+32x2e+32x3o"] * 3 + ["128x0e"]
    n = crystal.n_atoms
    for x in layers:
        assert x.shape == (batch.numbers.shape[0], x.irreps.dim)
        for k, rotation in enumerate((proper, improper), start=1):
            for (_, ir), chunk in zip(x.irreps, x.chunks):  # chunk [N, mul, 2l+1]
                d = np.asarray(ir.D_from_matrix(jnp.asarray(rotation, jnp.float32)))  # Wigner D [2l+1, 2l+1]
                original, rotated = np.asarray(chunk[:n]), np.asarray(chunk[k * n:(k + 1) * n])
                np.testing.assert_allclose(rotated, original @ d.T, atol=2e-4 * np.abs(original).max(),
                                           err_msg=f"{ir}, rotation {k}")
        scalars = np.asarray(x.filter("0e").array)
        np.testing.assert_allclose(scalars[n:2 * n], scalars[:n], atol=1e-4 * np.abs(scalars).max())
    vectors = layers[0].filter("1o").array[:n]
    assert np.abs(vectors).max() > 1e-2  # not trivially zero: the 1o channels carry the rattle

    species = jnp.asarray(mp1.arch.species_table)[batch.numbers]
    energy = float(jnp.sum(node_energies(mp1.params, mp1.arch, layers[-1], species)[:n]))
    assert energy == pytest.approx(reference["results"]["nequix-mp-1"]["ZnO-rattled"]["energy"], abs=1e-3)


def test_a_head_on_the_features_trains_in_one_jitted_function(mp1, reference):
    """batch_features inside a jitted loss, differentiable in the foundation weights (fine-tuning)."""
    batch = mp1.batch([reference["structures"]["NaCl"]])

    @jax.jit
    def loss(params, w):
        x = batch_features(params, mp1.arch, batch)[1]  # [N, 128x0e+64x1o+...]
        h = x.filter("0e").array @ w  # [N]: an invariant head
        return jnp.sum(jnp.where(batch.node_mask, h, 0.0) ** 2)

    w = jnp.ones(128) / 128
    value, (g_params, g_w) = jax.value_and_grad(loss, argnums=(0, 1))(mp1.params, w)
    assert np.isfinite(value) and value > 0
    assert np.abs(g_w).max() > 0
    g = g_params["layers"][0]["linear_2"]["w[0,0] 89x0e,256x0e"]
    assert np.all(np.isfinite(g)) and np.abs(g).max() > 0
    assert not np.any(g_params["layers"][3]["radial_mlp"][0])  # layers after the head's get no gradient


def test_irreps_known_without_a_trace_and_features_compiled_once_per_shape(mp1, reference, monkeypatch, tmp_path):
    """The layer and message irreps a feature source and the weight layout use (read off the architecture, no
    trace) are those the network traces to; the feature function is one per architecture, traced once per padded
    shape, also for a second copy of the model read from its embedded weights (which is the same object)."""
    monkeypatch.setenv("TENSORPROP_CACHE_DIR", str(tmp_path))  # nothing traced on disk by another test
    arch = mp1.arch
    batch = mp1.batch([reference["structures"]["NaCl"]])
    traced = jax.eval_shape(lambda p, b: batch_features(p, arch, b), mp1.params, batch)
    source = NequixFeatureSource(mp1.name, model=mp1)
    assert source.layer_irreps == tuple(str(x.irreps) for x in traced)
    for i in range(arch.n_layers):
        irreps_in, irreps_out = arch.layer_irreps(i)
        assert arch.tp_irreps(i) == e3nn.tensor_product(irreps_in, e3nn.s2_irreps(arch.lmax), filter_ir_out=irreps_out)

    copy = foundation_model_from_records(mp1.name, mp1.sha256, mp1.config, mp1.records(), "test copy")
    again = foundation_model_from_records(mp1.name, mp1.sha256, mp1.config, mp1.records(), "test copy again")
    assert again is copy  # an ensemble's members that embed one checkpoint read it once
    key = ("nequix features", arch, False)  # a one-structure batch: the einsum form
    first = features(copy, batch)
    before = TRACES[key]
    assert before >= 1
    second = features(mp1, batch)  # another FoundationModel, same architecture and shape: nothing traced
    assert TRACES[key] == before
    for a, b in zip(first, second):
        np.testing.assert_allclose(np.asarray(a.array), np.asarray(b.array), atol=1e-6)
