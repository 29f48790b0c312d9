"""Streaming screening (`predict --out FILE.jsonl --shard I/N --resume`): shards, resume, a lazy reader."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tensorprop.cli import main
from tensorprop.data.writers import write_extxyz
from tensorprop.errors import DataError
from tensorprop.data.readers import iter_structures
from tensorprop.screening import join_shards, read_done, screen, structure_hash
from tests.conftest import rocksalt_nacl, triclinic, wurtzite_zno

N_FRAMES = 7


@pytest.fixture(scope="module")
def frames_file(tmp_path_factory):
    """7 frames of three kinds, strained so that no two are alike."""
    crystals = []
    for k in range(N_FRAMES):
        c = (rocksalt_nacl, wurtzite_zno, triclinic)[k % 3]()
        s = 1 + 0.01 * k
        crystals.append(c.replace(cell=c.cell * s, positions=c.positions * s))
    return write_extxyz(tmp_path_factory.mktemp("frames") / "big.xyz", crystals)


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory):
    import tensorprop
    from tests.conftest import TINY

    return tensorprop.build_model(TINY, seed=1).save(tmp_path_factory.mktemp("model") / "tiny.npz")


def _lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_shards_cover_every_frame_once_and_join_to_the_unsharded_run(tiny_model, frames_file, tmp_path):
    whole = tmp_path / "all.jsonl"
    assert screen(tiny_model, [frames_file], whole)["written"] == N_FRAMES
    records = _lines(whole)
    assert [r["frame"] for r in records] == list(range(N_FRAMES))
    assert np.shape(records[1]["born_charges"]) == (4, 3, 3) and np.shape(records[0]["epsilon"]) == (3, 3)
    assert len({r["hash"] for r in records}) == N_FRAMES
    shards = [tmp_path / f"part{i}.jsonl" for i in range(3)]
    for i, path in enumerate(shards):
        screen(tiny_model, [frames_file], path, shard=(i, 3), chunk=2 if i == 0 else 64)
        assert all(r["frame"] % 3 == i for r in _lines(path))
    frames = sorted(r["frame"] for p in shards for r in _lines(p))
    assert frames == list(range(N_FRAMES))  # every frame exactly once
    joined = tmp_path / "joined.jsonl"
    assert join_shards(shards, joined) == N_FRAMES
    for a, b in zip(_lines(joined), records):
        assert a["hash"] == b["hash"] and a["label"] == b["label"]
        np.testing.assert_allclose(a["born_charges"], b["born_charges"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(a["epsilon"], b["epsilon"], rtol=1e-5, atol=1e-6)
    with pytest.raises(DataError, match="frame 0 appears more than once"):
        join_shards([shards[0], shards[0]], tmp_path / "bad.jsonl")
    with pytest.raises(DataError, match="frame 1 is missing"):
        join_shards([shards[0], shards[2]], tmp_path / "bad.jsonl")


def test_resume_after_a_cut_run_gives_the_same_file(tiny_file, frames_file, tmp_path, capsys):
    whole, cut = tmp_path / "whole.jsonl", tmp_path / "cut.jsonl"
    args = ["predict", str(tiny_file), str(frames_file), "--shard", "1/2"]
    assert main([*args, "--out", str(whole)]) == 0
    full = whole.read_bytes()
    assert len(full.splitlines()) == 3  # frames 1, 3, 5
    lines = full.splitlines(keepends=True)
    cut.write_bytes(lines[0] + lines[1][:25])  # killed while writing the second line
    assert read_done(tmp_path / "cut.jsonl", (1, 2)).keys() == {1}
    assert cut.read_bytes() == lines[0]  # the cut line is gone
    cut.write_bytes(lines[0] + lines[1][:25])
    capsys.readouterr()
    assert main([*args, "--out", str(cut), "--resume"]) == 0
    assert "wrote 2 predictions" in capsys.readouterr().out
    assert cut.read_bytes() == full
    assert main([*args, "--out", str(cut), "--resume"]) == 0  # nothing left: the file stays as it is
    assert cut.read_bytes() == full
    # the same output with another shard, or after the input changed: one line, exit 2
    assert main(["predict", str(tiny_file), str(frames_file), "--shard", "0/2", "--out", str(cut), "--resume"]) == 2
    assert "resume with the --shard it was written with" in capsys.readouterr().err
    other = tmp_path / "other.xyz"
    write_extxyz(other, [rocksalt_nacl(5.0 + 0.1 * k) for k in range(N_FRAMES)])
    assert main(["predict", str(tiny_file), str(other), "--shard", "1/2", "--out", str(cut), "--resume"]) == 2
    assert "the input changed" in capsys.readouterr().err
    assert main(["predict", str(tiny_file), str(frames_file), "--shard", "2/2", "--out", str(cut)]) == 2
    assert main(["predict", str(tiny_file), str(frames_file), "--shard", "0/2", "--out", str(tmp_path / "x.json")]) == 2


def test_frames_are_numbered_over_several_files_and_parsed_only_when_kept(frames_file, tmp_path):
    (tmp_path / "POSCAR").write_text("NaCl\n1.0\n0 2.82 2.82\n2.82 0 2.82\n2.82 2.82 0\nNa Cl\n1 1\n"
                                     "Cartesian\n0 0 0\n2.82 0 0\n")
    seen = [(k, i) for k, _, i, _ in iter_structures([frames_file, tmp_path / "POSCAR", frames_file])]
    assert seen == [(k, k) for k in range(N_FRAMES)] + [(N_FRAMES, 0)] + [(N_FRAMES + 1 + k, k)
                                                                           for k in range(N_FRAMES)]
    kept = [(k, structure_hash(c)) for k, _, _, c in iter_structures([frames_file], keep=lambda k: k % 3 == 2)]
    every = dict((k, structure_hash(c)) for k, _, _, c in iter_structures([frames_file]))
    assert kept == [(k, every[k]) for k in (2, 5)]


def test_the_ext_xyz_reader_is_lazy(frames_file):
    """iter_extxyz takes the file one line at a time: after the first frame only it (and one line) is read."""
    from tensorprop.data.readers import _split_frames

    read = []

    def lines():
        with open(frames_file, "rb") as fh:
            for line in fh:
                read.append(line)
                yield line

    frames = _split_frames(lines(), str(frames_file))
    index, text = next(frames)
    assert index == 0 and len(read) == 2 + 2 + 1  # count, comment, 2 atoms, one line read ahead
    total = sum(1 for line in open(frames_file, "rb"))
    assert len(read) < total / 5
    assert sum(1 for _ in frames) == N_FRAMES - 1 and len(read) == total
