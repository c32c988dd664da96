import json
import os
import subprocess
import sys
from collections import Counter

import pytest

from lowdata import run_study
from lowdata.errors import UsageError
from lowdata.study.plan import load_plan
from lowdata.study.report import build_report
from lowdata.study.run import claim_path

REPORT_FILES = ("results.csv", "fits.json", "curves.png", "report.md", "report.html")


def events(out):
    return [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]


def test_study_writes_every_report_file(tmp_path, tiny_study):
    out = tmp_path / "study"
    fits = run_study(out, **tiny_study)
    rows = (out / "results.csv").read_text().splitlines()
    assert rows[0].startswith("cell,recipe,family,labels,seed,test_acc") and len(rows) == 13
    assert set(fits["recipes"]) == {"cnn", "vit"} and fits["recipes"]["cnn"]["fit"]["c"] > 0
    assert "vit" in fits["crossovers"] and [m["labels"] for m in fits["multipliers"]["cnn"]] == [30, 60, 120]
    assert json.loads((out / "fits.json").read_text()) == fits
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    markdown = (out / "report.md").read_text()
    assert "## Conclusion" in markdown and "With 120 labels, use" in markdown
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "<table>" in html
    summary = json.loads((out / "cells" / "vit-n60-s1" / "summary.json").read_text())
    assert summary["labels"] == 60 and summary["seed"] == 1 and summary["epochs"] == 2


def test_report_rebuilds_byte_identical_from_cells_alone(tmp_path, tiny_study):
    out = tmp_path / "study"
    run_study(out, **tiny_study)
    before = {name: (out / name).read_bytes() for name in REPORT_FILES}
    for name in REPORT_FILES:
        (out / name).unlink()
    build_report(out)
    assert {name: (out / name).read_bytes() for name in REPORT_FILES} == before


def test_interrupted_study_resumes_without_redoing_cells(tmp_path, tiny_study):
    out = tmp_path / "study"
    assert run_study(out, max_cells=5, **tiny_study) is None  # stopped after five cells
    finished = {e["cell"] for e in events(out) if e["event"] == "done"}
    assert len(finished) == 5
    # a sixth cell killed mid-training: half its epochs checkpointed, its claim left by a dead process
    from lowdata import train
    from lowdata.config import TrainConfig, build

    cell = next(c for c in load_plan(out).cells if c.id not in finished)
    train(build(TrainConfig, {**cell.settings, "out": str(out / "cells" / cell.id)}), stop_after_epoch=1)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    claim_path(out, cell).write_text(json.dumps({"worker": "dead", "host": os.uname().nodename,
                                                 "pid": int(dead.stdout)}))
    fits = run_study(out, **tiny_study)
    assert fits is not None
    starts = Counter(e["cell"] for e in events(out) if e["event"] == "start")
    assert all(starts[c] == 1 for c in starts) and len(starts) == 12
    metrics = (out / "cells" / cell.id / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(m)["epoch"] for m in metrics] == [1, 2]  # continued, not restarted


def test_two_workers_run_every_cell_exactly_once(tmp_path, tiny_study):
    out = tmp_path / "study"
    args = [sys.executable, "-m", "lowdata", "study", "--out", str(out), "--worker", "--data", "digits",
            "--sizes", "30,60,120", "--recipes", "cnn,vit", "--seeds", "0,1", "--budget-epochs", "2",
            "--recipes-file", tiny_study["recipes_file"], "batch_size=32"]
    workers = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [w.communicate(timeout=600) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    log = events(out)
    done = Counter(e["cell"] for e in log if e["event"] == "done")
    assert len(done) == 12 and set(done.values()) == {1}
    assert len({e["worker"] for e in log}) == 2  # both took part
    assert (out / "report.md").is_file()


def test_a_different_plan_in_the_same_directory_is_refused(tmp_path, tiny_study):
    out = tmp_path / "study"
    run_study(out, max_cells=1, **tiny_study)
    before = (out / "plan.json").read_bytes()
    with pytest.raises(UsageError, match="different plan .*sizes"):
        run_study(out, **{**tiny_study, "sizes": [30, 60, 90]})
    assert (out / "plan.json").read_bytes() == before
    assert len(list((out / "cells").glob("*/summary.json"))) == 1


@pytest.mark.parametrize("change, message", [
    ({"sizes": [30, 60]}, "at least 3 different sizes"),
    ({"sizes": [30, 60, 5000]}, "larger than the training split"),
    ({"recipes": ["cnn", "vit+magic"]}, "unknown recipe 'vit\\+magic'"),
    ({"settings": {"lrr": 1}}, "unknown setting 'lrr'"),
])
def test_bad_plans_are_usage_errors(tmp_path, tiny_study, change, message):
    with pytest.raises(UsageError, match=message):
        run_study(tmp_path / "study", **{**tiny_study, **change})
    assert not (tmp_path / "study").exists()


def test_recipe_may_not_set_what_the_study_sets(tmp_path):
    from lowdata.study.recipes import load_recipes

    bad = tmp_path / "bad.yaml"
    bad.write_text("mine: {family: vit, settings: {model: vit-tiny, labels: 100}}\n")
    with pytest.raises(UsageError, match="sets \\['labels'\\]"):
        load_recipes(bad)


def test_budget_steps_give_more_epochs_to_smaller_sizes(tmp_path, tiny_study):
    from lowdata.study.plan import make_plan
    from lowdata.study.recipes import load_recipes

    recipes = list(load_recipes().values())
    plan = make_plan("digits", [64, 128, 640], recipes, [0], 1438, budget_steps=100, base={"batch_size": 64})
    epochs = {c.size: c.settings["epochs"] for c in plan.cells if c.recipe == "cnn"}
    assert epochs == {64: 100, 128: 50, 640: 10}


def test_quick_preset_on_a_reduced_grid(tmp_path):
    out = tmp_path / "quick"
    fits = run_study(out, preset="quick", sizes=[50, 100, 200], seeds=[0], budget_steps=6)
    plan = json.loads((out / "plan.json").read_text())
    assert plan["data"] == "digits" and list(plan["recipes"]) == ["cnn", "vit"]
    assert all(name in fits["recipes"] for name in ("cnn", "vit"))
    for name in REPORT_FILES:
        assert (out / name).stat().st_size > 0


def test_every_preset_makes_a_valid_plan():
    from lowdata.study.plan import make_plan
    from lowdata.study.presets import PRESETS
    from lowdata.study.recipes import load_recipes, pick

    train_sizes = {"digits": 1438, "cifar10": 50000}
    for name, preset in PRESETS.items():
        plan = make_plan(preset["data"], preset["sizes"], pick(load_recipes(), preset["recipes"]), preset["seeds"],
                         train_sizes[preset["data"]], budget_steps=preset["budget_steps"], base=preset["settings"])
        assert len(plan.cells) == len(preset["sizes"]) * len(preset["recipes"]) * len(preset["seeds"])
    cifar = make_plan("cifar10", PRESETS["cifar10-cpu"]["sizes"], pick(load_recipes(), ["cnn"]), [0], 50000,
                      budget_steps=3000)
    assert {c.size: c.settings["epochs"] for c in cifar.cells} == {1000: 375, 2500: 150, 5000: 75, 10000: 38}
