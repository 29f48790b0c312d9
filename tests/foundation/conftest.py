"""Fixtures of the foundation-potential tests: the shared Nequix checkpoints and the reference numbers
made with the nequix package (make_reference.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tensorprop.data.records import Crystal

SHARED = Path(os.environ.get("TENSORPROP_SHARED", Path(__file__).resolve().parents[2].parent / "shared"))
REFERENCE = Path(__file__).parent / "data" / "nequix_reference.json"


@pytest.fixture(scope="session")
def models_dir() -> Path:
    """The shared models/ folder with the published .nqx files; skips when absent."""
    data_dir = os.environ.get("TENSORPROP_DATA_DIR")
    path = Path(data_dir).resolve().parent / "models" if data_dir else SHARED / "models"
    if not (path / "nequix-mp-1.nqx").is_file():
        pytest.skip(f"shared Nequix checkpoints not found in {path} (set TENSORPROP_DATA_DIR to ../shared/datasets)")
    return path


@pytest.fixture(scope="session")
def reference() -> dict:
    """{"structures": {name: Crystal}, "results": {model: {name: {"energy", "forces", "stress"}}}}."""
    doc = json.loads(REFERENCE.read_text())
    doc["structures"] = {k: Crystal(numbers=s["numbers"], positions=s["positions"], cell=s["cell"], pbc=s["pbc"],
                                    label=k) for k, s in doc["structures"].items()}
    return doc


@pytest.fixture(scope="session")
def mp1(models_dir):
    from tensorprop.foundation import load_foundation_model

    return load_foundation_model(models_dir / "nequix-mp-1.nqx")
