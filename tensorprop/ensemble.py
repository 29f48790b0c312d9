"""Ensembles: several trained tensor models that predict as one.

Each target is averaged over the members that have it: Z* arithmetically (a mean of charges that
obey the acoustic sum rule obeys it), eps_inf in the log domain, eps = I + expm(mean_k logm(eps_k - I))
(the log-Euclidean mean: symmetric, eigenvalues > 1, and not pulled up by one member's outlier on
eps_inf's long tail as an arithmetic mean would be). Averages of equivariant members are equivariant.
The members' disagreement comes with the mean: a rotation-invariant spread per atom (Z*) and per
structure (eps_inf), which flags predictions to distrust (BENCHMARKS.md measures how well it does).

Members may differ in architecture and in training data (e.g. a Z*-only run, an eps-only run and
runs with other seeds), and a member may serve some of its targets only (``member_targets``: e.g. one network
averaged into Z* but not into eps_inf, when the members were chosen per target). They may differ in backbone:
heads on frozen foundation features (``model.task: foundation``, frozen mode) join members of tensorprop's own
backbone; the batch then carries the foundation features beside the graph, computed once for all such members,
which must read the same features (checkpoint and layers); a foundation member with every Nequix layer fine-tuned
reads the graph alone. One graph feeds all members, at the largest of their cutoffs: a member of a smaller cutoff
gets the same outputs from it as from its own graph (its radial envelope is zero beyond its cutoff), at the cost of
the extra edges.
Prediction costs about the members' summed cost. Members of one architecture are stacked and vmapped by
one compiled function per architecture (a five-member ensemble of one architecture compiles once per padded
shape, shared with every ensemble with members of that architecture), a small compiled function averages
the groups' outputs, and the groups' compiles run side by side (XLA's compiler releases the GIL); batches with more than
:data:`SEQUENTIAL_EDGES` padded edges run the members one after another instead (each through its
architecture's shared compiled function), so that memory is one member's, not all of them at once.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from pathlib import Path
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .api import Model, Predictor, apply_network
from .compiled import run_overlapped, shared_jit
from .data.batching import graph_part
from .errors import CheckpointError, ConfigError
from .loading import MODEL_FILE_KINDS, load_model, register_kind
from .memory import SEQUENTIAL_EDGES
from .model_file import write_model_file
from .outputs import BORN_CHARGES, BORN_CHARGES_SPREAD, EPSILON, EPSILON_LOG, EPSILON_SPREAD
from .physics.tensors import epsilon_from_log
from .tasks import task_of

__all__ = ["EnsembleModel", "ensemble", "ensemble_mean", "member_spread", "member_groups", "group_apply",
           "mean_of_groups", "served_outputs", "stacked_apply", "SEQUENTIAL_EDGES"]

#: ``model_kind`` of an ensemble's model file
MODEL_KIND = "ensemble"
#: metadata that the ensemble carries over when every member has the same value (the training data)
SHARED_METADATA = ("dataset", "n_train")


def member_spread(tensors: Sequence, mean) -> jax.Array:
    """RMS deviation of the members' 3x3 tensors from ``mean``, over members and the 9 components.

    ``tensors``: K arrays (..., 3, 3); returns (...,). A Frobenius norm, hence rotation-invariant.
    """
    squared = sum(jnp.sum((t - mean) ** 2, axis=(-2, -1)) for t in tensors)
    return jnp.sqrt(squared / (9.0 * len(tensors)))


def ensemble_mean(outputs: Sequence[dict]) -> dict:
    """Average the members' output dicts (as :meth:`TensorModel.apply` returns them).

    ``born_charges`` (N, 3, 3): mean over the members that have it; ``epsilon_log`` (G, 3, 3): mean
    over the members that have it, and ``epsilon`` = I + expm of that mean. Where two or more members
    have a target, its spread too: ``born_charges_spread`` (N,) in e and ``epsilon_spread`` (G,), the
    members' RMS deviation from the mean (:func:`member_spread`), a committee uncertainty.
    """
    out = {}
    born = [o[BORN_CHARGES] for o in outputs if BORN_CHARGES in o]
    if born:
        out[BORN_CHARGES] = sum(born) / len(born)
        if len(born) > 1:
            out[BORN_CHARGES_SPREAD] = member_spread(born, out[BORN_CHARGES])
    with_eps = [o for o in outputs if EPSILON_LOG in o]
    if with_eps:
        out[EPSILON_LOG] = sum(o[EPSILON_LOG] for o in with_eps) / len(with_eps)
        out[EPSILON] = epsilon_from_log(out[EPSILON_LOG])
        if len(with_eps) > 1:
            out[EPSILON_SPREAD] = member_spread([o[EPSILON] for o in with_eps], out[EPSILON])
    return out


def member_groups(configs: Sequence, stats: Sequence) -> list[tuple]:
    """The members grouped by architecture: [(config, member indices)], in order of first appearance; one group
    holds the members of one config and the same statistics keys (what stacks into one vmapped network)."""
    groups: dict = {}
    for k, (config, s) in enumerate(zip(configs, stats)):
        groups.setdefault((config, tuple(sorted(s))), []).append(k)
    return [(config, tuple(ks)) for (config, _), ks in groups.items()]


def stack_members(trees: Sequence, np_module=jnp):
    """K pytrees of the same structure -> one pytree with a leading member axis of size K."""
    return jax.tree.map(lambda *xs: np_module.stack([np_module.asarray(x) for x in xs]), *trees)


def group_apply(config, params, stats, batch) -> dict:
    """The outputs of the members of one architecture on one padded batch: ``params`` and ``stats`` stacked
    along a leading member axis (K, ...) -> each output with that axis first, evaluated by one ``jax.vmap``."""
    inputs = task_of(config).network_input(batch)  # the graph, or graph + foundation features
    return jax.vmap(functools.partial(apply_network, config), in_axes=(0, 0, None))(params, stats, inputs)


#: the output keys that belong to each target (what a member serving only some targets contributes)
TARGET_OUTPUTS = {BORN_CHARGES: (BORN_CHARGES,), EPSILON: (EPSILON, EPSILON_LOG)}


def served_outputs(output: dict, targets: Sequence[str] | None) -> dict:
    """One member's output dict restricted to the targets it serves in the ensemble (None: all it has)."""
    if targets is None:
        return output
    keep = {key for t in targets for key in TARGET_OUTPUTS[t]}
    return {key: value for key, value in output.items() if key in keep}


def mean_of_groups(layout: tuple, group_outputs: Sequence[dict], member_targets: tuple | None = None) -> dict:
    """:func:`ensemble_mean` of the members, given each group's stacked outputs (:func:`group_apply`).
    ``layout``: each group's member indices (the members' order is the ensemble's, whatever the grouping);
    ``member_targets``: per member, the targets it serves (None: every member all of its targets)."""
    outputs = [None] * sum(len(ks) for ks in layout)
    for ks, out in zip(layout, group_outputs):
        for j, k in enumerate(ks):
            outputs[k] = served_outputs({key: value[j] for key, value in out.items()},
                                        member_targets[k] if member_targets is not None else None)
    return ensemble_mean(outputs)


def stacked_apply(configs: tuple, params: Sequence, stats: Sequence, batch,
                  member_targets: tuple | None = None) -> dict:
    """The members' :func:`ensemble_mean` on one padded batch, members grouped by architecture.

    ``configs``, ``params``, ``stats``: one entry per member; ``member_targets``: per member, the targets it
    serves (None: all). The members of each group (same config, same statistics keys) are stacked along a
    leading axis and evaluated by one ``jax.vmap``; under jit, an ensemble of K members of one architecture is
    one network compiled once, not K.
    """
    groups = member_groups(configs, stats)
    outputs = [group_apply(config, stack_members([params[k] for k in ks]), stack_members([stats[k] for k in ks]),
                           batch) for config, ks in groups]
    return mean_of_groups(tuple(ks for _, ks in groups), outputs, member_targets)


def module_digest(module: dict) -> str:
    """SHA256 over a parameter module's names, shapes, dtypes and bytes: equal digests, equal modules."""
    h = hashlib.sha256()
    for name in sorted(module):
        value = np.ascontiguousarray(np.asarray(module[name]))
        h.update(f"{name}:{value.dtype.str}:{value.shape};".encode())
        h.update(value.tobytes())
    return h.hexdigest()


class EnsembleModel(Predictor):
    """Trained tensor models averaged (see the module docstring); predicts, saves and loads like a
    :class:`~tensorprop.api.Model` and stands in wherever one is expected (``predict``, ``predict_many``,
    ``apply``, ``with_params``, ``save``, ``targets``, ``elements``, ``task``).

    ``members``: TensorModels with equivariant or Cartesian heads (not field models) and foundation-feature
    models, frozen (all of these reading the same features) or with every layer fine-tuned.
    ``member_targets``: per member, the targets it serves (a non-empty subset of its own; None: all of them), so
    that Z* and eps_inf may each be the mean of members chosen for that target.
    ``config`` is the first member's with the largest member cutoff (the graph's); ``targets`` is the union of the
    targets the members serve; ``elements`` the atomic numbers that every member saw in training; ``metadata``
    the training data set and size when all members share them (each member keeps its own metadata).
    """

    MODEL_KIND = MODEL_KIND

    def __init__(self, members: Sequence[Model], *, names: Sequence[str] | None = None,
                 metadata: dict | None = None, member_targets: Sequence[Sequence[str] | None] | None = None):
        members = list(members)
        names = list(names) if names is not None else [f"member {i}" for i in range(len(members))]
        if len(members) < 2:
            raise ConfigError(f"an ensemble needs at least two models, got {len(members)}")
        for name, m in zip(names, members):
            if not isinstance(m, Model) or not m.task.ensemble_member or not m.task.ensemble_member_ok(m.config):
                raise ConfigError(f"{name}: {m!r} is not a crystal-tensor model (Z*/eps_inf heads); "
                                  "ensembles are made of those")
        if member_targets is None:
            member_targets = [None] * len(members)
        if len(member_targets) != len(members):
            raise ConfigError(f"member_targets has {len(member_targets)} entries for {len(members)} members")
        served = []
        for name, m, uses in zip(names, members, member_targets):
            if uses is None:
                uses = m.targets
            elif isinstance(uses, str) or not uses or set(uses) - set(m.targets):
                raise ConfigError(f"{name}: serves targets {uses!r}, not a non-empty subset of its own "
                                  f"({', '.join(m.targets)})")
            served.append(tuple(t for t in (BORN_CHARGES, EPSILON) if t in set(uses)))
        #: per member, the targets it serves (a subset of its own)
        self.member_targets = tuple(served)
        readers = [(n, m) for n, m in zip(names, members) if m.task.features_read(m.config) is not None]
        for name, m in readers[1:]:
            mine, first = m.task.features_read(m.config), readers[0][1].task.features_read(readers[0][1].config)
            if mine != first:
                raise ConfigError(f"{name}: reads other foundation features ({mine[0]} {mine[1][:12]}, layers "
                                  f"{list(mine[2]) or 'all'}) than {readers[0][0]} ({first[0]} {first[1][:12]}, layers "
                                  f"{list(first[2]) or 'all'}); ensemble members share one batch of features")
        #: the member that supplies the foundation features of a batch (None: no member reads any)
        self._feature_reader = readers[0][1] if readers else None
        self.members = members
        self.member_names = names
        # one neighbour graph feeds every member: the largest cutoff's. A member of a smaller cutoff reads it as its
        # own graph, since its radial envelope is exactly zero beyond its cutoff (checked by tests/foundation/
        # test_foundation_ensemble.py)
        self.config = dataclasses.replace(members[0].config, cutoff=max(m.config.cutoff for m in members))
        self.task = members[0].task
        self.params = tuple(m.params for m in members)
        self.stats = tuple(m.stats for m in members)
        seen = [set(m.elements) for m in members if m.elements is not None]
        self.elements = sorted(set.intersection(*seen)) if seen else None
        shared = {k: members[0].metadata[k] for k in SHARED_METADATA
                  if all(k in m.metadata and m.metadata[k] == members[0].metadata[k] for m in members)}
        self.metadata = {**shared, **(metadata or {})}
        self._groups = None  # (shared group function, stacked params, stacked stats) per architecture, when first used
        unverified = [m._unverified for m in members if m._unverified]  # checked by the first prediction
        self._unverified = ", ".join(unverified) if unverified else None
        layout = tuple(ks for _, ks in member_groups([m.config for m in members], self.stats))
        self._mean = shared_jit(("ensemble mean", layout, self.member_targets),
                                lambda: functools.partial(mean_of_groups, layout, member_targets=self.member_targets))

    def _network_inputs(self, batch, idx, items):
        """The batch; when a member reads foundation features, a :class:`PendingFeatures` that computes them when
        the first member that reads them runs (:meth:`_evaluate` runs the others first)."""
        if self._feature_reader is None:
            return batch
        return PendingFeatures(batch, functools.partial(self._feature_reader._network_inputs, batch, idx, items))

    def apply(self, params, stats, batch) -> dict:
        """Padded batch -> the members' mean ``born_charges`` (N, 3, 3), ``epsilon``/``epsilon_log`` (G, 3, 3).
        ``params`` and ``stats`` are tuples with one entry per member."""
        return stacked_apply(tuple(m.config for m in self.members), params, stats, batch, self.member_targets)

    def compiled_groups(self) -> list[tuple]:
        """[(compiled function, stacked params, stacked stats, reads features)], one per architecture among the
        members (:func:`member_groups`). The function, ``("ensemble", config)`` in
        :data:`~tensorprop.compiled.TRACES`, is :func:`group_apply` of that config, shared by every ensemble with
        members of it; the stacks are made once, on the host (no compile), and put on the device. "reads
        features": the group's members read foundation features (their input is the graph and the features;
        the others' the graph alone)."""
        if self._groups is None:
            self._groups = [
                (shared_jit(("ensemble", config), lambda c=config: functools.partial(group_apply, c)),
                 jax.device_put(stack_members([self.params[k] for k in ks], np)),
                 jax.device_put(stack_members([self.stats[k] for k in ks], np)),
                 task_of(config).features_read(config) is not None)
                for config, ks in member_groups([m.config for m in self.members], self.stats)]
        return self._groups

    def _evaluate(self, batch, progress: bool = False) -> dict:
        """The compiled mean over members of one padded batch: each architecture's members vmapped (the groups'
        compiles overlapped, :func:`~tensorprop.compiled.run_overlapped`) and their mean, or (a batch of more
        than :data:`SEQUENTIAL_EDGES` edges) one member after another, at one member's peak memory."""
        graph = graph_part(batch)
        full = batch.resolve if isinstance(batch, PendingFeatures) else lambda: batch
        if graph.senders.shape[0] <= SEQUENTIAL_EDGES:
            # groups of own-backbone members first, on the graph alone: their compiles run while the foundation
            # features are computed (compiled) and the groups that read them are traced
            groups = self.compiled_groups()
            order = sorted(range(len(groups)), key=lambda g: groups[g][3])  # feature readers last
            outputs = [None] * len(groups)
            for g, out in zip(order, run_overlapped(
                    (lambda fn=fn, p=p, s=s, reads=reads: fn.prepare(p, s, full() if reads else graph))
                    for fn, p, s, reads in (groups[g] for g in order))):
                outputs[g] = out
            return self._mean(outputs)
        batch = full()
        members = self.members
        if progress:
            from tqdm.auto import tqdm

            members = tqdm(members, desc="ensemble members", unit="member")
        return ensemble_mean([served_outputs(jax.device_get(m._evaluate(m.task.network_input(batch))), uses)
                              for m, uses in zip(members, self.member_targets)])

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(t for t in (BORN_CHARGES, EPSILON) if any(t in uses for uses in self.member_targets))

    def with_params(self, params, metadata=None) -> "EnsembleModel":
        """The same ensemble with other weights: ``params`` has one entry per member (as :attr:`params`)."""
        if not isinstance(params, (tuple, list)) or len(params) != len(self.members):
            raise ConfigError(f"an ensemble's weights are its members': with_params takes {len(self.members)} "
                              f"parameter sets, one per member, got {type(params).__name__}")
        return EnsembleModel([m.with_params(p) for m, p in zip(self.members, params)], names=self.member_names,
                             metadata={**self.metadata, **(metadata or {})}, member_targets=self.member_targets)

    def save(self, path: str | Path) -> Path:
        """One model file: every member's parameters and statistics under ``member<i>:`` prefixes; a parameter
        module identical to an earlier member's (e.g. the same embedded foundation checkpoint) is stored once,
        the header's ``shared_modules`` naming where it is."""
        params, shared, seen = {}, {}, {}
        for i, m in enumerate(self.members):
            for module, d in m.file_params().items():
                key = f"member{i}:{module}"
                digest = module_digest(d)
                if digest in seen:
                    shared[key] = seen[digest]
                else:
                    seen[digest] = key
                    params[key] = d
        stats = {f"member{i}:{k}": v for i, m in enumerate(self.members) for k, v in m.stats.items()}
        meta = {"model_kind": MODEL_KIND, "elements": self.elements, "metadata": self.metadata,
                "members": [{"name": n, **m.file_header()} for n, m in zip(self.member_names, self.members)]}
        if shared:
            meta["shared_modules"] = shared
        if any(uses != tuple(m.targets) for uses, m in zip(self.member_targets, self.members)):
            meta["member_targets"] = [list(uses) for uses in self.member_targets]
        return write_model_file(path, params, stats, meta)

    @classmethod
    def from_file_contents(cls, path, params: dict, stats: dict, meta: dict) -> "EnsembleModel":
        if meta.get("model_kind") != MODEL_KIND or not isinstance(meta.get("members"), list):
            raise CheckpointError(f"{path}: not an ensemble model file")
        shared = meta.get("shared_modules") or {}
        missing = sorted(v for v in shared.values() if v not in params)
        if not isinstance(shared, dict) or missing:
            raise CheckpointError(f"{path}: shared parameter module(s) {', '.join(missing) or shared!r} not in the file")
        params = {**params, **{key: params[source] for key, source in shared.items()}}
        members = []
        for i, header in enumerate(meta["members"]):
            prefix = f"member{i}:"
            p = {k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)}
            s = {k[len(prefix):]: v for k, v in stats.items() if k.startswith(prefix)}
            if not p:
                raise CheckpointError(f"{path}: no parameters for ensemble member {i} ({header.get('name')})")
            kind = header.get("model_kind", "tensors")
            reader = MODEL_FILE_KINDS.get(kind) if kind != MODEL_KIND else None
            if reader is None:
                raise CheckpointError(f"{path}: ensemble member {i} ({header.get('name')}) is of kind {kind!r}, "
                                      "which an ensemble cannot hold")
            members.append(reader.from_file_contents(f"{path} (member {i})", p, s, header))
        member_targets = meta.get("member_targets")
        if member_targets is not None and (not isinstance(member_targets, list) or len(member_targets) != len(members)
                                           or not all(isinstance(u, list) for u in member_targets)):
            raise CheckpointError(f"{path}: member_targets is not a list of target lists, one per member")
        try:
            ens = cls(members, names=[h.get("name", f"member {i}") for i, h in enumerate(meta["members"])],
                      metadata=meta.get("metadata"), member_targets=member_targets)
        except ConfigError as e:
            raise CheckpointError(f"{path}: {e}") from None
        if ens._unverified:  # some member's shapes are checked by the first prediction: an error names the file
            ens._unverified = str(path)
        return ens

    def __repr__(self):
        return (f"EnsembleModel({'+'.join(self.targets)}, {len(self.members)} members, "
                f"{self.n_parameters} parameters, cutoff={self.config.cutoff} A)")


register_kind(MODEL_KIND, EnsembleModel)


class PendingFeatures:
    """A padded batch whose foundation features are computed on first use: ``graph`` (the GraphBatch, what
    :func:`~tensorprop.data.batching.graph_part` finds), ``resolve()`` -> the batch with its features (computed
    once by ``compute()``)."""

    def __init__(self, graph, compute):
        self.graph, self._compute, self._resolved = graph, compute, None

    def resolve(self):
        if self._resolved is None:
            self._resolved = self._compute()
        return self._resolved


def ensemble(models: Sequence[Predictor | str | Path], metadata: dict | None = None, *,
             embed_foundation: bool = False, targets: Sequence[Sequence[str] | None] | None = None) -> EnsembleModel:
    """An :class:`EnsembleModel` of ``models``: TensorModels or paths (run folders, model files).

    An ensemble among ``models`` contributes its members one by one (each counts as much as any
    other member, and serves the targets it served there), so ``ensemble(["default", "runs/new"])`` adds a
    member to the bundled model.
    ``targets``: one entry per model, the targets it serves (None: all it predicts), e.g.
    ``ensemble(["a", "b", "c"], targets=[None, ["born_charges"], ["epsilon"]])`` averages Z* over a and b and
    eps_inf over a and c; for an ensemble among ``models``, each of its members serves the targets it served
    there that the entry names.
    ``embed_foundation``: members on foundation features save the frozen checkpoint's weights in the
    ensemble's file (:meth:`~tensorprop.foundation_model.FoundationTensorModel.embedded`), which then
    predicts with no checkpoint on disk.
    """
    if targets is not None and len(targets) != len(models):
        raise ConfigError(f"targets has {len(targets)} entries for {len(models)} models")
    names, loaded, served = [], [], []
    for i, m in enumerate(models):
        name = str(m) if not isinstance(m, Predictor) else f"model {i}"
        model = m if isinstance(m, Predictor) else load_model(m)
        wanted = None if targets is None or targets[i] is None else set(targets[i])
        if isinstance(model, EnsembleModel):
            names += [f"{name} / {n}" for n in model.member_names]
            loaded += model.members
            served += [uses if wanted is None else [t for t in uses if t in wanted] for uses in model.member_targets]
        else:
            names.append(name)
            loaded.append(model)
            served.append(None if wanted is None else list(wanted))
    if embed_foundation:
        loaded = [m.embedded() for m in loaded]
    return EnsembleModel(loaded, names=names, metadata=metadata, member_targets=served)
