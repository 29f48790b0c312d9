"""A loaded foundation potential: :class:`FoundationModel` and :func:`load_foundation_model`.

Structures become the project's padded :class:`~tensorprop.data.batching.GraphBatch` (neighbour graphs
at the model's cutoff, :mod:`tensorprop.data.graph`), padded to buckets so that a few shapes compile.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Sequence

import jax
import numpy as np

from .._lazy import e3nn
from ..compiled import shared_jit
from ..data.batching import GraphBatch, collate
from ..data.convert import as_crystal
from ..data.graph import Graph, build_graph
from ..data.records import Crystal
from ..errors import DataError
from .architecture import NequixArchitecture
from .checkpoint import params_from_records, read_checkpoint, records_of
from .lookup import resolve_foundation_model
from .potential import batch_features, energy_forces_stress

__all__ = ["FoundationModel", "load_foundation_model", "foundation_model_from_records", "padded_size"]


def padded_size(n: int, *, steps_per_octave: int = 8, minimum: int = 8) -> int:
    """Bucketed size >= n + 1 (one padding slot): a multiple of 2^(floor(log2 n) - 3), so at most
    8 buckets per factor of two and under 12.5 % padding."""
    n = max(int(n) + 1, minimum)
    step = max(1 << max(n.bit_length() - 1 - int(np.log2(steps_per_octave)), 0), 1)
    return -(-n // step) * step


@dataclasses.dataclass(frozen=True, eq=False)
class FoundationModel:
    """A Nequix potential read from a checkpoint.

    Attributes
    ----------
    name : str  published name or file stem; path : Path; sha256 : str of the file;
    config : dict  the checkpoint's JSON line; arch : NequixArchitecture (static);
    params : dict  the weights (see :func:`~tensorprop.foundation.architecture.weight_layout`).
    """

    name: str
    path: Path
    sha256: str
    config: dict
    arch: NequixArchitecture
    params: dict

    @property
    def cutoff(self) -> float:
        """Neighbour cutoff in Angstrom."""
        return self.arch.cutoff

    def check_elements(self, crystal: Crystal, index: int | None = None) -> None:
        """DataError naming the structure and the elements the model was not trained on."""
        unknown = sorted(set(int(z) for z in crystal.numbers) - set(self.arch.atomic_numbers))
        if unknown:
            from ase.data import chemical_symbols

            names = ", ".join(f"{chemical_symbols[z]} (Z={z})" for z in unknown)
            raise DataError(crystal.label or "<structure>",
                            f"element(s) {names} outside the foundation model {self.name}'s set "
                            f"({len(self.arch.atomic_numbers)} elements)", index)

    def graphs(self, structures: Sequence) -> list[Graph]:
        """Neighbour graphs at the model's cutoff of structures (Crystal, ase.Atoms, pymatgen, phonopy);
        DataError naming the structure and element when an element is outside the model's set."""
        out = []
        for i, s in enumerate(structures):
            crystal = as_crystal(s)
            self.check_elements(crystal, i if len(structures) > 1 else None)
            out.append(build_graph(crystal, self.cutoff, index=i if len(structures) > 1 else None,
                                   allow_isolated=True))  # a lone atom has an energy: its isolated-atom term
        return out

    def batch(self, structures: Sequence, sizes: tuple[int, int, int] | None = None) -> GraphBatch:
        """One padded batch of all ``structures`` (float32), padded to :func:`padded_size` buckets or
        to ``sizes`` = (nodes, edges, graphs)."""
        return self.collate(self.graphs(structures), sizes)

    @staticmethod
    def collate(graphs: Sequence[Graph], sizes: tuple[int, int, int] | None = None) -> GraphBatch:
        """One padded batch of ``graphs`` (from :meth:`graphs`), padded to :func:`padded_size` buckets or
        to ``sizes`` = (nodes, edges, graphs)."""
        if sizes is None:
            sizes = (padded_size(sum(g.n_nodes for g in graphs)), padded_size(sum(g.n_edges for g in graphs)),
                     len(graphs) + 1)
        return collate(graphs, *sizes)

    def energy_forces_stress(self, batch: GraphBatch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Energies [G] eV, forces [N, 3] eV/A, stresses [G, 3, 3] eV/A^3 (ase sign) of a padded batch."""
        return tuple(np.asarray(x) for x in energy_forces_stress(self.params, self.arch, batch))

    def features(self, batch: GraphBatch) -> list[e3nn.IrrepsArray]:
        """Per-layer hidden node features [N, irreps] of a padded batch (see :func:`features`)."""
        arrays = self.feature_arrays(batch)
        return [e3nn.IrrepsArray(irreps, x) for irreps, x in zip(self.arch.feature_irreps(), arrays)]

    def feature_arrays(self, batch: GraphBatch) -> list[jax.Array]:
        """:meth:`features` as plain arrays [N, dim of layer i's irreps] (no e3nn-jax needed when the computation
        is on disk: :func:`tensorprop.compiled.shared_jit`)."""
        arch = self.arch
        unrolled = batch.senders.shape[0] >= UNROLLED_MIN_EDGES
        return shared_jit(("nequix features", arch, unrolled),
                          lambda: functools.partial(_feature_arrays, arch, unrolled=unrolled))(self.params, batch)

    def records(self) -> list[np.ndarray]:
        """The weights in the checkpoint's leaf order (what a model file embeds, see
        :func:`foundation_model_from_records`)."""
        return records_of(self.arch, jax.device_get(self.params))


#: padded edges from which :meth:`FoundationModel.features` computes the message sums written out per component
#: (``unrolled``, :func:`~tensorprop.foundation.network.interaction`): about 2x faster per run on CPU but 2x the
#: compile (3.1 s against 1.6 s at the one-structure bucket of 2048 edges). Below it (one or two structures, run
#: once or a few times) the einsum form; a data set's batches (up to 16384 edges) share one compile over many runs.
UNROLLED_MIN_EDGES = 8192


def _feature_arrays(arch: NequixArchitecture, params: dict, batch: GraphBatch, *, unrolled: bool) -> list[jax.Array]:
    """:func:`batch_features` as plain arrays [N, dim of layer i's irreps] (what a compiled function kept on disk
    returns: :func:`tensorprop.compiled.shared_jit`, one per architecture, form and padded shape)."""
    return [x.array for x in batch_features(params, arch, batch, unrolled=unrolled)]


@functools.lru_cache(maxsize=8)
def _load(path: str, sha256: str, name: str) -> FoundationModel:
    config, arch, params = read_checkpoint(path)
    params = jax.tree_util.tree_map(jax.device_put, params)  # on the device once, not at every call (device_put:
    # no compile; jnp.asarray compiles a `stage` per leaf shape in jax >= 0.10)
    return FoundationModel(name=name, path=Path(path), sha256=sha256, config=config, arch=arch, params=params)


def foundation_model_from_records(name: str, sha256: str, config: dict, records, source: str) -> FoundationModel:
    """The foundation model of checkpoint ``name`` (file digest ``sha256``) from its JSON config and its weights in
    leaf order (:meth:`FoundationModel.records`), e.g. as embedded in a model file; ``source`` names them in errors
    (CheckpointError for a weight of the wrong shape or count)."""
    records = [np.asarray(r) for r in records]
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    for r in records:
        digest.update(f"{r.dtype.str}{r.shape}".encode())
        digest.update(np.ascontiguousarray(r).data)
    key = (name, sha256, digest.hexdigest())
    if key not in _FROM_RECORDS:  # the members of an ensemble that embed one checkpoint share it: read once
        arch = NequixArchitecture.from_config(config, source)
        params = jax.tree_util.tree_map(jax.device_put, params_from_records(arch, records, source))
        if len(_FROM_RECORDS) >= 4:
            _FROM_RECORDS.pop(next(iter(_FROM_RECORDS)))
        _FROM_RECORDS[key] = FoundationModel(name=name, path=Path(source), sha256=sha256, config=config, arch=arch,
                                             params=params)
    return _FROM_RECORDS[key]


#: foundation models read from embedded weights, by (name, sha256, digest of config and weights); at most 4
_FROM_RECORDS: dict = {}


def load_foundation_model(name_or_path: str | os.PathLike = "nequix-mp-1-pft", *, sha256: str | None = None,
                          download: bool = True) -> FoundationModel:
    """Find (:func:`~tensorprop.foundation.lookup.resolve_foundation_model`) and read a Nequix checkpoint.

    Loaded models are cached by file and sha256, so repeated calls are cheap. Given ``sha256``, a checkpoint of
    that name and digest read from a model file's embedded weights (:func:`foundation_model_from_records`) is
    used without a lookup (a fine-tuned member of the bundled model finds its architecture so, offline).

    Raises
    ------
    CheckpointError
        Unknown name, missing/truncated/corrupt file, sha256 mismatch (one line naming the file).
    """
    if sha256:  # read from a model file's embedded weights already (the same checkpoint: its name and SHA256)
        for (name, digest, _), model in reversed(_FROM_RECORDS.items()):
            if name == os.fspath(name_or_path) and digest == sha256:
                return model
    path, digest = resolve_foundation_model(name_or_path, sha256=sha256, download=download)
    key = os.fspath(name_or_path)
    name = key if not Path(key).expanduser().is_file() else Path(key).stem
    return _load(str(path.resolve()), digest, name)
