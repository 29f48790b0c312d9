"""One backbone per target, evaluated as one backbone vmapped over the targets' stacked parameters: the same
outputs and gradients as each backbone on its own, with one backbone traced instead of two."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tensorprop.nn import backbone as backbone_module
from tensorprop.nn.model import per_target_backbones
from tensorprop.physics.assemble import assemble_tensors
from tests.conftest import triclinic, wurtzite_zno


@pytest.mark.slow
def test_vmapped_backbones_equal_the_separate_ones(variant_tiny_model, monkeypatch):
    model = variant_tiny_model
    config, task = model.config, model.task
    assert config.backbone_per_target and len(config.targets) == 2
    _, _, batches = task.prediction_batches(model, [triclinic(), wurtzite_zno()])
    (_, batch), = batches

    calls = []
    original = backbone_module.Backbone.__call__
    monkeypatch.setattr(backbone_module.Backbone, "__call__", lambda self, *a: calls.append(self.module_name)
                        or original(self, *a))

    def stacked(params):  # what the task evaluates (training and prediction)
        return task.apply(config, params, model.stats, batch)

    def separate(params):  # each target's backbone called by its own haiku module
        return assemble_tensors(task.network(config).apply(params, batch), batch, model.stats)

    got, want = jax.jit(stacked)(model.params), jax.jit(separate)(model.params)
    assert calls == ["backbone", "backbone_born_charges", "backbone_epsilon"]  # one vmapped call, then the two
    for key in want:
        np.testing.assert_allclose(got[key], want[key], atol=2e-6 * max(1.0, float(np.abs(want[key]).max())),
                                   err_msg=key)
    features = per_target_backbones(config, model.params, batch)
    assert np.abs(np.asarray(features["backbone_born_charges"].array)
                  - np.asarray(features["backbone_epsilon"].array)).max() > 1e-3  # each its own weights

    def loss(fn):
        def value(p):
            out = fn(p)
            return jnp.sum(out["born_charges"] ** 2) + jnp.sum(out["epsilon"] ** 2)
        return jax.jit(jax.grad(value))

    g_got, g_want = loss(stacked)(model.params), loss(separate)(model.params)
    for name in ("backbone_born_charges", "backbone_epsilon"):  # every backbone weight gets its own gradient
        keys = [k for k in g_want if k.startswith(name + "/")]
        assert keys
        for k in keys:
            for w in g_want[k]:
                np.testing.assert_allclose(g_got[k][w], g_want[k][w], atol=1e-5 * max(1.0, float(np.abs(g_want[k][w]).max())),
                                           err_msg=f"{k}/{w}")
        assert max(float(np.abs(g_want[k][w]).max()) for k in keys for w in g_want[k]) > 1e-4
