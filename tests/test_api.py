import json

import numpy as np
import pytest
from ase.build import bulk

import tensorprop
from tensorprop.errors import CheckpointError, DataError
from tests.conftest import TINY, rocksalt_nacl, triclinic


def test_predict_accepts_ase_pymatgen_and_crystal(tiny_model):
    from pymatgen.core import Lattice, Structure

    c = rocksalt_nacl()
    ref = tiny_model.predict(c)
    assert ref["born_charges"].shape == (2, 3, 3) and ref["epsilon"].shape == (3, 3)
    assert ref["born_charges"].dtype == np.float64
    atoms = tiny_model.predict(c.to_ase())
    s = Structure(Lattice(c.cell), ["Na", "Cl"], c.positions, coords_are_cartesian=True)
    pmg = tiny_model.predict(s)
    for out in (atoms, pmg):
        np.testing.assert_allclose(out["born_charges"], ref["born_charges"], atol=1e-5)
        np.testing.assert_allclose(out["epsilon"], ref["epsilon"], atol=1e-5)
    np.testing.assert_allclose(tiny_model.predict(bulk("NaCl", "rocksalt", a=5.64))["epsilon"], ref["epsilon"],
                               atol=1e-4)


def test_save_load_round_trip(tiny_model, tmp_path):
    path = tiny_model.save(tmp_path / "m.npz")
    loaded = tensorprop.load_model(path)
    assert loaded.config == tiny_model.config and loaded.n_parameters == tiny_model.n_parameters
    a, b = tiny_model.predict(triclinic()), loaded.predict(triclinic())
    np.testing.assert_array_equal(a["born_charges"], b["born_charges"])
    np.testing.assert_array_equal(a["epsilon"], b["epsilon"])
    # a run folder holding model.npz loads it
    (tmp_path / "run").mkdir()
    tiny_model.save(tmp_path / "run" / "model.npz")
    assert tensorprop.load_model(tmp_path / "run").config == tiny_model.config


def test_single_heads():
    eps_only = tensorprop.build_model({**TINY, "targets": ["epsilon"]})
    out = eps_only.predict(rocksalt_nacl())
    assert set(out) == {"epsilon"}
    born_only = tensorprop.build_model({**TINY, "targets": ["born_charges"]})
    assert set(born_only.predict(rocksalt_nacl())) == {"born_charges"}
    assert born_only.n_parameters < tensorprop.build_model(TINY).n_parameters


def test_unknown_elements_refused(tiny_model, tmp_path):
    from tensorprop.api import TensorModel

    m = TensorModel(tiny_model.config, tiny_model.params, tiny_model.stats, elements=[11, 17])
    m.predict(rocksalt_nacl())
    with pytest.raises(DataError, match=r"structure 0: element\(s\) Li, O, Ti not in this model's training set"):
        m.predict(triclinic())
    with pytest.warns(UserWarning, match=r"structure 1: element\(s\) Li, O, Ti not in this model's training set"):
        out = m.predict_many([rocksalt_nacl(), triclinic()], unseen_elements="warn")
    assert len(out) == 2 and np.all(np.isfinite(out[1]["born_charges"]))  # predicted, and said so


def test_bad_model_files(tiny_model, tmp_path):
    with pytest.raises(CheckpointError, match="no such model file"):
        tensorprop.load_model(tmp_path / "missing.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file")
    with pytest.raises(CheckpointError, match="junk.npz: not a readable tensorprop model file"):
        tensorprop.load_model(junk)
    # a newer format version is refused with both versions named
    good = tiny_model.save(tmp_path / "good.npz")
    with np.load(good) as z:
        files = {k: z[k] for k in z.files}
    meta = json.loads(files["__meta__"].tobytes())
    meta["format_version"] = 99
    files["__meta__"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(tmp_path / "future.npz", **files)
    with pytest.raises(CheckpointError, match="format 99, this tensorprop reads format 1"):
        tensorprop.load_model(tmp_path / "future.npz")
    # a config that does not match the stored parameters
    meta["format_version"] = 1
    meta["model_config"]["num_layers"] = 3
    files["__meta__"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(tmp_path / "mismatch.npz", **files)
    with pytest.raises(CheckpointError, match=r"mismatch\.npz: parameter shapes do not match"):
        # at load when the 3-layer network's shapes are known without a trace, else by the first prediction
        tensorprop.load_model(tmp_path / "mismatch.npz").predict(rocksalt_nacl())
    meta["model_config"]["hidden_irrep"] = "1x0e"
    files["__meta__"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(tmp_path / "badcfg.npz", **files)
    with pytest.raises(CheckpointError, match="incompatible model config: unknown key"):
        tensorprop.load_model(tmp_path / "badcfg.npz")


def test_predict_validates_structures_built_in_memory(tiny_model):
    c = rocksalt_nacl()
    with pytest.raises(DataError, match="NaCl, structure 0: .*non-finite value"):
        tiny_model.predict(c.replace(positions=np.array([[0, 0, 0], [np.nan, 0, 0]])))
    with pytest.raises(DataError, match="structure 1: atoms 0 and 1 overlap: distance 0.1 A"):
        tiny_model.predict_many([c, c.replace(positions=np.array([[0, 0, 0], [0.1, 0, 0]]))])
    # a rotoinversion makes the cell left-handed: still a valid crystal for prediction
    flipped = c.replace(cell=-c.cell, positions=-c.positions)
    assert np.linalg.det(flipped.cell) < 0
    np.testing.assert_allclose(tiny_model.predict(flipped)["epsilon"], tiny_model.predict(c)["epsilon"], atol=1e-4)


def test_huge_structure_is_refused_before_it_uses_memory(tiny_model, tmp_path, capsys):
    """A supercell beyond the edge guard gets a one-line error naming it, from Python and the CLI; a larger
    guard lets it through."""
    from tensorprop.cli import main
    from tensorprop.errors import BatchBudgetError
    from tensorprop.memory import format_bytes, prediction_bytes

    crystal = rocksalt_nacl()
    edges = tensorprop.data.graph.build_graph(crystal, tiny_model.config.cutoff).n_edges
    need = format_bytes(prediction_bytes(tiny_model, edges))  # measured on this model's compiled network
    assert need.split()[1] in ("KiB", "MiB") and float(need.split()[0]) > 0
    with pytest.raises(BatchBudgetError, match=rf"NaCl, structure 0: 2 atoms and {edges} edges .* more than "
                                               rf"max_edges={edges - 1} \(about {need} to predict with this model"):
        tiny_model.predict_many([crystal], max_edges=edges - 1)
    assert len(tiny_model.predict_many([crystal], max_edges=edges)) == 1
    model_path = tiny_model.save(tmp_path / "tiny.npz")
    poscar = tmp_path / "POSCAR"
    crystal.to_ase().write(poscar, format="vasp")
    assert main(["predict", str(model_path), str(poscar), "--max-edges", "10", "--allow-unseen-elements"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tensorprop: error: ") and "more than max_edges=10" in err and err.count("\n") == 1


def test_predict_finds_overlaps_from_the_neighbour_graph(tiny_model):
    """predict_many checks distances on the graph it builds: the same errors as check_crystal, coincident atoms
    and a too-short lattice vector included."""
    from tensorprop.data.graph import build_graph
    from tensorprop.data.validate import check_crystal, check_graph_distances

    c = rocksalt_nacl()
    cases = [(np.array([[0, 0, 0], [0, 0, 0]]), c.cell, "atoms 0 and 1 overlap: distance 0 A"),
             (np.array([[0.05, 1.0, 1.0], [4.95, 1.0, 1.0]]), np.diag([5.0, 6.0, 6.0]), "across a periodic boundary"),
             (np.array([[0, 0, 0], [0.15, 1.5, 1.5]]), np.diag([0.3, 6.0, 6.0]), "own periodic image")]
    for positions, cell, message in cases:
        bad = c.replace(positions=positions, cell=cell)
        with pytest.raises(DataError) as full:
            check_crystal(bad, "x", 0)
        with pytest.raises(DataError) as from_graph:
            check_graph_distances(build_graph(bad, 4.0, allow_isolated=True), 0.5, "x", 0)
        assert message in str(full.value) and str(from_graph.value) == str(full.value)
        with pytest.raises(DataError, match=message):
            tiny_model.predict_many([c, bad])
    check_graph_distances(build_graph(c, 4.0), 0.5, "x", 0)  # a sane crystal passes


def test_mirror_image_predicts_the_improperly_rotated_tensors(tiny_model):
    """issue 19.10: a crystal sent through an improper rotation (ase.Atoms, so through the converters) has a
    left-handed cell; predict accepts it and gives R Z* R^T and R eps R^T (both are polar tensors)."""
    atoms = triclinic().to_ase()
    mirror = np.diag([-1.0, 1.0, 1.0])
    rotation = np.linalg.qr(np.random.default_rng(5).normal(size=(3, 3)))[0]
    improper = rotation @ mirror if np.linalg.det(rotation) > 0 else rotation
    image = atoms.copy()
    image.set_cell(atoms.cell[:] @ improper.T)
    image.positions = atoms.positions @ improper.T
    assert np.linalg.det(image.cell[:]) < 0
    ref, out = tiny_model.predict(atoms), tiny_model.predict(image)
    assert np.abs(ref["born_charges"] - ref["born_charges"].transpose(0, 2, 1)).max() > 1e-3  # generic Z*
    np.testing.assert_allclose(out["born_charges"], improper @ ref["born_charges"] @ improper.T, atol=2e-4)
    np.testing.assert_allclose(out["epsilon"], improper @ ref["epsilon"] @ improper.T, atol=2e-4)


def test_structures_without_a_cell_are_refused_by_crystal_models(tiny_model):
    """issue 19.4: a molecule (pbc False, zero cell) has no bulk Z*/eps_inf."""
    from ase.build import molecule

    water = molecule("H2O")
    with pytest.raises(DataError, match=r"<ase.Atoms>, structure 0: not periodic in all three directions "
                                        r"\(pbc \[0, 0, 0\]\).*tensorprop fit charges"):
        tiny_model.predict(water)
    slab = rocksalt_nacl().replace(pbc=np.array([True, True, False]))
    with pytest.raises(DataError, match=r"NaCl, structure 1: not periodic in all three directions \(pbc \[1, 1, 0\]\)"):
        tiny_model.predict_many([rocksalt_nacl(), slab])


def test_unseen_element_refusal_names_the_way_round(tiny_model):
    from tensorprop.api import TensorModel

    m = TensorModel(tiny_model.config, tiny_model.params, tiny_model.stats, elements=[11, 17])
    with pytest.raises(DataError, match="--allow-unseen-elements on the command line, unseen_elements='warn'"):
        m.predict(triclinic())


def test_build_model_takes_a_yaml_path_a_dict_or_a_config(tmp_path):
    """issue 19.2: the path of a fit config (model: section) or of bare model fields; anything else a TypeError."""
    import yaml

    fit_yaml = tmp_path / "fit.yaml"
    fit_yaml.write_text(yaml.safe_dump({"model": {**TINY, "targets": ["epsilon"]}, "train": {"max_steps": 3}}))
    model = tensorprop.build_model(str(fit_yaml))
    assert model.config.targets == ("epsilon",) and model.config.num_layers == TINY["num_layers"]
    bare = tmp_path / "model.yaml"
    bare.write_text(yaml.safe_dump(TINY))
    assert tensorprop.build_model(bare).config == tensorprop.ModelConfig(**{**TINY, "radial_hidden": (16,)})
    with pytest.raises(tensorprop.ConfigError, match=r"model.yaml: unknown key\(s\) num_layer"):
        bare.write_text("num_layer: 2\n")
        tensorprop.build_model(bare)
    with pytest.raises(TypeError, match="a path to a YAML config, a dict, a ModelConfig, a FitConfig or None, got int"):
        tensorprop.build_model(3)


def test_a_text_file_as_model_gets_no_pickle_advice(tmp_path):
    """issue 19.14: numpy's 'allow_pickle' advice would be wrong for a POSCAR passed where a model goes."""
    (tmp_path / "POSCAR").write_text("NaCl\n1.0\n5.64 0 0\n0 5.64 0\n0 0 5.64\nNa Cl\n1 1\nDirect\n0 0 0\n.5 .5 .5\n")
    with pytest.raises(CheckpointError) as err:
        tensorprop.load_model(tmp_path / "POSCAR")
    assert str(err.value).endswith("POSCAR: not a readable tensorprop model file (not an .npz archive)")
    assert "pickle" not in str(err.value)
