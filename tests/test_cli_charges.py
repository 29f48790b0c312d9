"""`tensorprop data esp -> fit charges -> evaluate -> predict` on a tiny PySCF set, both heads."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tensorprop.cli import main

pytest.importorskip("pyscf")

TINY = ["--model.hidden_irreps", "8x0e + 4x1o + 4x1e", "--model.head_irreps", "8x0e + 4x1o",
        "--model.num_layers", "1", "--model.radial_hidden", "[16]", "--batch.max_nodes", "12",
        "--batch.max_edges", "64", "--batch.max_graphs", "4", "--charges.features", "16", "--charges.layers", "1"]


@pytest.fixture(scope="module")
def esp_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("esp") / "water.npz"
    assert main(["data", "esp", "--molecule", "water", "--n-conformers", "10", "--basis", "sto-3g",
                 "--out", str(out), "--no-progress"]) == 0
    return out


@pytest.mark.slow
@pytest.mark.parametrize("head", ["equivariant", "cartesian"])
def test_fit_evaluate_predict_charges(esp_set, tmp_path, capsys, head):
    run = tmp_path / head
    assert main(["fit", "charges", "--head", head, "--n-dcm", "2", "--data", str(esp_set), "--out", str(run),
                 "--max-steps", "12", "--train.eval_every", "6", "--train.augment_rotations", "true",
                 "--no-progress", *TINY]) == 0
    assert {"config.yaml", "split.json", "metrics.jsonl", "model.npz", "summary.json"} <= {p.name for p in run.iterdir()}
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [6, 12]
    assert np.isfinite(records[-1]["valid_esp_rmse"]) and np.isfinite(records[-1]["valid_dipole_mae"])
    capsys.readouterr()
    assert main(["evaluate", str(run), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["n_molecules"] == 1 and metrics["esp_n_points"] > 50
    rot_err = metrics["dipole_rotation_error_debye_max"]
    assert rot_err < 1e-3 if head == "equivariant" else rot_err > 1e-4
    xyz = tmp_path / "w.xyz"
    xyz.write_text("3\nProperties=species:S:1:pos:R:3 pbc=\"F F F\"\nO 0 0 0.117\nH 0 0.757 -0.469\nH 0 -0.757 -0.469\n")
    assert main(["predict", str(run), str(xyz)]) == 0
    assert "dipole" in capsys.readouterr().out


def test_data_esp_out_without_suffix_reads_back(tmp_path, capsys):
    """issue 19.3: ``data esp --out water`` writes water.npz (and says so); an npz under a bare name reads too."""
    from tensorprop.data.molecules import load_molecules

    assert main(["data", "esp", "--molecule", "water", "--n-conformers", "2", "--basis", "sto-3g",
                 "--out", str(tmp_path / "water"), "--no-progress"]) == 0
    assert "added .npz" in capsys.readouterr().err
    assert len(load_molecules(tmp_path / "water.npz")) == 2
    (tmp_path / "bare").write_bytes((tmp_path / "water.npz").read_bytes())
    assert len(load_molecules(tmp_path / "bare")) == 2
