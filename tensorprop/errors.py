"""The project's own exception types.

Every error caused by a user's input names *where* the problem is (file, structure
index, atom, config key) and *what* it is, in one line, so that a failed run can be
fixed without a debugger.
"""

from __future__ import annotations

__all__ = ["TensorpropError", "DataError", "ConfigError", "CheckpointError", "BatchBudgetError", "LabelWarning"]


class TensorpropError(Exception):
    """Base class of every error tensorprop raises on purpose."""


class DataError(TensorpropError, ValueError):
    """A structure or label file that cannot be used as it is.

    Parameters
    ----------
    source : str
        The file (or other origin, e.g. ``"<ase.Atoms>"``) the data came from.
    problem : str
        What is wrong, in words.
    index : int, optional
        0-based index of the structure (frame) within ``source``.
    """

    def __init__(self, source: str, problem: str, index: int | None = None):
        self.source = str(source)
        self.index = index
        self.problem = problem
        where = self.source if index is None else f"{self.source}, structure {index}"
        super().__init__(f"{where}: {problem}")


class ConfigError(TensorpropError, ValueError):
    """A configuration (YAML file or dict) with an unknown key or a value of the wrong type."""


class CheckpointError(TensorpropError, ValueError):
    """A model or checkpoint file that cannot be loaded (missing, corrupt, or incompatible)."""


class BatchBudgetError(TensorpropError, ValueError):
    """A structure that does not fit into the static node/edge budget of a batch."""


class LabelWarning(UserWarning):
    """Labels that load but break a physical rule (acoustic sum rule, eps_inf symmetry)."""
