"""Pretrained universal potentials (Nequix) inside tensorprop: checkpoint reader, network, ase calculator,
per-atom features for transfer learning.

Public API
----------
load_foundation_model(name_or_path="nequix-mp-1-pft", *, sha256=None, download=True) -> FoundationModel
resolve_foundation_model(name_or_path, *, sha256=None, download=True) -> (Path, sha256)
calculator(name_or_path="nequix-mp-1-pft", **kwargs) -> ase Calculator (energy, free_energy, forces, stress)
features(model, batch) -> list of per-layer IrrepsArrays [N, irreps]
batch_features(params, arch, batch) -> the same, pure (jit with ``arch`` static; differentiable in params)
energy_forces_stress(params, arch, batch) -> energies [G], forces [N, 3], stresses [G, 3, 3] (jitted)
sources.open_source(name, sha256="") -> a feature source (a checkpoint's, or the ``stand-in:nequip`` backbone of the
    tests): structures -> per-atom features, what the heads of ``model.task: foundation`` read (``sources``,
    ``nequix_source``)

The network is a port of Nequix (Koker et al., arXiv 2508.16067; https://github.com/atomicarchitects/nequix)
into e3nn-jax, verified against the nequix package (tests/foundation/). The published weights and the
architecture are MIT-licensed, copyright (c) 2025 Teddy Koker: the notice is shipped as
``tensorprop/foundation/LICENSE-nequix`` and must be kept with any copy of the weights or weights derived
from them.
"""

from .architecture import NequixArchitecture
from .calculator import NequixCalculator, calculator
from .checkpoint import read_checkpoint
from .lookup import PUBLISHED, resolve_foundation_model
from .model import FoundationModel, load_foundation_model
from .potential import batch_features, energy_forces_stress

__all__ = ["FoundationModel", "NequixArchitecture", "NequixCalculator", "PUBLISHED", "batch_features",
           "calculator", "energy_forces_stress", "features", "load_foundation_model", "read_checkpoint",
           "resolve_foundation_model"]


def features(model: FoundationModel, batch):
    """Hidden node features after each interaction layer of a foundation model.

    Parameters
    ----------
    model : FoundationModel
    batch : tensorprop.data.batching.GraphBatch
        Built with a cutoff >= ``model.cutoff`` (6 A for the published models), e.g. ``model.batch(structures)``
        or ``tensorprop.data.batching.collate`` of ``build_graph(crystal, model.cutoff)`` graphs.

    Returns
    -------
    list of ``model.arch.n_layers`` (4) ``e3nn.IrrepsArray`` of shape [N, irreps], N padded nodes (mask rows
    with ``batch.node_mask``): 128x0e+64x1o+32x2e+32x3o after layers 1-3, 128x0e after layer 4.
    Inside a jitted function (a head on top, fine-tuning) use :func:`batch_features` with
    ``model.params`` as an argument and ``model.arch`` static.
    """
    return model.features(batch)
