"""Repository-wide pytest setup: notebooks run with small budgets under pytest (--nbmake), and XLA compiles fast.

Compiling dominates the suite's time (hundreds of small networks, each traced and compiled once), not running
the compiled code. So the tests (and the notebook kernels and subprocesses they start, which inherit the
environment) ask XLA's CPU backend for optimisation level 0: about 30 % less wall time for the suite's compile-heavy
parts, the same results to float32 round-off. ``TENSORPROP_TEST_XLA_OPTIMISE=1`` keeps XLA's default level (e.g. to
run the suite as users' predictions are compiled).
"""

import os

os.environ.setdefault("TENSORPROP_QUICK", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

#: the XLA flag the tests run with (see the module docstring); tests that give a subprocess its own XLA_FLAGS add
#: theirs to this process's (tests/train/test_parallel.py)
TEST_XLA_FLAGS = "--xla_backend_optimization_level=0"
if os.environ.get("TENSORPROP_TEST_XLA_OPTIMISE") != "1" and "xla_backend_optimization_level" not in \
        os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {TEST_XLA_FLAGS}".strip()


def pytest_collection_modifyitems(config, items):
    """Start the longest items (the notebooks) first: with several xdist workers the many short tests then fill
    the gaps, instead of one notebook running alone at the end."""
    items.sort(key=lambda item: item.path.suffix != ".ipynb")
