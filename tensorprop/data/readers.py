"""Readers of structure and label files; each converts at once into :class:`Crystal`.

Formats: ext-xyz (multi-frame, per-atom Born charges ``becs`` as 9 numbers per atom,
row-major Z[i, a, b] = dP_a/du_(i,b) in e; per-frame ``eps`` as 9 numbers), VASP
POSCAR/CONTCAR, CIF, and phonopy BORN files. Lengths in Angstrom. Every failure is a
:class:`~tensorprop.errors.DataError` naming the file, the structure index and the problem.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from tensorprop.data.convert import (BORN_KEYS, EPSILON_KEYS, as_crystal, atoms_to_crystal, from_ase,
                                     from_phonopy_atoms, from_pymatgen, to_phonopy_atoms)
from tensorprop.data.records import Crystal
from tensorprop.data.validate import MIN_DISTANCE
from tensorprop.data.writers import write_extxyz
from tensorprop.errors import DataError

__all__ = [
    "FORMATS",
    "detect_format",
    "read_extxyz",
    "iter_extxyz",
    "read_structure",
    "read_structures",
    "read_born",
    "write_extxyz",
    "from_ase",
    "from_pymatgen",
    "from_phonopy_atoms",
    "to_phonopy_atoms",
    "as_crystal",
]

_EXTXYZ_SUFFIXES = (".xyz", ".extxyz")
_FORMAT_ALIASES = {"vasp": "vasp", "poscar": "vasp", "contcar": "vasp", "cif": "cif",
                   "xyz": "extxyz", "extxyz": "extxyz"}
#: the structure formats the readers know, as ``format=`` (and the CLI's ``--format``) accept them
FORMATS = tuple(sorted(_FORMAT_ALIASES))
#: bytes read from the start of a file to sniff its format
_SNIFF_BYTES = 65536


def _open_binary(path: str | os.PathLike):
    """The file opened for reading bytes; DataError naming the file when it cannot be opened."""
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise DataError(str(path), "no such file") from None
    except IsADirectoryError:
        raise DataError(str(path), "is a directory, not a file") from None
    except OSError as exc:
        raise DataError(str(path), f"cannot read file: {exc}") from None


def _read_bytes(path: str | os.PathLike, limit: int = -1) -> bytes:
    """The file's bytes (the first ``limit`` of them, when given); DataError naming the file when unreadable."""
    with _open_binary(path) as fh:
        try:
            return fh.read(limit)
        except OSError as exc:
            raise DataError(str(path), f"cannot read file: {exc}") from None


def _split_frames(lines: Iterable[bytes], source: str) -> Iterator[tuple[int, str]]:
    """Yield ``(index, text)`` of each ext-xyz frame, checking headers and line counts.

    ``lines``: the file's lines (an open binary file), consumed lazily: one frame in memory at a time.
    """
    it = iter(lines)
    pending: list[bytes] = []  # a line read ahead (after a frame, to look for VEC lines)

    def next_line():
        if pending:
            return pending.pop()
        line = next(it, None)
        return None if line is None else line.rstrip(b"\r\n") if line.endswith(b"\r\n") else line.rstrip(b"\n")

    k, index = 0, 0  # k: 0-based number of the next line
    while (head := next_line()) is not None:
        if not head.strip():  # blank separator lines
            k += 1
            continue
        try:
            natoms = int(head)
        except ValueError:
            raise DataError(source, f"line {k + 1}: expected the atom count of an ext-xyz frame, got "
                                    f"{head[:40]!r}", index) from None
        if natoms < 0:
            raise DataError(source, f"line {k + 1}: negative atom count {natoms}", index)
        frame = [head]
        for _ in range(natoms + 1):
            line = next_line()
            if line is None:
                have = max(len(frame) - 2, 0)
                raise DataError(source, f"truncated file: frame declares {natoms} atoms but only {have} atom "
                                        f"lines follow (line {k + 1})", index)
            frame.append(line)
        while (line := next_line()) is not None:
            if not line.lstrip().startswith(b"VEC"):
                pending.append(line)
                break
            frame.append(line)
        try:
            text = b"\n".join(frame).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(source, f"frame starting at line {k + 1} is not UTF-8 text: {exc}", index) from None
        yield index, text + "\n"
        k, index = k + len(frame), index + 1


def iter_extxyz(path: str | os.PathLike, *, born_key: str | None = None, epsilon_key: str | None = None,
                require_labels: bool = True, min_distance: float = MIN_DISTANCE,
                allow_left_handed: bool = False, keep=None) -> Iterator[Crystal]:
    """Iterate over the frames of an ext-xyz file as checked :class:`Crystal` records.

    See :func:`read_extxyz` for the parameters; the file is read lazily, one frame in memory at a
    time. ``allow_left_handed`` accepts cells of negative determinant (mirror images; ``predict``
    reads with it). ``keep``: a function of the frame index; frames for which it is False are
    split off but neither parsed nor yielded (``predict --shard``).
    """
    from ase.io.extxyz import read_xyz

    source = str(path)
    basename = os.path.basename(source)
    born_keys = (born_key,) if born_key else BORN_KEYS
    eps_keys = (epsilon_key,) if epsilon_key else EPSILON_KEYS
    count = 0
    with _open_binary(path) as fh:
        for index, text in _split_frames(fh, source):
            count += 1
            if keep is not None and not keep(index):
                continue
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    atoms = next(read_xyz(io.StringIO(text), 0))
            except Exception as exc:
                raise DataError(source, f"cannot parse ext-xyz frame: {type(exc).__name__}: {exc}", index) from None
            yield atoms_to_crystal(atoms, source=source, index=index, label=f"{basename}#{index}",
                                   born_keys=born_keys, epsilon_keys=eps_keys, require_labels=require_labels,
                                   min_distance=min_distance, allow_left_handed=allow_left_handed)
    if count == 0:
        raise DataError(source, "no structures in file (empty ext-xyz file)")


def read_extxyz(path: str | os.PathLike, *, born_key: str | None = None, epsilon_key: str | None = None,
                require_labels: bool = True, min_distance: float = MIN_DISTANCE) -> list[Crystal]:
    """Read every frame of an ext-xyz file.

    Parameters
    ----------
    path : str or PathLike
        The ext-xyz file.
    born_key : str, optional
        Per-atom property with the Born charges (9 numbers per atom, row-major
        Z[a, b] = dP_a/du_b, e); default the first present of ``"becs"``,
        ``"born_charges"``, ``"born"``.
    epsilon_key : str, optional
        Per-frame key with the electronic dielectric tensor (9 numbers, row-major);
        default the first present of ``"eps"``, ``"epsilon"``, ``"dielectric"``.
    require_labels : bool
        When True (default) a frame without both labels raises :class:`DataError`;
        otherwise missing labels are ``None``.
    min_distance : float
        Smallest accepted interatomic distance, Angstrom.

    Returns
    -------
    list of Crystal
        One per frame, labelled ``"{basename}#{index}"``; other per-frame keys,
        calculator results and extra per-atom arrays are kept in ``info``.

    Raises
    ------
    DataError
        Missing file, unparsable or truncated frame, missing or misshaped labels,
        or a structure failing :func:`~tensorprop.data.validate.check_crystal`.
    """
    return list(iter_extxyz(path, born_key=born_key, epsilon_key=epsilon_key, require_labels=require_labels,
                            min_distance=min_distance))


def _floats(line: str) -> list[float] | None:
    try:
        return [float(x) for x in line.split()]
    except ValueError:
        return None


def _sniff_format(head: bytes) -> str | None:
    """'vasp', 'cif' or 'extxyz' from the first bytes of a file, or None when they look like none of them."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return None
    lines = [line.strip() for line in text.splitlines()]
    content = [line for line in lines if line and not line.startswith("#")]
    if any(line.lower().startswith("data_") for line in content[:50]) and (
            "_cell_length_a" in text or "_atom_site_" in text):
        return "cif"
    if content and content[0].isdigit():  # ext-xyz: atom count, comment line, one line per atom
        n = int(content[0])
        first = lines.index(content[0])
        atoms = lines[first + 2:first + 2 + n]
        if n > 0 and len(atoms) == min(n, len(lines) - first - 2) and all(
                len(a.split()) >= 4 and _floats(" ".join(a.split()[1:4])) for a in atoms[:50]):
            return "extxyz"
    if len(lines) >= 7:  # POSCAR: comment, scale (1 or 3 numbers), three lattice vectors
        scale, vectors = _floats(lines[1]), [_floats(x) for x in lines[2:5]]
        if scale and len(scale) in (1, 3) and all(v is not None and len(v) == 3 for v in vectors):
            return "vasp"
    return None


def detect_format(path: str | os.PathLike, head: bytes | None = None) -> str:
    """The format of a structure file: ``"vasp"``, ``"cif"`` or ``"extxyz"``.

    From the name first, as ase does: ``*.cif``; ``*.xyz``/``*.extxyz``; ``*.vasp``, ``*.poscar`` or
    ``POSCAR``/``CONTCAR`` anywhere in the name (``NaCl_POSCAR``, ``CONTCAR-relaxed``). Otherwise from the
    content (``head``: the file's first bytes, read when not given): a CIF ``data_`` block with cell or
    atom-site tags, an ext-xyz atom-count line followed by atom lines, a POSCAR's scale and three lattice
    vectors. Every reader of structure files uses this one rule.

    Raises
    ------
    DataError
        No such file, or a name and content that fit none of the formats.
    """
    p = Path(path)
    name = p.name.lower()
    if name.endswith(".cif"):
        return "cif"
    if name.endswith(_EXTXYZ_SUFFIXES):
        return "extxyz"
    if "poscar" in name or "contcar" in name or name.endswith(".vasp"):
        return "vasp"
    if head is None:
        head = _read_bytes(p, _SNIFF_BYTES)
    fmt = _sniff_format(head)
    if fmt is None:
        raise DataError(str(path), "cannot tell the structure format from the file's name or contents; pass "
                                   "--format (Python: format=) one of 'vasp' (POSCAR/CONTCAR), 'cif', 'extxyz'")
    return fmt


def _format_of(path: Path, format: str | None) -> str:
    """``format`` normalised (``"poscar"`` -> ``"vasp"``), or the detected format when None."""
    if format is None:
        return detect_format(path)
    fmt = _FORMAT_ALIASES.get(str(format).lower())
    if fmt is None:
        raise DataError(str(path), f"unknown format {format!r}; use one of {', '.join(FORMATS)}")
    return fmt


def _read_vasp(path: Path, allow_left_handed: bool = False) -> Crystal:
    import ase.io

    data = _read_bytes(path)  # gives the 'no such file' error
    try:
        text = data.decode("utf-8")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            atoms = ase.io.read(io.StringIO(text), format="vasp")
    except Exception as exc:
        raise DataError(str(path), f"cannot parse POSCAR: {type(exc).__name__}: {exc}", 0) from None
    return atoms_to_crystal(atoms, source=str(path), index=0, label=path.name, allow_left_handed=allow_left_handed)


def _read_cif(path: Path, allow_left_handed: bool = False) -> list[Crystal]:
    """Every data block of a CIF file, in order (structure index = block index); a block that
    pymatgen cannot turn into a structure is an error naming it, never silently dropped."""
    from pymatgen.io.cif import CifFile, CifParser

    data = _read_bytes(path)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            blocks = list(CifFile.from_str(data.decode("utf-8")).data.values())  # data_ blocks in file order
    except Exception as exc:
        raise DataError(str(path), f"cannot parse CIF: {type(exc).__name__}: {exc}", 0) from None
    if not blocks:
        why = "; ".join(str(w.message) for w in caught)[:300] or "no data block found"
        raise DataError(str(path), f"cannot parse CIF: {why}", 0)
    crystals = []
    for index, block in enumerate(blocks):
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                one = CifParser.from_str(str(block))
                structures = one.parse_structures(primitive=False, on_error="ignore")
        except Exception as exc:
            raise DataError(str(path), f"cannot parse CIF block data_{block.header}: {type(exc).__name__}: {exc}",
                            index) from None
        if not structures:
            why = "; ".join(str(w.message) for w in caught)[:300] or "no structure in this block"
            raise DataError(str(path), f"cannot parse CIF block data_{block.header}: {why}", index)
        label = path.name if len(blocks) == 1 else f"{path.name}#{block.header}"
        crystals.append(from_pymatgen(structures[0], source=str(path), index=index, label=label,
                                      allow_left_handed=allow_left_handed))
    return crystals


def read_structure(path: str | os.PathLike, *, format: str | None = None,
                   allow_left_handed: bool = False) -> Crystal:
    """Read one structure from a POSCAR/CONTCAR, CIF or (ext-)xyz file.

    Parameters
    ----------
    path : str or PathLike
    format : {"vasp", "poscar", "contcar", "cif", "xyz", "extxyz"}, optional
        Default: :func:`detect_format` (the file name, else its content).
    allow_left_handed : bool
        Accept a cell of negative determinant (a mirror image); files are otherwise held to VASP's rule.

    Returns
    -------
    Crystal
        Cell as written in the file (a CIF's conventional cell is kept, not reduced);
        for ext-xyz the first frame, with labels when present.
    """
    p = Path(path)
    if not p.exists():
        raise DataError(str(path), "no such file")
    fmt = _format_of(p, format)
    if fmt == "vasp":
        return _read_vasp(p, allow_left_handed)
    if fmt == "cif":
        crystals = _read_cif(p, allow_left_handed)
        if len(crystals) > 1:
            raise DataError(str(path), f"the CIF file holds {len(crystals)} structures (data blocks "
                                       f"{', '.join(c.label.split('#', 1)[1] for c in crystals)}); "
                                       "read_structures (and the CLI) reads them all")
        return crystals[0]
    return next(iter_extxyz(p, require_labels=False, allow_left_handed=allow_left_handed))


def iter_structures(paths: str | os.PathLike | Iterable[str | os.PathLike], *, format: str | None = None,
                    allow_left_handed: bool = False, keep=None) -> Iterator[tuple[int, str, int, Crystal]]:
    """``(k, path, index, crystal)`` for every structure of ``paths`` in order, read lazily file by file.

    ``k`` counts structures from 0 over all files, ``index`` within the file; ext-xyz files expand to
    all their frames (read one at a time) and CIF files to all their data blocks. ``keep``: a function
    of ``k``; structures for which it is False are skipped (ext-xyz frames unparsed).
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    offset = 0
    for path in paths:
        p = Path(path)
        if not p.exists():
            raise DataError(str(path), "no such file")
        fmt = _format_of(p, format)
        if fmt == "extxyz":
            seen = [0]

            def keep_here(index, base=offset, seen=seen):
                seen[0] = index + 1
                return keep is None or keep(base + index)

            for c in iter_extxyz(p, require_labels=False, allow_left_handed=allow_left_handed, keep=keep_here):
                yield offset + seen[0] - 1, str(p), seen[0] - 1, c  # keep_here saw this frame last
            offset += seen[0]
        else:
            crystals = _read_cif(p, allow_left_handed) if fmt == "cif" else [_read_vasp(p, allow_left_handed)]
            for j, c in enumerate(crystals):
                if keep is None or keep(offset + j):
                    yield offset + j, str(p), j, c
            offset += len(crystals)


def read_structures(paths: str | os.PathLike | Iterable[str | os.PathLike], *, format: str | None = None,
                    allow_left_handed: bool = False) -> list[Crystal]:
    """Read several files with :func:`read_structure` (same ``format`` and ``allow_left_handed``);
    ext-xyz files expand to all their frames and CIF files to all their data blocks."""
    return [c for *_, c in iter_structures(paths, format=format, allow_left_handed=allow_left_handed)]


def read_born(path: str | os.PathLike, structure, *, symprec: float = 1e-5,
              is_symmetry: bool = True) -> tuple[np.ndarray, np.ndarray, float | None]:
    """Read a phonopy BORN file with phonopy's own parser.

    Parameters
    ----------
    path : str or PathLike
        The BORN file (line 1: unit conversion factor; line 2: 9 numbers of eps_inf;
        then the Born charges of the symmetry-independent atoms, 9 numbers each).
    structure : Crystal (or anything :func:`as_crystal` accepts)
        The *primitive* cell that phonopy uses (e.g. FCC primitive of rock salt, not
        the conventional unit cell); BORN lists its independent atoms in order.
    symprec : float
        Symmetry tolerance, Angstrom.
    is_symmetry : bool
        Symmetrise the tensors with the crystal symmetry, as phonopy does.

    Returns
    -------
    born : (n_atoms, 3, 3) ndarray
        Born charges of every atom of ``structure``, e, Z[i, a, b] = dP_a/du_(i,b).
    epsilon : (3, 3) ndarray
        Electronic dielectric tensor eps_inf.
    factor : float or None
        The unit conversion factor of line 1 (None when not a number).
    """
    from phonopy.file_IO import parse_BORN

    source = str(path)
    if not Path(path).is_file():
        raise DataError(source, "no such file")
    crystal = as_crystal(structure)
    try:
        primitive = to_phonopy_atoms(crystal)
    except DataError as exc:
        raise DataError(source, f"structure unusable for BORN: {exc.problem}") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            params = parse_BORN(primitive, symprec=symprec, is_symmetry=is_symmetry, filename=str(path))
    except Exception as exc:
        raise DataError(source, f"cannot parse BORN file for the {len(crystal.numbers)}-atom primitive cell "
                                f"{crystal.formula}: {type(exc).__name__}: {exc}") from None
    born = np.array(params["born"], dtype=np.float64).reshape(len(crystal.numbers), 3, 3)
    epsilon = np.array(params["dielectric"], dtype=np.float64).reshape(3, 3)
    if not (np.isfinite(born).all() and np.isfinite(epsilon).all()):
        raise DataError(source, "non-finite value (NaN/inf) in the BORN file")
    factor = params.get("factor")
    return born, epsilon, None if factor is None else float(factor)
