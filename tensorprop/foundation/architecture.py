"""The static description of a Nequix network (:class:`NequixArchitecture`) and the layout of its weights.

The architecture is read from the JSON line that opens a ``.nqx`` checkpoint. The weights are a plain
pytree of arrays (nested dicts and lists) whose leaves come, in :func:`weight_layout` order, exactly in
the order in which equinox serialised the published ``nequix.model.Nequix`` module: ``atom_energies``,
then per layer ``radial_mlp``, ``linear_1``, ``linear_2``, ``skip``, ``layer_norm``, then ``readout``
(an e3nn linear's weights are a dict, flattened in sorted-key order as jax does).

Port of Nequix (https://github.com/atomicarchitects/nequix, MIT licence, copyright (c) 2025 Teddy
Koker; the notice is in ``tensorprop/foundation/LICENSE-nequix``).
"""

from __future__ import annotations

import dataclasses
import functools
from functools import cached_property

import numpy as np

from .._lazy import e3nn
from ..compiled import cached_per_architecture
from ..errors import CheckpointError
from ..irreps_text import normalized_irreps, plain_irreps
from ..nn.backbone import message_paths

__all__ = ["NequixArchitecture", "linear_map", "weight_layout"]

_CONFIG_KEYS = ("atomic_numbers", "hidden_irreps", "lmax", "cutoff", "n_layers", "radial_basis_size",
                "radial_mlp_size", "radial_mlp_layers", "radial_polynomial_p", "shift", "scale",
                "avg_n_neighbors", "layer_norm", "index_weights")


@dataclasses.dataclass(frozen=True)
class NequixArchitecture:
    """Static (hashable) fields of a Nequix network; a static argument of the jitted functions.

    atomic_numbers: the elements the model knows, sorted (species index = position in this tuple);
    hidden_irreps e.g. ``"128x0e + 64x1o + 32x2e + 32x3o"``; lmax of the edge spherical harmonics;
    cutoff in Angstrom; shift, scale: of the per-atom energy (eV); avg_n_neighbors: message normalisation.
    """

    atomic_numbers: tuple[int, ...]
    hidden_irreps: str
    lmax: int
    cutoff: float
    n_layers: int
    radial_basis_size: int
    radial_mlp_size: int
    radial_mlp_layers: int
    radial_polynomial_p: float
    shift: float
    scale: float
    avg_n_neighbors: float
    layer_norm: bool

    @classmethod
    def from_config(cls, config: dict, source: str = "<config>") -> "NequixArchitecture":
        """Build from a checkpoint's JSON config; CheckpointError naming ``source`` when a key is missing."""
        missing = [k for k in _CONFIG_KEYS if k not in config]
        if missing:
            raise CheckpointError(f"{source}: not a Nequix checkpoint: its config lacks {', '.join(missing)}")
        if config["index_weights"]:
            raise CheckpointError(f"{source}: Nequix checkpoints with index_weights=true (per-species skip "
                                  f"weights) are not supported")
        try:
            return cls(atomic_numbers=tuple(sorted(int(z) for z in config["atomic_numbers"])),
                       hidden_irreps=normalized_irreps(config["hidden_irreps"]), lmax=int(config["lmax"]),
                       cutoff=float(config["cutoff"]), n_layers=int(config["n_layers"]),
                       radial_basis_size=int(config["radial_basis_size"]),
                       radial_mlp_size=int(config["radial_mlp_size"]),
                       radial_mlp_layers=int(config["radial_mlp_layers"]),
                       radial_polynomial_p=float(config["radial_polynomial_p"]), shift=float(config["shift"]),
                       scale=float(config["scale"]), avg_n_neighbors=float(config["avg_n_neighbors"]),
                       layer_norm=bool(config["layer_norm"]))
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{source}: invalid Nequix config: {exc}") from None

    @property
    def n_species(self) -> int:
        return len(self.atomic_numbers)

    @cached_property
    def species_table(self) -> np.ndarray:
        """(119,) int32: atomic number -> species index, -1 for elements the model does not know."""
        table = np.full(119, -1, np.int32)
        table[list(self.atomic_numbers)] = np.arange(self.n_species, dtype=np.int32)
        return table

    def layer_irreps(self, i: int) -> tuple[e3nn.Irreps, e3nn.Irreps]:
        """(input, output) irreps of interaction layer ``i``: one-hot species in, the last layer scalars only."""
        hidden = e3nn.Irreps(self.hidden_irreps)
        irreps_in = e3nn.Irreps(f"{self.n_species}x0e") if i == 0 else hidden
        return irreps_in, hidden if i < self.n_layers - 1 else hidden.filter("0e")

    def feature_irreps(self) -> tuple[str, ...]:
        """The output irreps of every interaction layer, in order (what the feature sources concatenate), as
        ``str(self.layer_irreps(i)[1])``; read without e3nn-jax where the hidden irreps are of the plain form."""
        terms = plain_irreps(self.hidden_irreps)
        if terms is None:
            return tuple(str(self.layer_irreps(i)[1]) for i in range(self.n_layers))
        scalars = "+".join(f"{mul}x{ir}" for mul, ir in terms if ir == "0e")
        return (self.hidden_irreps,) * (self.n_layers - 1) + (scalars,)

    def tp_irreps(self, i: int) -> e3nn.Irreps:
        """Irreps of layer ``i``'s messages: input x edge harmonics, kept where the output has them
        (as ``e3nn.tensor_product`` orders them: sorted and regrouped)."""
        irreps_in, irreps_out = self.layer_irreps(i)
        return message_paths(irreps_in, e3nn.s2_irreps(self.lmax), irreps_out)[1]  # no arrays made: nothing traced

    def gated_irreps(self, i: int) -> e3nn.Irreps:
        """Irreps before the gate of layer ``i``: the output plus one 0e gate per non-scalar irrep."""
        out = self.layer_irreps(i)[1]
        gates = e3nn.Irreps(f"{out.num_irreps - out.count('0e')}x0e")
        return (out + gates).regroup()


def linear_map(irreps_in, irreps_out, *, force_irreps_out: bool = False) -> e3nn.FunctionalLinear:
    """The e3nn linear map between irreps as ``e3nn.equinox.Linear`` builds it (element path normalisation,
    path gradient normalisation, no biases; outputs absent from the input dropped unless forced)."""
    irreps_in = e3nn.Irreps(irreps_in).regroup()
    irreps_out = e3nn.Irreps(irreps_out)
    if not force_irreps_out:
        irreps_out = irreps_out.filter(keep=irreps_in).simplify()
    return e3nn.FunctionalLinear(irreps_in, irreps_out, path_normalization="element",
                                 gradient_normalization="path")


def linear_weight_names(lin: e3nn.FunctionalLinear) -> list[tuple[str, tuple[int, ...]]]:
    """(name, shape) of each weight of ``lin`` in instruction order, named as e3nn names them."""
    return [(f"w[{ins.i_in},{ins.i_out}] {lin.irreps_in[ins.i_in]},{lin.irreps_out[ins.i_out]}",
             tuple(ins.path_shape)) for ins in lin.instructions]


def layer_linears(arch: NequixArchitecture, i: int) -> dict[str, e3nn.FunctionalLinear]:
    """The three e3nn linear maps of interaction layer ``i``."""
    irreps_in, _ = arch.layer_irreps(i)
    return {"linear_1": linear_map(irreps_in, irreps_in),
            "linear_2": linear_map(arch.tp_irreps(i), arch.gated_irreps(i)),
            "skip": linear_map(irreps_in, arch.gated_irreps(i), force_irreps_out=True)}


@functools.lru_cache(maxsize=8)
def weight_layout(arch: NequixArchitecture) -> tuple[tuple[tuple, tuple[int, ...]], ...]:
    """Every weight as (key path in the params pytree, shape), in the checkpoint's leaf order.

    Kept on disk per architecture (:func:`tensorprop.compiled.cached_per_architecture`): building it makes e3nn's
    linear maps, which costs the e3nn-jax import and a few small compiles at every load of a model file.

    The params pytree: ``{"atom_energies": (n_species,), "layers": [{"radial_mlp": [W, ...],
    "linear_1": {name: W}, "linear_2": {...}, "skip": {...}, "layer_norm": [w per irrep]}, ...],
    "readout": {name: W}}`` (``layer_norm`` only when ``arch.layer_norm``).
    """
    layout = cached_per_architecture("nequix-weight-layout", arch, lambda: _weight_layout(arch))
    return tuple((tuple(key_path), tuple(shape)) for key_path, shape in layout)


def _weight_layout(arch: NequixArchitecture) -> list[tuple[tuple, tuple[int, ...]]]:
    """:func:`weight_layout`, built from e3nn's linear maps."""
    out: list[tuple[tuple, tuple[int, ...]]] = [(("atom_energies",), (arch.n_species,))]
    for i in range(arch.n_layers):
        sizes = [arch.radial_basis_size] + [arch.radial_mlp_size] * arch.radial_mlp_layers + \
                [arch.tp_irreps(i).num_irreps]
        out += [(("layers", i, "radial_mlp", k), (a, b)) for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))]
        for key, lin in layer_linears(arch, i).items():
            out += [(("layers", i, key, name), shape) for name, shape in sorted(linear_weight_names(lin))]
        if arch.layer_norm:
            out += [(("layers", i, "layer_norm", k), (mul,)) for k, (mul, _) in enumerate(arch.gated_irreps(i))]
    readout = linear_map(arch.layer_irreps(arch.n_layers - 1)[1], "0e")
    out += [(("readout", name), shape) for name, shape in sorted(linear_weight_names(readout))]
    return out
