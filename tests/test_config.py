import pytest

from lowdata.config import TrainConfig, build, given_values
from lowdata.errors import UsageError


def resolve(cls, file=None, overrides=None, assignments=None):
    """Defaults < YAML file < flags < key=value, as the CLI resolves them."""
    return build(cls, given_values(file, overrides, assignments))


def test_defaults_then_yaml_then_flags_then_assignments(tmp_path):
    file = tmp_path / "run.yaml"
    file.write_text("lr: 0.002\nepochs: 7\nmodel: vit-tiny\nmodel_args: {depth: 4}\n")
    config = resolve(TrainConfig, file=file, overrides={"epochs": 9, "labels": None},
                     assignments=["lr=5e-4", "model_args.patch_size=2", "clip_grad=null", "augment_args.mixup=0.2"])
    assert config.model == "vit-tiny"  # from YAML
    assert config.epochs == 9  # flag beats YAML
    assert config.lr == 5e-4  # key=value beats YAML
    assert config.model_args == {"depth": 4, "patch_size": 2}
    assert config.augment_args == {"mixup": 0.2}
    assert config.clip_grad is None
    assert config.batch_size == TrainConfig().batch_size  # untouched default


def test_int_accepted_for_float_but_not_string_for_int():
    assert resolve(TrainConfig, assignments=["lr=1"]).lr == 1.0
    with pytest.raises(UsageError, match="'epochs' must be int"):
        resolve(TrainConfig, assignments=["epochs=ten"])


def test_unknown_key_is_rejected_with_a_hint(tmp_path):
    with pytest.raises(UsageError, match="did you mean 'epochs'"):
        resolve(TrainConfig, assignments=["epoch=3"])
    file = tmp_path / "bad.yaml"
    file.write_text("- just\n- a list\n")
    with pytest.raises(UsageError, match="mapping"):
        resolve(TrainConfig, file=file)


def test_missing_config_file_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="cannot read config file"):
        resolve(TrainConfig, file=tmp_path / "nope.yaml")
