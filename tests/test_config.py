import pytest

from tensorprop.config import (BatchConfig, ModelConfig, TrainConfig, config_from_dict, config_to_dict,
                              load_yaml_config)
from tensorprop.errors import ConfigError


def test_round_trip_through_dict():
    cfg = ModelConfig(cutoff=4.5, radial_hidden=(8, 8))
    assert config_from_dict(ModelConfig, config_to_dict(cfg)) == cfg


def test_yaml_unknown_key_named(tmp_path):
    p = tmp_path / "m.yaml"
    p.write_text("cutoff: 4.0\nnum_layer: 2\n")
    with pytest.raises(ConfigError, match=r"m.yaml: unknown key\(s\) num_layer"):
        load_yaml_config(p, ModelConfig)


def test_yaml_wrong_type_named(tmp_path):
    p = tmp_path / "m.yaml"
    p.write_text("cutoff: five\n")
    with pytest.raises(ConfigError, match="cutoff: expected float, got str"):
        load_yaml_config(p, ModelConfig)
    p.write_text("radial_hidden: 64\n")
    with pytest.raises(ConfigError, match="radial_hidden: expected a list"):
        load_yaml_config(p, ModelConfig)


def test_invalid_values():
    with pytest.raises(ConfigError, match="targets"):
        ModelConfig(targets=("dipole",))
    with pytest.raises(ConfigError, match="lacks"):
        ModelConfig(hidden_irreps="8x0e+4x1o")
    with pytest.raises(ConfigError, match="cannot parse irreps"):
        ModelConfig(hidden_irreps="8x0q")
    with pytest.raises(ConfigError, match="pad_mode"):
        BatchConfig(pad_mode="fancy")
    with pytest.raises(ConfigError, match="sum_rule must be 'mean' or 'weighted', got 'median'"):
        ModelConfig(sum_rule="median")
    with pytest.raises(ConfigError, match="sum_rule: weighted does not apply to model.head: field"):
        ModelConfig(sum_rule="weighted", head="field", targets=("field",), hidden_irreps="8x0e+4x1o",
                    head_irreps="4x0e+2x1o+2x2e")
    with pytest.raises(ConfigError, match=r"position_noise must be in \[0, 0.5\) Angstrom, got -0.1"):
        TrainConfig(position_noise=-0.1)


def test_bad_yaml_and_missing_file(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("cutoff: [1, 2\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_yaml_config(p, ModelConfig)
    with pytest.raises(ConfigError, match="no such config file"):
        load_yaml_config(tmp_path / "nope.yaml", ModelConfig)
