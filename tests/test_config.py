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
    with pytest.raises(ConfigError, match="sum_rule must be one of .mean., .weighted., got .median."):
        ModelConfig(sum_rule="median")
    with pytest.raises(ConfigError, match="sum_rule: weighted does not apply to model.head: field"):
        ModelConfig(sum_rule="weighted", head="field", targets=("field",), hidden_irreps="8x0e+4x1o",
                    head_irreps="4x0e+2x1o+2x2e")
    with pytest.raises(ConfigError, match=r"position_noise must be in \[0, 0.5\), got -0.1"):
        TrainConfig(position_noise=-0.1)


def test_bad_yaml_and_missing_file(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("cutoff: [1, 2\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_yaml_config(p, ModelConfig)
    with pytest.raises(ConfigError, match="no such config file"):
        load_yaml_config(tmp_path / "nope.yaml", ModelConfig)


def test_numeric_ranges_are_checked_with_the_key_named():
    """issue 19.6: a negative learning rate, a negative loss weight or a fraction above 1 is one line naming the key."""
    from tensorprop.config import ChargesConfig, DataConfig, FitConfig

    with pytest.raises(ConfigError, match=r"^train.learning_rate must be > 0, got -1.0$"):
        config_from_dict(FitConfig, {"train": {"learning_rate": -1}})
    with pytest.raises(ConfigError, match=r"^train.born_weight must be >= 0, got -0.5$"):
        TrainConfig(born_weight=-0.5)
    with pytest.raises(ConfigError, match=r"train.final_lr_ratio must be in \[0, 1\], got 1.5"):
        TrainConfig(final_lr_ratio=1.5)
    with pytest.raises(ConfigError, match="train.learning_rate must be > 0, got nan"):
        TrainConfig(learning_rate=float("nan"))
    with pytest.raises(ConfigError, match=r"model.radial_hidden must be >= 1, got \(64, 0\)"):
        ModelConfig(radial_hidden=(64, 0))
    with pytest.raises(ConfigError, match="data.max_train must be >= 0"):
        DataConfig(max_train=-3)
    with pytest.raises(ConfigError, match="charges.max_displacement must be > 0"):
        ChargesConfig(max_displacement=0.0)
    with pytest.raises(ConfigError, match="batch.max_edges must be >= 1"):
        BatchConfig(max_edges=0)


def test_allowed_table_matches_the_code_it_names():
    from tensorprop.config import ALLOWED, FitConfig
    from tensorprop.data.validate import LABEL_POLICIES
    import dataclasses
    import typing

    assert ALLOWED["data"]["label_check"] == tuple(LABEL_POLICIES)
    def section_class(section):  # "model.foundation" -> FoundationConfig (Optional unwrapped)
        cls = FitConfig
        for part in section.split("."):
            hint = typing.get_type_hints(cls)[part]
            cls = next((a for a in typing.get_args(hint) if dataclasses.is_dataclass(a)), hint)
        return cls

    for section, rules in ALLOWED.items():
        names = {f.name for f in dataclasses.fields(section_class(section))}
        assert set(rules) <= names, (section, set(rules) - names)


def test_unknown_key_suggests_the_close_one(tmp_path):
    p = tmp_path / "m.yaml"
    p.write_text("train:\n  learning_rat: 0.1\n")
    from tensorprop.config import FitConfig

    with pytest.raises(ConfigError, match=r"unknown key\(s\) train.learning_rat \(did you mean train.learning_rate\?\)"):
        load_yaml_config(p, FitConfig)


def test_field_docs_read_the_attributes_sections():
    from tensorprop.config import DataConfig, field_docs

    docs = field_docs(TrainConfig)
    assert docs["learning_rate"].startswith("Peak learning rate")
    assert docs["born_weight"] == docs["epsilon_weight"] == "Loss weights of the two targets"
    assert field_docs(DataConfig)["max_train"].startswith("Use at most this many training structures")


def test_model_task_migrates_old_configs_and_names_the_family_once():
    from tensorprop.tasks import task_of

    old = {"tensors": {}, "charges": {"targets": ["charges"], "head_irreps": "8x0e+4x1o"},
           "field": {"targets": ["field"], "head": "field", "hidden_irreps": "8x0e+4x1o", "head_irreps": "8x0e+4x1o+2x2e"},
           "foundation": {"foundation": {}}}
    for task, fields in old.items():  # configs (and model files) written before model.task existed
        cfg = config_from_dict(ModelConfig, fields)
        assert cfg.task == task and task_of(cfg).name == task
        assert config_from_dict(ModelConfig, config_to_dict(cfg)) == cfg  # round trip with the task written
    # a field head on crystal targets is the tensors family with another network
    assert config_from_dict(ModelConfig, {"head": "field", "head_irreps": "8x0e+4x1o+2x2e"}).task == "tensors"
    # the task alone sets the family's targets and head
    field = config_from_dict(ModelConfig, {"task": "field", "hidden_irreps": "8x0e+4x1o", "head_irreps": "8x0e+4x1o+2x2e"})
    assert field.targets == ("field",) and field.head == "field"
    assert config_from_dict(ModelConfig, {"task": "charges", "head_irreps": "8x0e+4x1o"}).targets == ("charges",)
    with pytest.raises(ConfigError, match="model.task 'charges' contradicts model.targets"):
        config_from_dict(ModelConfig, {"task": "charges", "targets": ["epsilon"]})
    with pytest.raises(ConfigError, match="model.task must be one of"):
        config_from_dict(ModelConfig, {"task": "phonons"})
