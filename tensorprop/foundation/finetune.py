"""The fine-tuned interaction layers of a Nequix network as named parameters of a tensorprop model.

A model with ``model.foundation.mode: finetune`` keeps the weights of the layers it trains in its own
parameter dict, one module per layer, ``nequix_layer_<i>`` (so they are saved in its model file, and
the optimiser can give them their own learning rate by that prefix); each weight is named
``<part>.<key>`` after its place in the layer's weights (:func:`~tensorprop.foundation.architecture.
weight_layout`): ``radial_mlp.0``, ``linear_1.w[0,0] 128x0e,128x0e``, ``layer_norm.2``, ...
The frozen layers below stay in the checkpoint, referenced by name and SHA256.

Port of Nequix (https://github.com/atomicarchitects/nequix, MIT licence, copyright (c) 2025 Teddy
Koker; the notice is in ``tensorprop/foundation/LICENSE-nequix``): fine-tuned weights are derived from
the published ones and the notice goes with them.
"""

from __future__ import annotations

__all__ = ["MODULE_PREFIX", "module_name", "flatten_layer", "unflatten_layer", "is_backbone_module"]

#: module name prefix of a fine-tuned Nequix layer in a tensorprop parameter dict
MODULE_PREFIX = "nequix_layer_"
_LISTS = ("radial_mlp", "layer_norm")  # the parts of a layer whose weights are a list, not a dict by name


def module_name(i: int) -> str:
    """Name of the parameter module holding interaction layer ``i``'s weights."""
    return f"{MODULE_PREFIX}{i}"


def is_backbone_module(name: str) -> bool:
    """True for the parameter module of a fine-tuned Nequix layer."""
    return name.startswith(MODULE_PREFIX)


def flatten_layer(weights: dict) -> dict:
    """One layer's weights (``{"radial_mlp": [W, ...], "linear_1": {name: W}, ...}``) -> ``{"part.key": W}``."""
    out = {}
    for part, value in weights.items():
        items = enumerate(value) if isinstance(value, (list, tuple)) else value.items()
        for key, w in items:
            out[f"{part}.{key}"] = w
    return out


def unflatten_layer(flat: dict) -> dict:
    """Inverse of :func:`flatten_layer`."""
    nested: dict = {}
    for name, w in flat.items():
        part, _, key = name.partition(".")
        nested.setdefault(part, {})[int(key) if part in _LISTS else key] = w
    return {part: [value[k] for k in range(len(value))] if part in _LISTS else value
            for part, value in nested.items()}
