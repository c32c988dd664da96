"""benchmarks/time_to_accuracy.py: a lever given on a recipe, and minutes read from a run's metrics."""
import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "time_to_accuracy.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("time_to_accuracy", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_lever_merges_into_the_recipes_mapping(bench):
    plain = bench.recipe_settings("cct-2+priors")
    levered = bench.recipe_settings("cct-2+priors@model_args.patch_drop_rate=0.5@lr=0.001")
    assert levered["model_args"] == {**plain["model_args"], "patch_drop_rate": 0.5}
    assert levered["lr"] == 0.001 and levered["model"] == plain["model"] == "cct-2/3x2"


def test_a_recipe_that_needs_another_run_is_refused(bench):
    with pytest.raises(SystemExit, match="needs another run"):
        bench.recipe_settings("vit+distill")


def test_minutes_count_training_seconds_up_to_the_first_evaluation_that_reached(bench, tmp_path):
    lines = [{"epoch": 1, "epoch_seconds": 60.0}, {"epoch": 2, "epoch_seconds": 60.0, "test_acc": 0.42},
             {"epoch": 3, "epoch_seconds": 30.0}, {"epoch": 4, "epoch_seconds": 30.0, "test_acc": 0.47}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    reached = bench.minutes_to_targets(tmp_path, [40, 45, 50], train_flops=4e12)
    assert reached["40"] == {"minutes": 2.0, "epoch": 2, "flops": 2e12}
    assert reached["45"] == {"minutes": 3.0, "epoch": 4, "flops": 4e12}
    assert reached["50"] is None


def test_early_epochs_at_a_lower_resolution_count_at_their_share_of_the_flops(bench, tmp_path):
    lines = [{"epoch": epoch, "epoch_seconds": 30.0, "test_acc": 0.3 + 0.1 * epoch} for epoch in (1, 2, 3, 4)]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    reached = bench.minutes_to_targets(tmp_path, [40, 60], 3e12, {"size": 16, "epochs": 2, "flops_ratio": 0.25})
    assert reached["40"]["flops"] == pytest.approx(3e12 * 0.25 / 2.5)  # epoch 1 of weights .25 .25 1 1
    assert reached["60"]["flops"] == pytest.approx(3e12 * 1.5 / 2.5) and reached["60"]["minutes"] == 1.5
