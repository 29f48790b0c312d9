"""Compiled prediction functions shared by every model instance, and JAX's persistent compilation cache.

``jax.jit`` compiles once per jitted function and padded input shape. A function jitted per model
instance recompiles every shape for every instance (and for each member of an ensemble); here one
jitted function is kept per architecture, keyed on the frozen config (plus, for ensembles, the
members' grouping), for the life of the process. Compiled executables also go to JAX's persistent
cache on disk, so a new process with a warm cache loads them instead of compiling:

- its folder is ``jax/`` in tensorprop's user cache (:func:`tensorprop.data.registry.cache_dir`:
  ``$TENSORPROP_CACHE_DIR``, else ``$XDG_CACHE_HOME/tensorprop``, i.e. ``~/.cache/tensorprop/jax``);
  ``TENSORPROP_COMPILATION_CACHE=off`` (or ``0``, ``none``, ``false``, ``no``) turns it off. A folder that cannot
  be created or written turns it off with one warning. An unreadable or foreign entry is ignored
  and rebuilt by JAX (with a warning), never an error; JAX writes entries atomically, so several
  processes may share the folder. A JAX cache folder the user configured already is left alone.

:data:`TRACES` counts the traces of each shared function (one per new padded shape), so a test can
check that a second instance of an architecture compiles nothing new.

A new process with a warm disk cache would still trace the network (seconds of Python for the bundled
ensemble) before finding its compiled code on disk. So the traced computation itself is kept too: each
(architecture, input shapes) is traced once through ``jax.export`` and its serialised StableHLO written to
``exported/`` beside ``jax/``; a later process deserialises it (milliseconds) and only loads the compiled
code. Entries are keyed on :func:`code_fingerprint`, so an edit of tensorprop or another jax/e3nn/haiku
version never reuses a stale computation; an unreadable entry is traced again and rewritten.

:func:`cached_per_architecture` keeps small traced results (a network's parameter shapes) in ``shapes/`` of
the same user cache, keyed on the architecture and :func:`code_fingerprint` (tensorprop's source and the
versions of jax, e3nn-jax and haiku), so that loading a model in a new process traces nothing.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import json
import os
import tempfile
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Hashable, Iterable

import jax
import jax.export
import numpy as np

from .data.registry import cache_dir as registry_cache_dir

__all__ = ["shared_jit", "compile_once", "TRACES", "cache_dir", "enable_compilation_cache", "cached_per_architecture",
           "read_per_architecture", "code_fingerprint", "run_overlapped"]

#: traces (compilations) of each shared function, by its key; one per new padded shape
TRACES: collections.Counter = collections.Counter()
_FUNCTIONS: dict = {}
_CACHE_STATE: dict = {}
#: compiles shorter than this (s) are not written to the disk cache (JAX's own default is 1 s)
MIN_COMPILE_SECONDS = 0.5
#: packages whose code shapes a traced network besides tensorprop's own
TRACED_PACKAGES = ("jax", "jaxlib", "e3nn-jax", "dm-haiku")


def shared_jit(key: Hashable, make: Callable[[], Callable]) -> "SharedFunction":
    """The compiled function for ``key``, made once per process from ``make()`` (called on a miss only).

    ``key``: hashable and equal for equal architectures, e.g. ``("tensors", model_config)``.
    """
    shared = _FUNCTIONS.get(key)
    if shared is None:
        enable_compilation_cache()
        fn = make()

        def counted(*args, **kwargs):  # runs at trace time only: counts compilations
            TRACES[key] += 1
            return fn(*args, **kwargs)

        shared = _FUNCTIONS[key] = SharedFunction(key, jax.jit(counted))
    return shared


#: XLA options for functions run once per process (parameter initialisation): the backend's optimisation level 0
#: halves their compile (about 5 -> 2.5 s for a small network's init, most of it the unrolled threefry random
#: numbers); run once, the slower code costs nothing that shows. Not for predictions: 3x slower there.
ONE_OFF_COMPILER_OPTIONS = {"xla_backend_optimization_level": 0}


def compile_once(fn: Callable, *args):
    """``jax.jit(fn)`` compiled for ``args`` (arrays or shape/dtype structs) with :data:`ONE_OFF_COMPILER_OPTIONS`:
    for functions called once or a few times with one signature (e.g. a network's ``init``)."""
    enable_compilation_cache()
    return jax.jit(fn).lower(*args).compile(compiler_options=ONE_OFF_COMPILER_OPTIONS)


def _dtype(x) -> np.dtype:
    """The dtype jax computes with for the argument ``x`` (float64 -> float32 unless x64 is enabled)."""
    return jax.dtypes.canonicalize_dtype(x.dtype if hasattr(x, "dtype") else np.result_type(x))


class SharedFunction:
    """``jax.jit(fn)`` for positional array arguments, its traces kept on disk (``exported/``, see the module
    docstring) when called with concrete arrays; ``lower``, ``trace`` and other attributes are the jitted
    function's. ``_cache_size()``: the input shapes seen so far."""

    def __init__(self, key: Hashable, jitted):
        self.key = key
        self.jitted = jitted
        self._calls: dict = {}  # input signature -> jitted call of the exported computation (or the plain jit)
        self._compiled: set = set()  # the signatures whose call has run (compiled) at least once

    def __getattr__(self, name):
        return getattr(self.jitted, name)

    def _cache_size(self) -> int:
        return len(self._calls)

    def __call__(self, *args):
        leaves = jax.tree.leaves(args)
        if any(isinstance(x, jax.core.Tracer) for x in leaves):  # inside another transformation: plain jit
            return self.jitted(*args)
        return self.prepare(*args)()

    def prepare(self, *args) -> Callable[[], Any]:
        """The traced computation for concrete ``args``, read from disk or traced now (in this thread), as a
        call without arguments that compiles it on first use (or reads the compiled code from JAX's cache)
        and runs it; its attribute ``compiles`` says whether it will compile. XLA's compiler releases the
        GIL, so such a call may go to a worker thread while this one traces another function: the compile
        of one overlaps the trace and compile of the next (:func:`run_overlapped`)."""
        leaves, treedef = jax.tree.flatten(args)
        signature = (treedef, tuple((np.shape(x), _dtype(x)) for x in leaves))
        call = self._calls.get(signature)
        if call is None:
            call = self._calls[signature] = self._exported_call(signature)
        if signature in self._compiled:
            prepared = functools.partial(call, *leaves)
            prepared.compiles = False
            return prepared

        def first_call():
            out = call(*leaves)
            self._compiled.add(signature)
            return out

        first_call.compiles = True
        return first_call

    def _exported_call(self, signature) -> Callable:
        """The jitted call of the exported computation for ``signature`` (read from disk, or traced and written)."""
        treedef, avals = signature
        folder = cache_dir()
        path = None
        if folder is not None and _serialisable():
            text = f"{self.key!r}\n{treedef}\n{avals}\n{jax.default_backend()}\n{code_fingerprint()}"
            path = folder.parent / "exported" / f"{hashlib.sha256(text.encode()).hexdigest()[:40]}.bin"
            try:
                return jax.jit(jax.export.deserialize(bytearray(path.read_bytes())).call)
            except FileNotFoundError:
                pass
            except Exception as exc:  # noqa: BLE001 (an unreadable entry, whatever jax makes of it): trace again
                warnings.warn(f"{path}: unreadable traced computation ({type(exc).__name__}); tracing again",
                              stacklevel=4)

        def flat(*leaves):
            return self.jitted(*jax.tree.unflatten(treedef, leaves))

        specs = [jax.ShapeDtypeStruct(shape, dtype) for shape, dtype in avals]
        try:
            exported = jax.export.export(jax.jit(flat))(*specs)
        except Exception as exc:  # noqa: BLE001 (not exportable, e.g. a custom call jax does not guarantee): plain jit
            jax.jit(flat).trace(*specs)  # unless the function itself fails (e.g. a parameter of another shape): raised
            warnings.warn(f"{self.key[0]} network: not exportable ({type(exc).__name__}: {exc}); compiling without "
                          "the traced-computation cache", stacklevel=4)
            return jax.jit(flat)
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                with tempfile.NamedTemporaryFile("wb", dir=path.parent, suffix=".tmp", delete=False) as fh:
                    fh.write(exported.serialize())
                os.replace(fh.name, path)
            except OSError:  # a read-only cache: used in this process only
                pass
        return jax.jit(exported.call)


def run_overlapped(prepared: Iterable[Callable[[], Callable[[], Any]]]) -> list:
    """Run the calls that the items of ``prepared`` make (each a ``lambda: shared.prepare(*args)``), in order,
    overlapping each one's XLA compile with the preparation (tracing) of the next: preparations run in this
    thread one after another, the calls that compile (``SharedFunction.prepare``'s ``compiles``) in worker
    threads. -> the calls' results, in order.

    On a cold start of an ensemble of two architectures this makes the wall time about trace + compile of the
    slower group instead of the sum of both; calls already compiled run here, one after another (two
    executables at once would only share the cores)."""
    prepared = list(prepared)
    pool, results = None, []
    try:
        for make in prepared:
            call = make()  # traces here (or reads the traced computation from disk)
            if len(prepared) > 1 and getattr(call, "compiles", True):
                pool = pool or ThreadPoolExecutor(max_workers=len(prepared), thread_name_prefix="tensorprop-compile")
                results.append(pool.submit(call))
            else:
                results.append(call())
        return [r.result() if isinstance(r, Future) else r for r in results]
    finally:
        if pool is not None:
            pool.shutdown(wait=True)


def cache_dir() -> Path | None:
    """The persistent compilation cache folder, ``jax/`` in tensorprop's user cache (None: turned off by
    ``TENSORPROP_COMPILATION_CACHE=off``)."""
    if os.environ.get("TENSORPROP_COMPILATION_CACHE", "").strip().lower() in ("0", "off", "none", "false", "no"):
        return None
    return registry_cache_dir() / "jax"


def enable_compilation_cache() -> Path | None:
    """Point JAX's persistent compilation cache at :func:`cache_dir` (once per process); returns the folder
    in use, or None when it is off or the user configured JAX's cache already."""
    if "dir" in _CACHE_STATE:
        return _CACHE_STATE["dir"]
    _CACHE_STATE["dir"] = None
    if jax.config.jax_compilation_cache_dir:  # set by the user (JAX_COMPILATION_CACHE_DIR): keep it
        return None
    path = cache_dir()
    if path is None:
        return None
    try:
        path.mkdir(parents=True, exist_ok=True)
        if not os.access(path, os.W_OK | os.X_OK):
            raise PermissionError("not writable")
    except OSError as exc:
        warnings.warn(f"{path}: compilation cache folder unusable ({exc}); compiling without it "
                      "(set TENSORPROP_CACHE_DIR to another folder, or TENSORPROP_COMPILATION_CACHE=off)", stacklevel=3)
        return None
    jax.config.update("jax_compilation_cache_dir", str(path))
    if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    _CACHE_STATE["dir"] = path
    return path


def _serialisable() -> bool:
    """Whether jax can serialise an exported computation here (it needs the ``flatbuffers`` package)."""
    try:
        import flatbuffers  # noqa: F401 (jax.export's optional dependency: only its presence matters)
    except ImportError:
        return False
    return True


def code_fingerprint() -> str:
    """sha256 of tensorprop's Python source and the versions of :data:`TRACED_PACKAGES` (computed once per
    process): what a network traces to, besides its config. Any edit of the package changes it."""
    if "fingerprint" not in _CACHE_STATE:
        h = hashlib.sha256()
        root = Path(__file__).parent
        for path in sorted(root.rglob("*.py")):
            h.update(str(path.relative_to(root)).encode())
            h.update(path.read_bytes())
        for name in TRACED_PACKAGES:
            try:
                h.update(f"{name}={metadata.version(name)}".encode())
            except metadata.PackageNotFoundError:
                h.update(f"{name}=none".encode())
        _CACHE_STATE["fingerprint"] = h.hexdigest()
    return _CACHE_STATE["fingerprint"]


def _from_json(x):
    """JSON lists back to tuples (shapes), dicts kept: the inverse of ``json.dumps`` on nested dicts of tuples."""
    if isinstance(x, dict):
        return {k: _from_json(v) for k, v in x.items()}
    if isinstance(x, list):
        return tuple(_from_json(v) for v in x)
    return x


def _per_architecture_path(kind: str, key: Hashable) -> Path | None:
    """The file of :func:`cached_per_architecture`'s entry (None: the cache is off)."""
    folder = cache_dir()
    if folder is None:
        return None
    digest = hashlib.sha256(f"{kind}\n{key!r}\n{code_fingerprint()}".encode()).hexdigest()[:40]
    return folder.parent / "shapes" / f"{kind}-{digest}.json"


def read_per_architecture(kind: str, key: Hashable) -> Any:
    """The value :func:`cached_per_architecture` keeps for ``key``, if it is on disk and readable; else None
    (nothing is made)."""
    path = _per_architecture_path(kind, key)
    if path is None:
        return None
    try:
        return _from_json(json.loads(path.read_text()))
    except (OSError, ValueError):  # absent, or unreadable
        return None


def cached_per_architecture(kind: str, key: Hashable, make: Callable[[], Any]) -> Any:
    """``make()`` (nested dicts of tuples of ints, e.g. parameter shapes) for the architecture ``key``, kept on
    disk in ``shapes/`` beside :func:`cache_dir` so that a new process does not trace it again.

    The file's name digests ``kind``, ``repr(key)`` (frozen config dataclasses: their fields) and
    :func:`code_fingerprint`. With the compilation cache off, or a folder that cannot be written, ``make()``
    runs every time; an unreadable entry is rebuilt. Entries are written atomically (several processes may
    share the folder).
    """
    path = _per_architecture_path(kind, key)
    if path is None:
        return make()
    value = read_per_architecture(kind, key)
    if value is not None:
        return value
    value = make()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as fh:
            json.dump(value, fh)
        os.replace(fh.name, path)
    except OSError:  # a read-only cache: the value is still right, only not kept
        pass
    return value
