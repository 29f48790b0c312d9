"""Streaming screening: predictions over large structure files, written as they come, resumable, sharded.

``tensorprop predict MODEL big.xyz --out preds.jsonl [--shard I/N] [--resume]`` runs :func:`screen`:

- frames are read lazily (``readers.iter_structures``: ext-xyz one frame at a time), predicted in chunks of ``chunk`` frames
  with ``model.predict_many`` and written as JSON lines, one per frame, flushed after each chunk;
  memory does not grow with the file's length;
- ``--shard I/N`` takes frames ``k`` with ``k % N == I`` (``k``: 0-based frame number over all
  input files in order). Round-robin rather than contiguous blocks: a shard needs no count of the
  frames first, and files sorted by size or composition still give every shard the same mix (even
  run times); each shard splits the whole file into frames but parses only its own;
- ``--resume`` keeps the frames already in the output (a cut last line is dropped), checks each
  against the input by its frame number and :func:`structure_hash`, and appends the rest. A chunk
  with a missing frame is predicted whole, so a resumed file is identical to an uninterrupted one;
- :func:`join_shards` (``python -m tensorprop.screening join OUT SHARD...``) merges shard files in
  frame order and checks every frame appears exactly once.

A line: ``{"frame", "source", "index" (frame within its file), "label", "formula", "hash",
"numbers", "born_charges" (n, 3, 3), "epsilon" (3, 3), ...spreads of an ensemble}``.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import os
import sys
from pathlib import Path
from typing import Iterable

import numpy as np

from .data.readers import iter_structures
from .errors import DataError, TensorpropError

__all__ = ["parse_shard", "structure_hash", "read_done", "screen", "join_shards"]


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` -> ``(I, N)`` with ``0 <= I < N``; TensorpropError otherwise."""
    try:
        i, n = (int(x) for x in str(text).split("/"))
    except ValueError:
        raise TensorpropError(f"--shard {text!r}: expected I/N with integers, e.g. 0/4") from None
    if n < 1 or not 0 <= i < n:
        raise TensorpropError(f"--shard {text!r}: need N >= 1 and 0 <= I < N")
    return i, n


def structure_hash(crystal) -> str:
    """16 hex digits of SHA-256 over atomic numbers (int64), cell and positions (float64, Angstrom)."""
    h = hashlib.sha256()
    for a, dtype in ((crystal.numbers, np.int64), (crystal.cell, np.float64), (crystal.positions, np.float64)):
        h.update(np.ascontiguousarray(np.asarray(a, dtype)).tobytes())
    return h.hexdigest()[:16]


def read_done(out: str | os.PathLike, shard: tuple[int, int] = (0, 1)) -> dict[int, str]:
    """``{frame: hash}`` of the complete lines of a JSON-lines output; a cut last line is removed from the file.

    Raises DataError for a bad line before the last, or a frame that belongs to another shard.
    """
    out = Path(out)
    done: dict[int, str] = {}
    if not out.exists():
        return done
    good = 0  # bytes of complete, valid lines
    with open(out, "rb") as fh:
        for n, line in enumerate(fh, 1):
            try:
                record = json.loads(line) if line.endswith(b"\n") else None
                k, h = int(record["frame"]), str(record["hash"])
            except (ValueError, KeyError, TypeError):
                if fh.read(1):
                    raise DataError(str(out), f"line {n}: not a prediction line of tensorprop predict; "
                                              "cannot resume this file") from None
                break  # the cut last line of an interrupted run
            if k % shard[1] != shard[0] or k in done:
                raise DataError(str(out), f"line {n}: frame {k} is not one of shard {shard[0]}/{shard[1]} or "
                                          "appears twice; resume with the --shard it was written with")
            done[k] = h
            good += len(line)
    if good < out.stat().st_size:
        with open(out, "r+b") as fh:
            fh.truncate(good)
    return done


def _record(k: int, source: str, index: int, crystal, prediction: dict, digest: str) -> str:
    record = {"frame": k, "source": source, "index": index, "label": crystal.label,
              "formula": crystal.formula, "hash": digest, "numbers": crystal.numbers.tolist(),
              **{key: np.asarray(v).tolist() for key, v in prediction.items()}}
    return json.dumps(record) + "\n"


def screen(model, paths: Iterable[str | os.PathLike], out: str | os.PathLike, *, shard: tuple[int, int] = (0, 1),
           resume: bool = False, chunk: int = 64, format: str | None = None, log=print,
           **predict_kwargs) -> dict:
    """Predict every frame of ``paths`` in shard ``shard = (I, N)`` and write JSON lines to ``out``.

    Returns ``{"written", "kept" (already in ``out`` on resume), "frames" (of this shard)}``.
    ``predict_kwargs`` go to ``model.predict_many`` (e.g. ``unseen_elements``, ``max_edges``).
    """
    i, n = shard
    out = Path(out)
    done = read_done(out, shard) if resume else {}
    if resume and done:
        log(f"{out}: resuming after {len(done)} frame(s) already written")
    counts = {"written": 0, "kept": 0, "frames": 0}
    with open(out, "a" if resume else "w") as fh:
        def flush(block):
            digests = [structure_hash(c) for *_, c in block]
            for (k, source, index, _), d in zip(block, digests):
                if k in done and done[k] != d:
                    raise DataError(source, f"frame {k} differs from the one in {out} (hash {d} vs {done[k]}): "
                                            f"the input changed since {out} was written", index)
            todo = [k not in done for k, *_ in block]
            if any(todo):  # the whole chunk, so that padding and results equal an uninterrupted run's
                predictions = model.predict_many([c for *_, c in block], **predict_kwargs)
                fh.writelines(_record(*frame, p, d) for frame, p, d, t in zip(block, predictions, digests, todo) if t)
                fh.flush()
            counts["written"] += sum(todo)
            counts["kept"] += len(block) - sum(todo)
            counts["frames"] += len(block)

        block = []
        for frame in iter_structures(paths, format=format, allow_left_handed=True, keep=lambda k: k % n == i):
            block.append(frame)
            if len(block) == chunk:
                flush(block)
                block = []
        if block:
            flush(block)
    return counts


def join_shards(shards: Iterable[str | os.PathLike], out: str | os.PathLike) -> int:
    """Merge JSON-lines shard files into ``out`` in frame order, streaming; returns the number of frames.

    Raises DataError when a frame appears twice or one is missing (frames must be 0 .. M-1).
    """
    def lines(path):
        with open(path) as fh:
            for n, line in enumerate(fh, 1):
                try:
                    yield int(json.loads(line)["frame"]), line
                except (ValueError, KeyError, TypeError):
                    raise DataError(str(path), f"line {n}: not a complete prediction line (an unfinished "
                                               "shard? run it again with --resume)") from None

    expected = 0
    with open(out, "w") as fh:
        for k, line in heapq.merge(*(lines(p) for p in shards), key=lambda x: x[0]):
            if k != expected:
                raise DataError(str(out), f"frame {expected} is missing" if k > expected
                                else f"frame {k} appears more than once")
            fh.write(line)
            expected += 1
    return expected


def main(argv: list[str] | None = None) -> int:
    """``python -m tensorprop.screening join OUT SHARD...``"""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 3 or argv[0] != "join":
        print("usage: python -m tensorprop.screening join OUT.jsonl SHARD.jsonl...", file=sys.stderr)
        return 2
    try:
        n = join_shards(argv[2:], argv[1])
    except TensorpropError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {n} frames to {argv[1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
