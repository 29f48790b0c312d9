"""The e3nn-jax port of Nequix against the nequix package's own numbers, and the checkpoint reader's
and model look-up's handling of bad input."""

from __future__ import annotations

import numpy as np
import pytest

from tensorprop.errors import CheckpointError, DataError
from tensorprop.foundation import PUBLISHED, load_foundation_model, read_checkpoint, resolve_foundation_model

VOIGT = ([0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1])  # ase order xx yy zz yz xz xy


@pytest.mark.parametrize("name", ["nequix-mp-1", "nequix-mp-1-pft", "nequix-oam-1-pft"])
def test_energy_forces_stress_match_nequix(name, models_dir, reference):
    model = load_foundation_model(models_dir / f"{name}.nqx")
    crystals = list(reference["structures"].values())
    energies, forces, stresses = model.energy_forces_stress(model.batch(crystals))
    start = 0
    for i, crystal in enumerate(crystals):
        ref = reference["results"][name][crystal.label]
        n = crystal.n_atoms
        assert energies[i] == pytest.approx(ref["energy"], abs=1e-3), crystal.label
        np.testing.assert_allclose(forces[start:start + n], ref["forces"], atol=1e-3, err_msg=crystal.label)
        np.testing.assert_allclose(stresses[i][VOIGT], ref["stress"], atol=1e-4, err_msg=crystal.label)
        start += n
    assert np.abs(forces[start:]).max() == 0.0  # padding rows
    if name == "nequix-mp-1":  # the two numbers quoted in issue 20
        assert energies[:2] == pytest.approx([-6.76592, -10.83405], abs=1e-4)


def test_reads_the_published_layout(models_dir):
    config, arch, params = read_checkpoint(models_dir / "nequix-mp-1.nqx")
    assert arch.cutoff == 6.0 and arch.n_layers == 4 and arch.n_species == 89
    assert params["layers"][1]["linear_2"]["w[1,1] 352x1o,64x1o"].shape == (352, 64)
    assert params["atom_energies"][0] == pytest.approx(config["atom_energies"]["1"])  # H, from the weights


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def test_bad_checkpoints_are_one_line_naming_the_file(models_dir, tmp_path):
    good = (models_dir / "nequix-mp-1.nqx").read_bytes()
    header = good.index(b"\n") + 1
    cases = {
        "missing.nqx": (None, "no such checkpoint file"),
        "truncated.nqx": (good[: len(good) // 2], "truncated checkpoint|corrupt checkpoint"),
        "header-only.nqx": (good[:header], "truncated checkpoint: the file ends before weight 1 of 63"),
        "not-json.nqx": (b"\x93NUMPY garbage\n" + good[header:], "the first line is not a JSON config"),
        "bad-record.nqx": (good[:header] + b"\x93NUMPY\x01\x00garbage" + good[header + 20:],
                           "corrupt checkpoint at weight 1"),
        "trailing.nqx": (good + b"extra", "unexpected bytes after the last weight"),
        "no-arch.nqx": (b'{"cutoff": 6.0}\n', "its config lacks atomic_numbers"),
    }
    for name, (data, match) in cases.items():
        path = tmp_path / name if data is None else _write(tmp_path / name, data)
        with pytest.raises(CheckpointError, match=match) as err:
            load_foundation_model(path)
        assert str(path) in str(err.value) and "\n" not in str(err.value), name


def test_lookup_data_dir_then_cache_then_download(models_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("TENSORPROP_DATA_DIR", str(models_dir.parent / "datasets"))
    monkeypatch.setenv("TENSORPROP_CACHE_DIR", str(tmp_path / "cache"))
    path, sha = resolve_foundation_model("nequix-mp-1")
    assert path == models_dir / "nequix-mp-1.nqx" and sha == PUBLISHED["nequix-mp-1"]

    # a damaged copy in the cache, found by name: sha256 mismatch naming the file
    monkeypatch.setenv("TENSORPROP_DATA_DIR", str(tmp_path / "nowhere" / "datasets"))
    cached = tmp_path / "cache" / "models" / "nequix-mp-1.nqx"
    cached.parent.mkdir(parents=True)
    cached.write_bytes((models_dir / "nequix-mp-1.nqx").read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="sha256 mismatch") as err:
        resolve_foundation_model("nequix-mp-1")
    assert str(cached) in str(err.value)
    cached.write_bytes((models_dir / "nequix-mp-1.nqx").read_bytes())
    assert resolve_foundation_model("nequix-mp-1")[0] == cached

    with pytest.raises(CheckpointError, match="downloads are disabled; put the file there"):
        resolve_foundation_model("nequix-mp-1-pft", download=False)
    with pytest.raises(CheckpointError, match="not a published foundation model"):
        resolve_foundation_model("nequix-unknown")
    # an explicit path with an expected sha256 that it does not have
    with pytest.raises(CheckpointError, match="sha256 mismatch"):
        resolve_foundation_model(cached, sha256=PUBLISHED["nequix-mp-1-pft"])


def test_unknown_elements_are_named(mp1, reference):
    crystal = reference["structures"]["NaCl"].replace(numbers=np.array([84, 17]), label="PoCl")
    with pytest.raises(DataError, match=r"PoCl: element\(s\) Po \(Z=84\) outside the foundation model"):
        mp1.batch([crystal])
