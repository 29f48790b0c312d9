"""Repository-wide pytest setup: notebooks run with small budgets under pytest (--nbmake)."""

import os

os.environ.setdefault("TENSORPROP_QUICK", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
