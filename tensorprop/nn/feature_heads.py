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

Either feeds the project's gated :class:`~tensorprop.nn.heads.IrrepsReadout`; the raw irreps go to
:func:`tensorprop.physics.assemble.assemble_tensors` as those of the own backbone do (exact sum rule,
eps = I + expm(S)).
"""

from __future__ import annotations

import e3nn_jax as e3nn
import haiku as hk
import jax.numpy as jnp

from ..physics.tensors import BORN_IRREPS, EPSILON_IRREPS
from .backbone import Interaction
from .heads import IrrepsReadout, graph_mean
from .radial import radial_embedding

__all__ = ["TensorSquare", "feature_heads_fn"]

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


def feature_heads_fn(config):
    """``batch -> {"born_irreps": (N, 9), "epsilon_irreps": (G, 6)}`` (and the sum-rule weights with
    ``sum_rule: weighted``) of a :class:`~tensorprop.data.feature_batching.FeatureBatch`.

    ``config.foundation.feature_irreps`` names the irreps of ``batch.features`` (N, F).
    """
    fc = config.foundation
    weighted = config.sum_rule == "weighted"
    feature_irreps = e3nn.Irreps(fc.feature_irreps)

    def forward(batch):
        from .model import edge_vectors, sum_rule_weights

        graph = batch.graph
        x = e3nn.IrrepsArray(feature_irreps, batch.features)
        if fc.readout == "square":
            h = TensorSquare(fc.channels, name="tensor_square")(x)
        else:
            vectors = edge_vectors(graph.positions, graph.senders, graph.receivers, graph.shifts)
            edge_sh = e3nn.spherical_harmonics(e3nn.Irreps.spherical_harmonics(config.sh_lmax), vectors,
                                               normalize=True, normalization="component")
            edge_radial = radial_embedding(jnp.linalg.norm(vectors, axis=-1), n=config.num_radial_basis,
                                           cutoff=config.cutoff, p=config.envelope_exponent)
            h = Interaction(config.hidden_irreps, radial_hidden=config.radial_hidden,
                            avg_num_neighbors=config.avg_num_neighbors, name="interaction")(
                x, edge_sh, edge_radial, graph.senders, graph.receivers, graph.edge_mask)
        out = {}
        if "born_charges" in config.targets:
            raw = IrrepsReadout(config.head_irreps, BORN_IRREPS + ("0e" if weighted else ""),
                                name="born_head")(h).array
            out["born_irreps"] = raw[:, :9]
            if weighted:
                out["born_sum_rule_weights"] = sum_rule_weights(raw[:, 9])
        if "epsilon" in config.targets:
            per_atom = IrrepsReadout(config.head_irreps, EPSILON_IRREPS, name="epsilon_head")(h).array
            out["epsilon_irreps"] = graph_mean(per_atom, graph.node_graph, graph.node_mask, graph.n_graphs)
        return out

    return forward
