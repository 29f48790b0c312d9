"""Distributed-charge heads for molecules: equivariant (DCMNet-style) and Cartesian (lab frame).

Both heads read the same backbone features and return raw per-atom outputs of the same
shapes: ``raw_charges`` (N, K) e and bounded ``displacements`` (N, K, 3) Angstrom, K = n_dcm;
:func:`tensorprop.physics.electrostatics.assemble_charges` turns them into neutralised
charges, absolute sites and the dipole.
"""

from __future__ import annotations

import haiku as hk
import jax
import jax.numpy as jnp

from .._lazy import e3nn
from ..physics.electrostatics import bounded_displacement
from .backbone import NUM_ELEMENTS, Backbone
from .heads import IrrepsReadout
from .model import edge_vectors

__all__ = ["EquivariantChargeHead", "CartesianChargeHead", "charges_network_fn", "transformed_charges_network"]


class EquivariantChargeHead(hk.Module):
    """features (N, irreps) -> K charges from 0e and K displacement vectors from 1o.

    Displacements have length ``max_displacement * tanh(|v|)`` along the 1o output ``v``, so
    the charge sites rotate (and reflect) with the molecule and the charges are invariant.
    """

    def __init__(self, cfg, hidden_irreps, name=None):
        super().__init__(name=name)
        self.cfg = cfg
        self.hidden_irreps = hidden_irreps

    def __call__(self, features: e3nn.IrrepsArray):
        k = self.cfg.n_dcm
        out = IrrepsReadout(self.hidden_irreps, f"{k}x0e + {k}x1o", name="readout")(features)
        charges = out.filter(keep="0e").array  # [N, K]
        vectors = out.filter(keep="1o").array.reshape(-1, k, 3)  # [N, K, 3] (mul-major layout)
        return charges, bounded_displacement(vectors, self.cfg.max_displacement)


class CartesianChargeHead(hk.Module):
    """Invariant (0e) features and a species embedding -> MLP -> K x (charge, dx, dy, dz) in the lab frame.

    Displacements are ``tanh(raw) * max_displacement`` component-wise; they do not rotate
    with the molecule (the point of the comparison), unless training augments rotations.
    """

    def __init__(self, cfg, name=None):
        super().__init__(name=name)
        self.cfg = cfg

    def __call__(self, features: e3nn.IrrepsArray, numbers: jax.Array):
        cfg = self.cfg
        species = hk.Embed(NUM_ELEMENTS, 16, name="species")(numbers)  # [N, 16]
        x = jnp.concatenate([features.filter(keep="0e").array, species], axis=-1)
        for i in range(cfg.layers):
            x = jax.nn.silu(hk.Linear(cfg.features, name=f"dense_{i}")(x))
        raw = hk.Linear(4 * cfg.n_dcm, name="out")(x).reshape(-1, cfg.n_dcm, 4)  # [N, K, 4]
        return raw[..., 0], jnp.tanh(raw[..., 1:]) * cfg.max_displacement


def charges_network_fn(model_cfg, charges_cfg):
    """A function ``GraphBatch -> {"raw_charges": (N, K), "displacements": (N, K, 3)}``."""

    def forward(batch):
        vectors = edge_vectors(batch.positions, batch.senders, batch.receivers, batch.shifts)
        features = Backbone(model_cfg, name="backbone")(
            vectors, batch.numbers, batch.senders, batch.receivers, batch.edge_mask)
        if charges_cfg.head == "equivariant":
            q, d = EquivariantChargeHead(charges_cfg, model_cfg.head_irreps, name="charge_head")(features)
        else:
            q, d = CartesianChargeHead(charges_cfg, name="charge_head")(features, batch.numbers)
        return {"raw_charges": q, "displacements": d}

    return forward


def transformed_charges_network(model_cfg, charges_cfg) -> hk.Transformed:
    return hk.without_apply_rng(hk.transform(charges_network_fn(model_cfg, charges_cfg)))
