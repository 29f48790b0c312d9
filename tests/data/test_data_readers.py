"""Readers: ext-xyz round trip, POSCAR and CIF, conversions, and one DataError per bad input."""

from __future__ import annotations

import numpy as np
import pytest

from tensorprop.data.readers import (as_crystal, from_ase, from_pymatgen, read_extxyz, read_structure,
                                     read_structures, write_extxyz)
from tensorprop.data.records import Crystal
from tensorprop.errors import DataError

A = 3.0  # CsCl-type test cell: Na at 0, Cl at the centre
NA_BECS = "1.1 0 0 0 1.1 0 0 0 1.1"
CL_BECS = "-1.1 0 0 0 -1.1 0 0 0 -1.1"
EPS = "2.4 0 0 0 2.4 0 0 0 2.4"


def frame(*, props="species:S:1:pos:R:3:becs:R:9", eps=f'eps="{EPS}"', lattice=f"{A} 0 0 0 {A} 0 0 0 {A}",
          na="0 0 0", cl=f"{A / 2} {A / 2} {A / 2}", na_becs=NA_BECS, cl_becs=CL_BECS) -> str:
    return (f'2\nLattice="{lattice}" Properties={props} {eps} pbc="T T T"\n'
            f"Na {na} {na_becs}\nCl {cl} {cl_becs}\n")


def write_frames(tmp_path, *frames, name="set.xyz"):
    path = tmp_path / name
    path.write_text("".join(frames))
    return path


def fails(path, index, *words, reader=read_extxyz, **kwargs):
    with pytest.raises(DataError) as err:
        reader(path, **kwargs)
    msg = str(err.value)
    where = str(path) if index is None else f"{path}, structure {index}: "
    assert msg.startswith(where), msg
    for w in words:
        assert w in msg, (w, msg)
    return msg


def test_hand_written_frames_read(tmp_path):
    path = write_frames(tmp_path, frame(), frame())
    out = read_extxyz(path)
    assert len(out) == 2 and out[1].label == "set.xyz#1"
    assert out[0].born_charges.shape == (2, 3, 3) and out[0].born_charges[1, 2, 2] == -1.1
    assert np.allclose(out[0].epsilon, 2.4 * np.eye(3)) and out[0].pbc.all()
    assert out[0].info == {}


def test_extxyz_round_trip(tmp_path, nacl, lio2rh):
    water = Crystal(numbers=[8, 1, 1], positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]], cell=np.zeros((3, 3)),
                    pbc=False, info={"dipole": np.array([0.1, 0.2, 0.0]), "energy": -3.5, "name": 'a "b"',
                                     "forces": np.arange(9.0).reshape(3, 3), "ok": True, "n_iter": 7})
    path = write_extxyz(tmp_path / "rt.xyz", [nacl, lio2rh, water])
    back = read_extxyz(path, require_labels=False)
    assert [c.label for c in back] == ["rt.xyz#0", "rt.xyz#1", "rt.xyz#2"]
    for a, b in zip([nacl, lio2rh, water], back):
        assert np.array_equal(a.numbers, b.numbers)
        assert np.array_equal(a.positions, b.positions) and np.array_equal(a.cell, b.cell)
        assert np.array_equal(a.pbc, b.pbc)
        for f in ("born_charges", "epsilon"):
            assert (getattr(a, f) is None and getattr(b, f) is None) or np.array_equal(getattr(a, f), getattr(b, f))
    assert back[1].info["material_id"] == "mp-1" and back[1].info["band_gap"] == 1.5
    assert np.array_equal(back[1].info["e_total"], np.arange(9.0))  # 2-D info arrays come back flattened
    assert np.array_equal(back[2].info["dipole"], [0.1, 0.2, 0.0]) and back[2].info["energy"] == -3.5
    assert np.array_equal(back[2].info["forces"], np.arange(9.0).reshape(3, 3))
    assert back[2].info["name"] == 'a "b"' and back[2].info["ok"] is True and back[2].info["n_iter"] == 7
    # labelled frames only: the strict reader accepts them too
    assert len(read_extxyz(write_extxyz(tmp_path / "l.xyz", [nacl, lio2rh]))) == 2


def test_custom_label_keys(tmp_path):
    path = write_frames(tmp_path, frame(props="species:S:1:pos:R:3:zstar:R:9", eps=f'diel="{EPS}"'))
    fails(path, 0, "missing per-atom Born-charge key", "'becs'", "['zstar']")
    out = read_extxyz(path, born_key="zstar", epsilon_key="diel")
    assert out[0].born_charges[0, 0, 0] == 1.1 and out[0].epsilon[2, 2] == 2.4


def test_missing_becs_key(tmp_path):
    path = write_frames(tmp_path, frame(), frame(props="species:S:1:pos:R:3", na_becs="", cl_becs=""))
    fails(path, 1, "missing per-atom Born-charge key", "'becs'", "'born_charges'", "per-frame keys ['eps']")
    assert read_extxyz(path, require_labels=False)[1].born_charges is None


def test_missing_eps_key(tmp_path):
    path = write_frames(tmp_path, frame(), frame(), frame(eps=""))
    fails(path, 2, "missing per-frame dielectric key", "'eps'")


def test_becs_with_8_numbers(tmp_path):
    bad = frame(props="species:S:1:pos:R:3:becs:R:8", na_becs="1 0 0 0 1 0 0 0", cl_becs="-1 0 0 0 -1 0 0 0")
    fails(write_frames(tmp_path, frame(), bad), 1, "becs", "9 numbers per atom, found 8")


def test_eps_with_6_numbers(tmp_path):
    fails(write_frames(tmp_path, frame(eps='eps="2 2 2 0 0 0"')), 0, "eps", "9 numbers", "found 6")


def test_nan_in_positions(tmp_path):
    fails(write_frames(tmp_path, frame(), frame(cl="nan 0 0")), 1, "NaN", "positions of atom 1")


def test_nan_in_becs(tmp_path):
    fails(write_frames(tmp_path, frame(na_becs="1.1 0 0 0 nan 0 0 0 1.1")), 0, "NaN", "born_charges of atom 0")


def test_inf_in_eps(tmp_path):
    fails(write_frames(tmp_path, frame(), frame(eps='eps="inf 0 0 0 2 0 0 0 2"')), 1, "inf", "epsilon")


def test_overlapping_atoms(tmp_path):
    fails(write_frames(tmp_path, frame(cl="0.1 0 0")), 0, "atoms 0 and 1 overlap", "0.1 A")
    fails(write_frames(tmp_path, frame(), frame(na="0.05 0 0", cl=f"{A - 0.05} 0 0")), 1,
          "atoms 0 and 1 overlap", "0.1 A", "across a periodic boundary")


def test_zero_volume_cell(tmp_path):
    fails(write_frames(tmp_path, frame(lattice=f"{A} 0 0 0 {A} 0 0 0 0")), 0, "degenerate cell",
          "lattice vector 2 is zero")
    fails(write_frames(tmp_path, frame(lattice=f"{A} 0 0 0 {A} 0 {A} {A} 0")), 0, "degenerate cell", "volume")


def test_truncated_file(tmp_path):
    text = frame() + frame() + frame()
    cut = len(frame()) * 2 + len(frame()) // 2  # in the middle of frame 2
    path = tmp_path / "cut.xyz"
    path.write_text(text[:text.rindex("\n", 0, cut) + 1])  # whole lines: the frame lacks atoms
    fails(path, 2, "truncated file", "declares 2 atoms")
    path.write_text(text[:cut])  # cut inside a line
    fails(path, 2)


def test_bad_header_names_its_frame(tmp_path):
    path = write_frames(tmp_path, frame(), frame(), "two\nfoo\n")
    fails(path, 2, "expected the atom count")


def test_empty_and_missing_files(tmp_path):
    (tmp_path / "empty.xyz").write_text("")
    fails(tmp_path / "empty.xyz", None, "no structures")
    fails(tmp_path / "nope.xyz", None, "no such file")
    fails(tmp_path / "nope.xyz", None, "no such file", reader=read_structure)
    fails(tmp_path / "POSCAR", None, "no such file", reader=read_structure)


POSCAR = """NaCl rock salt
1.0
5.64 0 0
0 5.64 0
0 0 5.64
Na Cl
4 4
Direct
0 0 0
0 .5 .5
.5 0 .5
.5 .5 0
.5 .5 .5
.5 0 0
0 .5 0
0 0 .5
"""

CIF_HEAD = """data_NaCl
_cell_length_a 5.64
_cell_length_b 5.64
_cell_length_c 5.64
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
"""
ATOM_SITE_LOOP = """loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_occupancy
"""
CIF_P1 = CIF_HEAD + """_symmetry_space_group_name_H-M 'P 1'
loop_
_symmetry_equiv_pos_as_xyz
'x, y, z'
""" + ATOM_SITE_LOOP + "".join(f"{s}{i} {s} {x} {y} {z} 1.0\n" for i, (s, x, y, z) in enumerate(
    [("Na", 0, 0, 0), ("Na", 0, .5, .5), ("Na", .5, 0, .5), ("Na", .5, .5, 0),
     ("Cl", .5, .5, .5), ("Cl", .5, 0, 0), ("Cl", 0, .5, 0), ("Cl", 0, 0, .5)]))
CIF_FM3M = CIF_HEAD + """_symmetry_space_group_name_H-M 'F m -3 m'
_symmetry_Int_Tables_number 225
""" + ATOM_SITE_LOOP + """Na1 Na 0 0 0 1.0
Cl1 Cl 0.5 0.5 0.5 1.0
"""


def _is_rocksalt(c: Crystal):
    assert c.n_atoms == 8 and sorted(c.numbers.tolist()) == [11] * 4 + [17] * 4
    assert np.allclose(c.cell, 5.64 * np.eye(3)) and c.pbc.all()
    assert c.born_charges is None and c.epsilon is None
    d = np.linalg.norm(c.positions[c.numbers == 11][0] - c.positions[c.numbers == 17], axis=1)
    assert np.isclose(d.min(), 2.82)


_TEXTS = {"POSCAR": POSCAR, "CIF_P1": CIF_P1, "CIF_FM3M": CIF_FM3M}


@pytest.mark.parametrize("name, text, fmt", [("POSCAR", "POSCAR", None), ("NaCl.vasp", "POSCAR", None),
                                             ("CONTCAR-final", "POSCAR", None), ("nacl.txt", "POSCAR", "poscar"),
                                             ("p1.cif", "CIF_P1", None), ("fm3m.cif", "CIF_FM3M", None)])
def test_read_structure_rocksalt(tmp_path, name, text, fmt):
    (tmp_path / name).write_text(_TEXTS[text])
    c = read_structure(tmp_path / name, format=fmt)
    _is_rocksalt(c)
    assert c.label == name


@pytest.mark.parametrize("name, text, fmt", [("NaCl_POSCAR", "POSCAR", "vasp"), ("MgO_POSCAR_relaxed", "POSCAR", "vasp"),
                                             ("nacl.contcar", "POSCAR", "vasp"), ("help.txt", "POSCAR", "vasp"),
                                             ("structure", "CIF_P1", "cif"), ("NaCl.txt", "CIF_FM3M", "cif")])
def test_file_names_users_write_are_read(tmp_path, name, text, fmt):
    """issue 19.1: POSCAR/CONTCAR anywhere in the name, as ase has it; otherwise the content tells."""
    from tensorprop.data.readers import detect_format

    (tmp_path / name).write_text(_TEXTS[text])
    assert detect_format(tmp_path / name) == fmt
    _is_rocksalt(read_structure(tmp_path / name))
    _is_rocksalt(read_structures([tmp_path / name])[0])


def test_extxyz_content_without_its_suffix(tmp_path, nacl, lio2rh):
    from tensorprop.data.readers import detect_format

    path = write_extxyz(tmp_path / "frames.xyz", [lio2rh, nacl])
    (tmp_path / "frames").write_bytes(path.read_bytes())
    assert detect_format(tmp_path / "frames") == "extxyz"
    assert [c.n_atoms for c in read_structures(tmp_path / "frames")] == [4, 8]
    # format= overrides the name: a POSCAR-looking name holding ext-xyz frames
    (tmp_path / "POSCAR_frames").write_bytes(path.read_bytes())
    assert len(read_structures(tmp_path / "POSCAR_frames", format="extxyz")) == 2


def test_read_structure_xyz_and_structures(tmp_path, nacl, lio2rh):
    (tmp_path / "POSCAR").write_text(POSCAR)
    path = write_extxyz(tmp_path / "two.xyz", [lio2rh, nacl])
    assert read_structure(path).formula == lio2rh.formula
    out = read_structures([path, tmp_path / "POSCAR"])
    assert [c.n_atoms for c in out] == [4, 8, 8]
    assert len(read_structures(path)) == 2


def test_garbage_structure_files(tmp_path):
    (tmp_path / "POSCAR").write_text("this is\nnot a poscar\nat all\n")
    fails(tmp_path / "POSCAR", 0, "cannot parse POSCAR", reader=read_structure)
    (tmp_path / "bad.cif").write_text("data_x\n_cell_length_a foo\n")
    fails(tmp_path / "bad.cif", 0, "cannot parse CIF", reader=read_structure)
    (tmp_path / "what.dat").write_text("some notes\nabout a crystal\n")
    fails(tmp_path / "what.dat", None, "cannot tell the structure format from the file's name or contents; pass "
          "--format", reader=read_structure)
    fails(tmp_path / "what.dat", None, "unknown format", reader=read_structure, format="pdb")
    (tmp_path / "POSCAR").write_text(POSCAR.replace("0 0 .5\n", "0 0 0.01\n"))
    fails(tmp_path / "POSCAR", 0, "overlap", reader=read_structure)


def test_from_ase_and_as_crystal(nacl):
    atoms = nacl.to_ase()
    c = from_ase(atoms)
    assert np.array_equal(c.born_charges, nacl.born_charges) and np.array_equal(c.epsilon, nacl.epsilon)
    assert c.label == "<ase.Atoms>"
    atoms = nacl.to_ase()
    del atoms.arrays["born_charges"]
    atoms.arrays["becs"] = nacl.born_charges.reshape(8, 9)
    atoms.info["eps"] = atoms.info.pop("epsilon").reshape(9)
    c = as_crystal(atoms)
    assert np.array_equal(c.born_charges, nacl.born_charges) and np.array_equal(c.epsilon, nacl.epsilon)
    assert as_crystal(nacl) is nacl
    s = as_crystal(nacl.to_pymatgen())
    assert np.allclose(s.positions, nacl.positions) and s.born_charges is None
    m = as_crystal(Crystal(numbers=[8, 1], positions=[[0, 0, 0], [0.97, 0, 0]], cell=np.zeros((3, 3)),
                           pbc=False).to_pymatgen())
    assert not m.pbc.any() and m.n_atoms == 2
    with pytest.raises(TypeError, match="read_structure"):
        as_crystal("POSCAR")
    with pytest.raises(TypeError, match="cannot convert builtins.int"):
        as_crystal(3)


def test_from_pymatgen_rejects_disorder(nacl):
    from pymatgen.core import Structure

    s = nacl.to_pymatgen()
    s = Structure(s.lattice, [{"Na": 0.5, "K": 0.5}] + [site.species for site in s][1:], s.frac_coords)
    with pytest.raises(DataError, match="site 0 is disordered"):
        from_pymatgen(s)
    c = from_pymatgen(nacl.to_pymatgen(), born_charges=nacl.born_charges.reshape(8, 9), epsilon=np.ones(9))
    assert c.born_charges.shape == (8, 3, 3) and c.epsilon.shape == (3, 3)


def test_multi_block_cif_reads_every_block(tmp_path, make_rocksalt):
    """Every data block of a CIF is a structure (nothing silently cut to the first); read_structure, which
    returns one, refuses such a file; a block that does not parse is named."""
    from pymatgen.io.cif import CifWriter

    small, big = make_rocksalt(a=5.64, labels=False), make_rocksalt(a=6.0, labels=False)
    text = "".join(str(CifWriter(c.to_pymatgen())).replace("data_", f"data_{name}_", 1) + "\n"
                   for name, c in (("small", small), ("big", big)))
    path = tmp_path / "two.cif"
    path.write_text(text)
    crystals = read_structures(path)
    assert [c.label for c in crystals] == ["two.cif#small_NaCl", "two.cif#big_NaCl"]
    assert np.allclose([np.linalg.det(c.cell) for c in crystals], [5.64**3, 6.0**3])
    fails(path, None, "holds 2 structures (data blocks small_NaCl, big_NaCl)", reader=read_structure)
    path.write_text(text.replace("_cell_length_a   6.00000000", "_cell_length_a   six"))
    fails(path, 1, "cannot parse CIF block data_big_NaCl", reader=read_structures)
