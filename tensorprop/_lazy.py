"""Heavy third-party modules bound at import time but imported on first use.

``import e3nn_jax`` costs about 1.2 s on a 2-core CPU (it imports scipy.signal and sympy), a third of a warm
``tensorprop predict``, which needs none of it: a warm call reads its traced networks from disk
(:mod:`tensorprop.compiled`). Modules that use e3nn-jax write ``from .._lazy import e3nn`` and use ``e3nn.X``
as before: the first attribute looked up imports the package (tracing a network, building irreps), later
lookups go straight to it. Nothing may read an ``e3nn`` attribute at module level.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

__all__ = ["LazyModule", "e3nn"]


class LazyModule:
    """Stands for the module ``name``; imports it when an attribute is first looked up."""

    def __init__(self, name: str):
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str):
        if attr.startswith("__") and attr.endswith("__"):  # copy/pickle/introspection probes: not the module's
            raise AttributeError(attr)
        module = self._module
        if module is None:
            module = self._module = importlib.import_module(self._name)
        return getattr(module, attr)

    @property
    def imported(self) -> bool:
        """Whether the module has been imported (by this proxy or by anyone else in the process)."""
        return self._module is not None or self._name in sys.modules

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}{' (imported)' if self.imported else ''}>"


#: e3nn-jax (irreps, spherical harmonics, equivariant linear maps)
e3nn = LazyModule("e3nn_jax")
