"""Z* and eps_inf heads on per-atom features computed elsewhere (a pretrained universal potential).

The features of a Nequix-style potential hold the irreps 0e, 1o, 2e, 3o: no 1e, which the
antisymmetric part of Z* needs. Two readouts make it:

* ``square``: two linear projections a, b of the features (``channels`` copies of each irrep) and
  their channel-by-channel tensor product a_c (x) b_c, kept to 0e + 1e + 2e (1o x 1o, 2e x 2e and
  3o x 3o each give 0e, 1e and 2e), joined with the features' own 0e and 2e. Per atom, no edges:
  a frozen-feature model then trains on cached node arrays alone.
* ``interaction``: one :class:`~tensorprop.nn.backbone.Interaction` layer of tensorprop's own
  backbone, the features as its initial node features, over the neighbour graph within
  ``model.cutoff`` (1o x Y1 gives 1e).
* ``backbone``: tensorprop's whole backbone (:class:`~tensorprop.nn.backbone.Backbone`, ``model.num_layers``
  interactions of ``model.hidden_irreps``) with a linear projection of the features as its initial node
  features in place of its species embedding: the own network's geometry on the pretrained chemistry.

With ``model.foundation.mode: finetune`` the heads' input is made inside the network: the cached
features of the frozen lower layers arrive with the batch, the trained layers (:class:`NequixLayerWeights`:
their weights are parameters of this network, initialised to the checkpoint's) run on them over the
batch's neighbour graph (:func:`fine_tuned_features`).

Either feeds the project's gated :class:`~tensorprop.nn.heads.IrrepsReadout`; the raw irreps go to
:func:`tensorprop.physics.assemble.assemble_tensors` as those of the own backbone do (exact sum rule,
eps = I + expm(S)).
"""

from __future__ import annotations

import haiku as hk
import jax
import jax.numpy as jnp

from .._lazy import e3nn
from ..foundation.finetune import flatten_layer, module_name, unflatten_layer
from ..foundation.model import load_foundation_model
from ..foundation.network import layers_from
from ..foundation.potential import species_indices
from ..foundation.sources import first_trained_layer
from .backbone import Backbone, Interaction, edge_embedding
from .model import edge_vectors, tensor_heads

__all__ = ["TensorSquare", "NequixLayerWeights", "fine_tuned_features", "feature_heads_fn"]

_WANTED = ("0e", "1e", "2e")


class TensorSquare(hk.Module):
    """features (N, irreps) -> (N, 0e + 1e + 2e irreps): per-channel products of two linear projections.

    Every irrep of the input with a multiplicity gets ``channels`` copies in each projection; the
    product of copy c of projection a with copy c of projection b (Clebsch-Gordan, component
    normalised) is kept where it is 0e, 1e or 2e. The input's own 0e and 2e are appended.
    """

    def __init__(self, channels: int, name=None):
        super().__init__(name=name)
        self.channels = channels

    def __call__(self, x: e3nn.IrrepsArray) -> e3nn.IrrepsArray:
        irreps = e3nn.Irreps([(self.channels, ir) for _, ir in x.irreps.regroup()])
        a = e3nn.haiku.Linear(irreps, name="left")(x).regroup()
        b = e3nn.haiku.Linear(irreps, name="right")(x).regroup()
        products = e3nn.elementwise_tensor_product(a, b, filter_ir_out=_WANTED)
        return e3nn.concatenate([x.filter(keep=["0e", "2e"]), products]).regroup()


class NequixLayerWeights(hk.Module):
    """The weights of interaction layer ``i`` of a Nequix network as parameters of module ``nequix_layer_<i>``,
    initialised to ``pretrained`` (that layer's weights in the checkpoint). Called -> the nested weights
    dict that :func:`tensorprop.foundation.network.interaction` reads."""

    def __init__(self, i: int, pretrained: dict):
        super().__init__(name=module_name(i))
        self.pretrained = pretrained

    def __call__(self) -> dict:
        def constant(value):
            return lambda shape, dtype: jnp.asarray(value, dtype)

        return unflatten_layer({name: hk.get_parameter(name, w.shape, init=constant(w))
                                for name, w in flatten_layer(self.pretrained).items()})


def fine_tuned_features(fc, graph, frozen: jnp.ndarray) -> e3nn.IrrepsArray:
    """The heads' input in finetune mode: per-layer features of the foundation checkpoint ``fc.name``, the
    frozen lower layers' from ``frozen`` (N, F) (cached, concatenated), the trained layers' computed over
    ``graph`` (a GraphBatch at ``model.cutoff`` >= the checkpoint's cutoff; the radial envelope drops edges
    beyond it) with this network's parameters; the layers ``fc.layers`` (all if empty) concatenated."""

    checkpoint = load_foundation_model(fc.name, sha256=fc.sha256 or None)
    arch = checkpoint.arch
    n = arch.n_layers
    first = first_trained_layer(fc, n)
    layers, start = [], 0
    for i in range(first):
        irreps = arch.layer_irreps(i)[1]
        layers.append(e3nn.IrrepsArray(irreps, frozen[:, start:start + irreps.dim]))
        start += irreps.dim
    if start != frozen.shape[1]:
        raise ValueError(f"fine-tuned foundation model: the batch carries {frozen.shape[1]} feature columns, the "
                         f"frozen layers 0-{first - 1} of {fc.name} have {start}")
    if first == 0:
        x = e3nn.IrrepsArray(f"{arch.n_species}x0e", jax.nn.one_hot(species_indices(arch, graph.numbers),
                                                                   arch.n_species, dtype=graph.positions.dtype))
    else:
        x = layers[-1]
    weights = {i: NequixLayerWeights(i, checkpoint.params["layers"][i])() for i in range(first, n)}
    vectors = edge_vectors(graph.positions, graph.senders, graph.receivers, graph.shifts)
    layers += layers_from(arch, first, weights, x, vectors, graph.senders, graph.receivers, graph.edge_mask)
    chosen = [k % n for k in fc.layers] if fc.layers else range(n)
    return e3nn.concatenate([layers[k] for k in chosen])


def feature_heads_fn(config):
    """``batch -> {"born_irreps": (N, 9), "epsilon_irreps": (G, 6)}`` (and the sum-rule weights with
    ``sum_rule: weighted``) of a :class:`~tensorprop.data.feature_batching.FeatureBatch`.

    ``config.foundation.feature_irreps`` names the irreps of ``batch.features`` (N, F): the heads' input in
    frozen mode, the frozen lower layers' in finetune mode (see :func:`fine_tuned_features`).
    """
    fc = config.foundation

    def forward(batch):
        graph = batch.graph
        if fc.mode == "finetune":
            x = fine_tuned_features(fc, graph, batch.features)
        else:
            x = e3nn.IrrepsArray(fc.feature_irreps, batch.features)
        if fc.readout == "square":
            h = TensorSquare(fc.channels, name="tensor_square")(x)
        else:
            vectors = edge_vectors(graph.positions, graph.senders, graph.receivers, graph.shifts)
            if fc.readout == "backbone":
                h = Backbone(config, name="backbone")(vectors, graph.numbers, graph.senders, graph.receivers,
                                                      graph.edge_mask, initial=x)
            else:  # interaction
                edge_sh, edge_radial = edge_embedding(config, vectors)
                h = Interaction(config.hidden_irreps, radial_hidden=config.radial_hidden,
                                avg_num_neighbors=config.avg_num_neighbors, name="interaction")(
                    x, edge_sh, edge_radial, graph.senders, graph.receivers, graph.edge_mask)
        return tensor_heads(config, lambda target: h, graph.node_graph, graph.node_mask, graph.n_graphs)

    return forward
