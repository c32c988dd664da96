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
    [(_, plain)] = bench.recipe_chain("cct-2+priors")
    [(_, levered)] = bench.recipe_chain("cct-2+priors@model_args.patch_drop_rate=0.5@lr=0.001")
    assert levered["model_args"] == {**plain["model_args"], "patch_drop_rate": 0.5}
    assert levered["lr"] == 0.001 and levered["model"] == plain["model"] == "cct-2/3x2"


def test_a_recipe_that_needs_a_teacher_is_refused(bench):
    with pytest.raises(SystemExit, match="needs another kind of run"):
        bench.recipe_chain("vit+distill")


def test_a_start_recipe_trains_first_and_the_lever_lands_on_the_named_recipe_only(bench):
    chain = bench.recipe_chain("cct-2+priors+ema+drloc@lr=0.002")
    assert [name for name, _ in chain] == ["cct-2+priors+white", "cct-2+priors+ema+drloc"]
    (_, start), (_, stage) = chain
    assert start["patch_whitening"] is True and "lr" not in start and "objective" not in start
    assert stage["lr"] == 0.002 and stage["objective"] == "ema-teacher" and stage["drloc"] == {"images": "both"}


def test_minutes_count_training_seconds_up_to_the_first_evaluation_that_reached(bench, tmp_path):
    lines = [{"epoch": 1, "epoch_seconds": 60.0}, {"epoch": 2, "epoch_seconds": 60.0, "test_acc": 0.42},
             {"epoch": 3, "epoch_seconds": 30.0}, {"epoch": 4, "epoch_seconds": 30.0, "test_acc": 0.47}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    reached = bench.minutes_to_targets([(tmp_path, 4e12, None)], [40, 45, 50])
    assert reached["40"] == {"minutes": 2.0, "epoch": 2, "run": tmp_path.name, "flops": 2e12}
    assert reached["45"] == {"minutes": 3.0, "epoch": 4, "run": tmp_path.name, "flops": 4e12}
    assert reached["50"] is None


def test_early_epochs_at_a_lower_resolution_count_at_their_share_of_the_flops(bench, tmp_path):
    lines = [{"epoch": epoch, "epoch_seconds": 30.0, "test_acc": 0.3 + 0.1 * epoch} for epoch in (1, 2, 3, 4)]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    reached = bench.minutes_to_targets([(tmp_path, 3e12, {"size": 16, "epochs": 2, "flops_ratio": 0.25})], [40, 60])
    assert reached["40"]["flops"] == pytest.approx(3e12 * 0.25 / 2.5)  # epoch 1 of weights .25 .25 1 1
    assert reached["60"]["flops"] == pytest.approx(3e12 * 1.5 / 2.5) and reached["60"]["minutes"] == 1.5


def test_a_chain_of_runs_adds_its_minutes_and_reads_the_first_run_evaluations_too(bench, tmp_path):
    first, second = tmp_path / "start", tmp_path / "stage"
    for folder, accuracies in ((first, (0.41, 0.46)), (second, (0.44, 0.52))):
        folder.mkdir()
        lines = [{"epoch": epoch, "epoch_seconds": 60.0, "test_acc": acc} for epoch, acc in enumerate(accuracies, 1)]
        (folder / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    reached = bench.minutes_to_targets([(first, 2e12, None), (second, 6e12, None)], [40, 45, 50, 60])
    assert reached["45"] == {"minutes": 2.0, "epoch": 2, "run": "start", "flops": 2e12}  # the start run's model
    assert reached["50"] == {"minutes": 4.0, "epoch": 2, "run": "stage", "flops": 8e12}  # both runs' minutes
    assert reached["40"]["run"] == "start" and reached["60"] is None
    assert bench.minutes_to_targets([(first, None, None), (second, 6e12, None)], [50])["50"]["flops"] is None
