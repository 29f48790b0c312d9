"""The ``born`` and ``nac`` subcommands (registered with add_subcommands; run here through their own main)."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from tensorprop.phonopy import cli
from tensorprop.phonopy import workflow


def test_add_subcommands_registers_both():
    parser = argparse.ArgumentParser(prog="tensorprop")
    sub = parser.add_subparsers(dest="command", required=True)
    cli.add_subcommands(sub)
    args = parser.parse_args(["born", "POSCAR"])
    assert args.func is cli.cmd_born and args.model == "default" and not args.all_atoms
    args = parser.parse_args(["nac", "phonopy_disp.yaml", "--force-sets", "FORCE_SETS", "--reference", "BORN"])
    assert args.func is cli.cmd_nac and args.out == "nac" and args.reference == "BORN"
    with pytest.raises(SystemExit):
        parser.parse_args(["nac", "phonopy_disp.yaml"])  # --force-sets is required


def test_born_command_with_saved_model(tiny_untrained, examples_dir, tmp_path, capsys):
    from phonopy.file_IO import parse_BORN_from_strings

    from tensorprop.phonopy import predict_nac

    model_file = tiny_untrained.save(tmp_path / "tiny.npz")
    yaml = examples_dir / "ZnO" / "phonopy_disp.yaml"
    assert cli.main(["born", str(yaml), "--model", str(model_file)]) == 0
    captured = capsys.readouterr()
    assert "phonon.primitive" in captured.err
    phonon = workflow.load_phonopy(yaml, produce_fc=False)
    parsed = parse_BORN_from_strings(captured.out, phonon.primitive)
    expected = predict_nac(tiny_untrained, phonon)
    np.testing.assert_allclose(parsed["born"], expected.born, atol=1e-5)
    assert len(captured.out.splitlines()) == 4  # factor, eps, Zn, O

    assert cli.main(["born", str(yaml), "--model", str(model_file), "--all-atoms"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("nac:") and out.count("  - # ") == 4 and "unit_conversion_factor" in out


def test_born_command_on_poscar(oracle_for, examples_dir, monkeypatch, capsys):
    phonon, oracle, ref = oracle_for("SnO2")
    monkeypatch.setattr(workflow, "resolve_model", lambda model: oracle)
    assert cli.main(["born", str(examples_dir / "SnO2" / "POSCAR-unitcell"), "--symprec", "1e-5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4  # rutile: Sn and O independent
    np.testing.assert_allclose(np.array(lines[2].split(), float).reshape(3, 3), ref["born"][0], atol=1e-7)


def test_nac_command(oracle_for, examples_dir, monkeypatch, tmp_path, capsys):
    phonon, oracle, _ = oracle_for("MgO")
    monkeypatch.setattr(workflow, "resolve_model", lambda model: oracle)
    d = examples_dir / "MgO"
    rc = cli.main(["nac", str(d / "phonopy_disp.yaml"), "--force-sets", str(d / "FORCE_SETS"), "--reference",
                   str(d / "BORN"), "--out", str(tmp_path), "--npoints", "21"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "666.3" in out and "373.5" in out and "bands.png" in out
    assert (tmp_path / "bands.png").is_file() and (tmp_path / "nac_summary.json").is_file()


def test_errors_give_exit_code_2(examples_dir, tmp_path, capsys):
    d = examples_dir / "MgO"
    assert cli.main(["nac", str(d / "phonopy_disp.yaml"), "--force-sets", str(tmp_path / "missing"),
                     "--model", str(tmp_path / "missing.npz"), "--out", str(tmp_path)]) == 2
    assert "no such file" in capsys.readouterr().err
    assert cli.main(["born", str(d / "POSCAR-unitcell"), "--model", str(tmp_path / "missing.npz")]) == 2
    assert "error" in capsys.readouterr().err


@pytest.mark.parametrize("crystal, reference", [("MgO", "ZnO"), ("NaCl", "ZnO"), ("SnO2", "MgO")])
def test_nac_refuses_a_reference_of_another_crystal(oracle_for, examples_dir, monkeypatch, tmp_path, capsys,
                                                   crystal, reference):
    """issue 19.15: a BORN file has no species; ZnO's (uniaxial eps_inf) on cubic MgO breaks the crystal's
    symmetry, MgO's on rutile SnO2 the acoustic sum rule: refused, one line, before any band structure."""
    phonon, oracle, _ = oracle_for(crystal)
    monkeypatch.setattr(workflow, "resolve_model", lambda model: oracle)
    d = examples_dir / crystal
    rc = cli.main(["nac", str(d / "phonopy_disp.yaml"), "--force-sets", str(d / "FORCE_SETS"), "--reference",
                   str(examples_dir / reference / "BORN"), "--out", str(tmp_path), "--no-plot"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert f"{reference}/BORN: does not fit the crystal" in err and "is it the BORN file of another crystal?" in err
    assert not (tmp_path / "nac_summary.json").exists()
