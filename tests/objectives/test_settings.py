"""Methods and terms own their settings: sections checked by one function, old flat keys mapped once."""
import dataclasses
import re

import pytest

from lowdata.config import PretrainConfig, TrainConfig, field_names, given_values, to_dict
from lowdata.errors import UsageError
from lowdata.objectives import OBJECTIVES, TERMS, build_config, resolve_sections
from lowdata.objectives.base import method_names

# the settings TrainConfig held before methods owned theirs (issue 42): 57 fields
MOVED = ("distill", "distill_alpha", "distill_tau", "dist_token", "pool_threshold", "pool_weight", "pool_augment",
         "pool_teacher", "guide", "guide_weight", "guide_blocks", "guide_on", "method_args")


def test_train_config_keeps_only_what_every_run_reads():
    fields = field_names(TrainConfig)
    assert not set(MOVED) & set(fields)
    # issue 45: a weights-file teacher's own resolution, beside teacher_model; issue 46: a budget chosen by a
    # selection strategy, beside labels, over features of a run or of a weights file and its architecture; issue
    # 48: progressive resolution, the loop's (every method's) early epochs at a lower resolution; issue 46 again:
    # the side the selection features' model reads the images at
    added = ("teacher_size", "selection", "selection_features", "selection_model", "low_res_size", "low_res_fraction",
             "selection_size")
    assert set(added) <= set(fields) and len(fields) == 57 - len(MOVED) + len(added) == 51
    assert {"pool", "pool_ratio", "teacher", "label_smoothing", "objective"} <= set(fields)


def test_every_method_and_term_declares_a_frozen_settings_dataclass():
    for name in [*method_names(True), *method_names(False)]:
        settings = OBJECTIVES.get(name).settings
        assert dataclasses.is_dataclass(settings) and settings.__dataclass_params__.frozen
    assert TERMS.names() == ["drloc", "guidance", "masked"]
    for name in TERMS.names():
        settings = TERMS.get(name).settings
        assert dataclasses.is_dataclass(settings) and settings.__dataclass_params__.frozen


def test_a_section_is_checked_by_type_range_and_choices_with_a_did_you_mean():
    config = build_config(TrainConfig, given_values(assignments=["distill.alpha=0.7", "distill.mode=soft",
                                                                 "teacher=runs/cnn"]))
    assert config.sections == {"distill": {"alpha": 0.7, "mode": "soft"}}
    for assignment, message in [("distill.alpha=1.5", "setting 'distill.alpha' must be >= 0 and <= 1, got 1.5"),
                                ("distill.alpah=0.3", "method 'distill' has no setting 'alpah' (did you mean 'alpha'?)"),
                                ("distill.mode=warm", "setting distill.mode must be one of hard, soft, none"),
                                ("ema_teacher.adaptive=maybe", "setting 'ema_teacher.adaptive' must be bool"),
                                ("guidance.weight=-1", "setting 'guidance.weight' must be >= 0"),
                                ("distil.alpha=0.3", "unknown setting 'distil' (did you mean 'distill'?)")]:
        with pytest.raises(UsageError, match=re.escape(message)):
            build_config(TrainConfig, given_values(assignments=[assignment]))


def test_resolving_fills_the_method_and_term_sections_and_saves_them(tmp_path):
    config = build_config(TrainConfig, {"objective": "ema-teacher", "ema_teacher": {"threshold": 0.6},
                                        "guidance": {"guide": "runs/cnn"}})
    resolved = resolve_sections(config, "ema-teacher")
    assert resolved.sections["ema_teacher"]["threshold"] == 0.6 and resolved.sections["ema_teacher"]["decay"] == 0.999
    assert resolved.sections["guidance"] == {"guide": "runs/cnn", "weight": 2.5, "blocks": None, "images": "both"}
    saved = to_dict(resolved)  # sections as top-level mappings, as config.yaml shows them
    assert saved["ema_teacher"]["pool_augment"] == "strong" and "sections" not in saved
    assert build_config(TrainConfig, saved) == resolved  # and read back unchanged


def test_a_section_of_another_method_is_refused_not_ignored():
    config = build_config(TrainConfig, {"ema_teacher": {"threshold": 0.6}})
    with pytest.raises(UsageError, match="ema_teacher.threshold is a setting of method 'ema-teacher', but this "
                                         "run's method is 'supervised'"):
        resolve_sections(config, "supervised")
    with pytest.raises(UsageError, match="section guidance needs guidance.guide"):
        resolve_sections(build_config(TrainConfig, {"guidance": {"images": "pool"}}), "supervised")


def test_old_flat_keys_map_once_to_their_sections_with_one_line(capsys):
    old = {"teacher": "runs/cnn", "distill": "soft", "distill_alpha": 0.7, "distill_tau": 2.0, "pool": "all",
           "pool_threshold": 0.5, "pool_weight": 2.0, "pool_augment": "strong", "pool_teacher": "cnn",
           "guide": "runs/cnn", "guide_weight": 1.5, "guide_blocks": None, "guide_on": "labelled",
           "dist_token": True, "method_args": {}}
    config = build_config(TrainConfig, old)
    assert config.sections == {"distill": {"mode": "soft", "alpha": 0.7, "tau": 2.0, "pool_threshold": 0.5,
                                           "pool_weight": 2.0},
                               "guidance": {"guide": "runs/cnn", "weight": 1.5, "images": "labelled"}}
    assert config.model_args == {"distilled": True}
    assert "setting distill_alpha is now written distill.alpha" in capsys.readouterr().err
    new = build_config(TrainConfig, {"teacher": "runs/cnn", "pool": "all", "model_args": {"distilled": True},
                                     "distill": {"mode": "soft", "alpha": 0.7, "tau": 2.0, "pool_threshold": 0.5,
                                                 "pool_weight": 2.0},
                                     "guidance": {"guide": "runs/cnn", "weight": 1.5, "images": "labelled"}})
    assert new == config


def test_an_old_saved_config_of_each_method_reads_as_its_new_spelling():
    """What runs saved before sections (every flat key at its value) builds the same resolved config."""
    flat_defaults = {"distill": "none", "distill_alpha": 0.5, "distill_tau": 1.0, "dist_token": False,
                     "pool_threshold": 0.0, "pool_weight": 1.0, "pool_augment": "strong", "pool_teacher": "cnn",
                     "guide": None, "guide_weight": 2.5, "guide_blocks": None, "guide_on": "both", "method_args": {}}
    supervised = build_config(TrainConfig, {**flat_defaults, "objective": "supervised"})
    assert supervised.sections == {}
    ema = build_config(TrainConfig, {**flat_defaults, "objective": "ema-teacher", "pool_teacher": "ema",
                                     "pool": "all", "pool_weight": 2.0, "method_args": {"threshold": 0.6}})
    assert ema.objective == "ema-teacher" and ema.sections == {"ema_teacher": {"threshold": 0.6, "pool_weight": 2.0}}
    distill = build_config(TrainConfig, {**flat_defaults, "objective": "distill", "teacher": "t", "distill": "hard"})
    assert distill.sections == {"distill": {"mode": "hard"}}
    mae = build_config(PretrainConfig, {"method": "mae", "mask_ratio": 0.6, "norm_pix_loss": True,
                                        "method_args": {"decoder_depth": 1}})
    assert mae.sections == {"mae": {"decoder_depth": 1, "mask_ratio": 0.6, "norm_pix_loss": True}}


def test_pool_teacher_ema_and_objective_ema_teacher_are_one_config():
    spelt_old = build_config(TrainConfig, {"pool": "all", "pool_teacher": "ema", "method_args": {"mixup": 0.8}})
    spelt_new = build_config(TrainConfig, {"pool": "all", "objective": "ema-teacher", "ema_teacher": {"mixup": 0.8}})
    assert spelt_old == spelt_new


def test_lowdata_methods_lists_each_setting_with_its_default(capsys):
    from lowdata.cli import main

    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    for line in ("distill.alpha", "ema_teacher.threshold", "guidance.guide", "mae.mask_ratio", "dino.local_crops"):
        assert line in out
    assert "0.95" in next(row for row in out.splitlines() if "ema_teacher.threshold" in row)
    assert main(["methods", "nothing"]) == 2
