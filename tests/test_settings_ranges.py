"""Every setting has a valid range, checked where settings are built; the parsers never end in a traceback."""
import itertools
import math
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lowdata import train
from lowdata.cli import main
from lowdata.config import RANGES, PretrainConfig, TrainConfig, build, field_names
from lowdata.errors import UsageError


@pytest.mark.parametrize("key", sorted(RANGES))
def test_every_range_refuses_its_edges_and_accepts_inside(key):
    cls = TrainConfig if key in field_names(TrainConfig) else PretrainConfig
    low, high, low_in, high_in = RANGES[key]
    whole = key not in ("drop_path", "lr", "min_lr", "weight_decay", "warmup_epochs", "clip_grad",
                        "checkpoint_minutes", "val_fraction", "layer_decay", "label_smoothing", "distill_alpha",
                        "distill_tau", "pool_ratio", "pool_threshold", "pool_weight", "ema_decay", "mask_ratio")
    step = 1 if whole else 1e-6
    inside = (low if low_in else low + step) if low is not None else (high - step if high is not None else 1)
    build(cls, {key: inside})
    if low is not None:
        with pytest.raises(UsageError, match=f"setting '{key}' must be"):
            build(cls, {key: low - step if low_in else low})
    if high is not None:
        with pytest.raises(UsageError, match=f"setting '{key}' must be"):
            build(cls, {key: high + step if high_in else high})
    if not whole:
        with pytest.raises(UsageError, match=f"setting '{key}' must be"):
            build(cls, {key: math.nan})


def test_defaults_lie_in_their_ranges():
    build(TrainConfig, {})
    build(PretrainConfig, {})


@pytest.mark.parametrize("settings, message", [
    (dict(model_args={"depth": -1}), "model 'vit-tiny' rejected its settings"),
    (dict(labels=20, val_fraction=0.99), "leaving none to train on"),
])
def test_settings_that_only_the_data_or_model_can_judge_are_usage_errors(tmp_path, settings, message):
    with pytest.raises(UsageError, match=message):
        train(data="digits", model="vit-tiny", epochs=1, out=str(tmp_path / "run"), **settings)


NUMERIC = sorted(set(RANGES) & set(field_names(TrainConfig)))
VALUES = st.one_of(st.integers(-3, 10 ** 6), st.floats(allow_nan=True, allow_infinity=True, width=32),
                   st.sampled_from(["", "abc", "1e-3", "-0", "true", "[1, 2]", "{a: 1}", "none"]))
ASSIGNMENTS = st.lists(st.tuples(st.sampled_from(NUMERIC), VALUES), max_size=4)
counter = itertools.count()


def assignment(key, value) -> str:
    return f"{key}={value}"


def run(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exit:  # argparse's own usage errors
        return exit.code


def one_line_or_success(code: int, err: str) -> None:
    assert code in (0, 2), err
    assert "Traceback" not in err
    if code == 2:
        errors = [line for line in err.splitlines() if "error:" in line]
        assert len(errors) == 1 and err.strip() == errors[0], err  # one line, nothing else


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pairs=ASSIGNMENTS)
def test_the_train_parser_never_ends_in_a_traceback(pairs, monkeypatch, capsys):
    import lowdata.runs.train as runs_train

    # everything up to training: parsing, settings, ranges, the run directory, resolved defaults
    monkeypatch.setattr(runs_train, "train_kind", lambda run, stop: {"lr": runs_train.resolved(run.config).lr})
    out = tempfile.mkdtemp(prefix="lowdata-prop-")
    code = run(["train", "--data", "digits", "--out", f"{out}/{next(counter)}", *(assignment(k, v) for k, v in pairs)])
    one_line_or_success(code, capsys.readouterr().err)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pairs=ASSIGNMENTS, sizes=st.lists(st.integers(-5, 2000), min_size=1, max_size=4),
       seeds=st.lists(st.integers(-2, 5), min_size=1, max_size=3), epochs=st.integers(-2, 3))
def test_the_study_parser_never_ends_in_a_traceback(pairs, sizes, seeds, epochs, monkeypatch, capsys):
    import lowdata.study.run as study_run
    import lowdata.study.study as study

    # everything up to the first cell: parsing, settings, the plan and its check of every unit
    monkeypatch.setattr(study_run, "run_cells", lambda *args, **kwargs: 0)  # what the local backend calls
    monkeypatch.setattr(study, "is_done", lambda *args: True)
    monkeypatch.setattr(study, "build_report", lambda out_dir: {})
    out = tempfile.mkdtemp(prefix="lowdata-prop-")
    code = run(["study", "--data", "digits", "--sizes", ",".join(map(str, sizes)), "--seeds",
                 ",".join(map(str, seeds)), "--budget-epochs", str(epochs), "--out", out,
                 *(assignment(k, v) for k, v in pairs)])
    one_line_or_success(code, capsys.readouterr().err)
