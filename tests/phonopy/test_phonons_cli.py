"""`tensorprop phonons` end to end with the real foundation potential (nequix-mp-1-pft) and the bundled model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase.build import bulk
from ase.io import write

from tensorprop.cli import main
from tensorprop.foundation.lookup import model_search_paths

POTENTIAL = "nequix-mp-1-pft"


@pytest.fixture(scope="module")
def potential_available():
    if not any(p.is_file() for p in model_search_paths(POTENTIAL)):
        pytest.skip(f"{POTENTIAL}.nqx not found in {[str(p) for p in model_search_paths(POTENTIAL)]}")


def test_phonons_command_on_rocksalt_writes_a_folder_phonopy_reloads(potential_available, tmp_path, capsys):
    import phonopy

    poscar = tmp_path / "NaCl.vasp"
    write(poscar, bulk("NaCl", "rocksalt", a=5.64), format="vasp")  # primitive cell, 2 atoms
    out = tmp_path / "out"
    rc = main(["phonons", str(poscar), "--supercell", "2", "2", "2", "--out", str(out), "--no-progress"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "eps_0" in printed and "T1u" in printed
    summary = json.loads((out / "phonons_summary.json").read_text())
    assert summary["potential"] == POTENTIAL and summary["n_supercell"] == 16
    g = summary["gamma"]
    # NaCl: DFT (phonopy's example) TO 154.0 cm^-1; a 16-atom supercell and the potential give the same ballpark
    assert 110.0 < g["highest_to_cm"] < 200.0
    assert all(g["highest_lo_cm"][q] > 1.3 * g["highest_to_cm"] for q in "xyz")  # LO-TO splitting
    assert g["eps_0_isotropic"] > np.trace(np.array(g["eps_inf"])) / 3 + 1.0
    modes = [m for m in g["modes"] if not m["acoustic"]]
    assert len(modes) == 3 and all(m["irrep"] == "T1u" and m["ir_active"] for m in modes)
    assert summary["imaginary_modes"] == []
    for name in ("bands.png", "dos.png", "ir_spectrum.png", "gamma_modes.csv", "BORN"):
        assert (out / name).stat().st_size > 0

    loaded = phonopy.load(out / "phonopy_params.yaml", log_level=0)
    assert loaded.nac_params is not None
    loaded.run_qpoints([[0.0, 0.0, 0.0]], nac_q_direction=[1, 0, 0])
    lo_cm = loaded.qpoints.frequencies[0].max() * 33.35641
    assert lo_cm == pytest.approx(g["highest_lo_cm"]["x"], abs=1e-3)  # identical after reload (cm^-1)


def test_phonons_command_bad_input(potential_available, tmp_path, capsys):
    po = tmp_path / "Po.vasp"
    write(po, bulk("Po", "sc", a=3.35), format="vasp")
    out = tmp_path / "out"
    assert main(["phonons", str(po), "--supercell", "2", "2", "2", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "Po" in err and "outside the foundation model" in err and "Traceback" not in err
    assert not out.exists()  # nothing written
    nacl = tmp_path / "NaCl.vasp"
    write(nacl, bulk("NaCl", "rocksalt", a=5.64), format="vasp")
    assert main(["phonons", str(nacl), "--supercell", "8", "8", "8", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "1024 atoms, above the budget of 400" in err and "--max-atoms" in err
    assert not out.exists()


def test_phonons_arguments():
    import argparse

    from tensorprop.phonopy import cli

    parser = argparse.ArgumentParser(prog="tensorprop")
    cli.add_subcommands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["phonons", "POSCAR"])
    assert args.func is cli.cmd_phonons and args.potential == POTENTIAL and args.model == "default"
    assert args.supercell is None and args.min_length is None and args.out == "phonons" and not args.relax
    args = parser.parse_args(["phonons", "POSCAR", "--supercell", "2", "2", "1", "--relax-cell", "--ir-width", "5"])
    assert args.supercell == [2, 2, 1] and args.relax_cell and args.ir_width == 5.0
    with pytest.raises(SystemExit):
        parser.parse_args(["phonons", "POSCAR", "--supercell", "2", "2", "2", "--min-length", "10"])
