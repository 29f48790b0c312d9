"""The fused message sum of the backbone equals e3nn's tensor product, weighted and summed per receiver."""

from __future__ import annotations

import functools

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tensorprop.nn.backbone import message_paths, weighted_messages, with_gate_scalars


def _reference(x, sh, weights, senders, receivers, n_nodes, irreps_out):
    """The plain composition: tensor product of every edge, one weight per irrep copy, scatter-sum."""
    messages = e3nn.tensor_product(x[senders], sh, filter_ir_out=irreps_out)
    index = np.repeat(np.arange(messages.irreps.num_irreps),
                      [ir.dim for mul, ir in messages.irreps for _ in range(mul)])
    messages = e3nn.IrrepsArray(messages.irreps, messages.array * weights[:, index])
    return e3nn.scatter_sum(messages, dst=receivers, output_size=n_nodes)


@pytest.mark.parametrize("hidden, lmax", [("8x0e + 8x0o + 4x1o + 4x1e + 3x2o + 3x2e", 3),
                                          ("5x0e + 2x2e + 3x1o + 2x0e", 2), ("4x0e", 1)])
def test_weighted_messages_equal_tensor_product_composition(hidden, lmax):
    rng = np.random.default_rng(7)
    n, e = 11, 40
    irreps = e3nn.Irreps(hidden)
    target = with_gate_scalars(e3nn.Irreps("6x0e + 4x1o + 2x2e + 2x1e"))
    x = e3nn.IrrepsArray(irreps, jnp.asarray(rng.normal(size=(n, irreps.dim)), jnp.float32))
    sh = e3nn.spherical_harmonics(e3nn.Irreps.spherical_harmonics(lmax), jnp.asarray(rng.normal(size=(e, 3))),
                                  normalize=True, normalization="component")
    senders, receivers = (jnp.asarray(rng.integers(0, n, e), jnp.int32) for _ in range(2))
    paths, out_irreps = message_paths(x.irreps, sh.irreps, target)
    expected_irreps = e3nn.tensor_product(x.irreps, sh.irreps, filter_ir_out=target)
    assert out_irreps == expected_irreps and len(paths) > 0
    weights = jnp.asarray(rng.normal(size=(e, out_irreps.num_irreps)), jnp.float32)

    def compiled(f):  # (features, weights, sh) -> message sums, jit-compiled (eager e3nn is slow)
        return jax.jit(lambda a, w, s: f(e3nn.IrrepsArray(irreps, a), e3nn.IrrepsArray(sh.irreps, s), w, senders,
                                         receivers, n, target).array)

    got, want = (compiled(f)(x.array, weights, sh.array) for f in (weighted_messages, _reference))
    einsum = compiled(functools.partial(weighted_messages, unrolled=False))(x.array, weights, sh.array)
    np.testing.assert_allclose(einsum, want, atol=2e-5 * float(jnp.abs(want).max()))
    np.testing.assert_allclose(got, want, atol=2e-5 * float(jnp.abs(want).max()))

    def grads(f):  # gradients reach the features and the weights the same way
        return jax.jit(jax.grad(lambda a, w, s: jnp.sum(jnp.sin(compiled(f)(a, w, s))), argnums=(0, 1)))(
            x.array, weights, sh.array)

    for g, w in zip(grads(weighted_messages), grads(_reference)):
        np.testing.assert_allclose(g, w, atol=2e-5 * float(jnp.abs(w).max()))


def test_weighted_messages_refuse_a_wrong_number_of_weights():
    x = e3nn.IrrepsArray("2x0e + 1x1o", jnp.ones((3, 5)))
    sh = e3nn.spherical_harmonics("0e + 1o", jnp.ones((4, 3)), normalize=True)
    with pytest.raises(ValueError, match="radial weights"):
        weighted_messages(x, sh, jnp.ones((4, 2)), jnp.zeros(4, int), jnp.zeros(4, int), 3, "0e + 1o")
