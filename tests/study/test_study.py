import json
import os
import re
import subprocess
import sys
import time
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


def test_study_writes_every_report_file(tmp_path, tiny_study, capsys):
    out = tmp_path / "study"
    fits = run_study(out, **tiny_study)
    said = capsys.readouterr().err.splitlines()  # a line as each cell starts and ends, each kind of note once
    assert sum(line.startswith("lowdata: precision: ") for line in said) == 1
    assert sum(line.startswith("lowdata: data: ") for line in said) == 1 and not any(" epoch " in line for line in said)
    summary = json.loads((out / "cells" / "vit-n60-s1" / "summary.json").read_text())
    assert "study: vit-n60-s1 started" in said
    assert any(line.startswith("study: vit-n60-s1 done in 0 min ") and
               f"(test {summary['test_acc']:.1%}, train {summary['train_acc']:.1%}); " in line for line in said)
    rows = (out / "results.csv").read_text().splitlines()
    assert rows[0].startswith("cell,recipe,family,labels,seed,test_acc") and len(rows) == 13
    assert set(fits["recipes"]) == {"cnn", "vit"} and fits["recipes"]["cnn"]["fit"]["c"] > 0
    assert "vit" in fits["crossovers"] and [m["labels"] for m in fits["multipliers"]["cnn"]] == [30, 60, 120]
    assert json.loads((out / "fits.json").read_text()) == fits
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    markdown = (out / "report.md").read_text()
    assert markdown.index("## Answer") < markdown.index("![learning curves]") < markdown.index("## Test accuracy")
    assert "With 120 labels" in markdown  # a winner, or none at chance
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "<table>" in html
    summary = json.loads((out / "cells" / "vit-n60-s1" / "summary.json").read_text())
    assert summary["labels"] == 60 and summary["seed"] == 1 and summary["epochs"] == 2
    assert summary["steps"] == 4 and 0 <= summary["train_acc"] <= 1  # 2 epochs of 2 batches of 32
    assert "[cells/vit-n60-s1](cells/vit-n60-s1/)" in markdown


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
    outputs = [w.communicate() for w in workers]
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
    ({"settings": {"augment_args": {"mixupp": 0.1}}}, "has no setting mixupp"),
    ({"settings": {"model_args": {"depthh": 2}}}, "rejected its settings"),
])
def test_bad_plans_are_usage_errors(tmp_path, tiny_study, change, message):
    with pytest.raises(UsageError, match=message):
        run_study(tmp_path / "study", **{**tiny_study, **change})
    assert not (tmp_path / "study").exists()


def test_a_bad_recipe_fails_before_anything_runs(tmp_path, tiny_study):
    recipes = tmp_path / "recipes.yaml"
    recipes.write_text("cnn: {family: cnn, settings: {model: resnet20}}\n"
                       "odd: {family: vit, settings: {model: resnet20, dist_token: true}}\n")
    with pytest.raises(UsageError, match="a distillation token needs a ViT preset"):
        run_study(tmp_path / "study", **{**tiny_study, "recipes": ["cnn", "odd"], "recipes_file": str(recipes)})
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


def test_the_combined_cct_recipe_is_taught_by_the_cnn_cell_of_its_size_on_the_whole_pool():
    from lowdata.study.plan import make_plan
    from lowdata.study.recipes import load_recipes

    known = load_recipes()
    plan = make_plan("digits", [64, 128, 640], [known["cnn"], known["cct-2+pool"]], [0], 1438, budget_epochs=2,
                     base={}, available=known)
    cells = {c.id: c for c in plan.cells}
    assert cells["cct-2+pool-n128-s0"].needs == {"teacher": "cells/cnn-n128-s0"}
    assert cells["cct-2+pool-n128-s0"].settings["model"] == "cct-2/3x2"
    assert cells["cct-2+pool-n128-s0"].settings["pool"] == "all"


def test_quick_preset_on_a_reduced_grid(tmp_path):
    out = tmp_path / "quick"
    fits = run_study(out, preset="quick", sizes=[50, 100, 200], seeds=[0], budget_steps=6)
    plan = json.loads((out / "plan.json").read_text())
    assert plan["data"] == "digits" and plan["references"] == {"cnn": "cnn", "vit": "vit-mini"}
    remedies = [name for name, recipe in plan["recipes"].items() if recipe["family"] == "vit" and name != "vit-mini"]
    assert remedies == ["cct-2"]  # the demo shows a cure beside the hunger
    assert set(fits["recipes"]) == {"cnn", "vit-mini", "cct-2"}
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


SHARED_RECIPES = """
vit+distill:
  family: vit
  description: a one-block ViT with a distillation token, taught by the cnn recipe
  teacher: cnn
  settings: {model: vit-tiny, model_args: {depth: 1, embed_dim: 32, num_heads: 2}, dist_token: true}
vit+mae:
  family: vit
  description: the same ViT, MAE-pretrained once
  pretrain: {epochs: 1, batch_size: 256, knn_memory: 100, method_args: {decoder_dim: 16, decoder_depth: 1}}
  settings: {model: vit-tiny, model_args: {depth: 1, embed_dim: 32, num_heads: 2}, layer_decay: 0.75}
"""


def test_shared_stages_run_once_and_feed_every_cell(tmp_path, tiny_recipes):
    recipes = tmp_path / "shared.yaml"
    recipes.write_text(open(tiny_recipes).read() + SHARED_RECIPES)
    out = tmp_path / "study"
    fits = run_study(out, data="digits", sizes=[30, 60, 120], recipes=["vit+distill", "vit+mae"], seeds=[0],
                     budget_epochs=1, settings={"batch_size": 32}, recipes_file=str(recipes))
    assert set(fits["recipes"]) == {"vit+distill", "vit+mae"}  # teachers and pretraining are not curves
    plan = load_plan(out)
    assert sorted(stage.id for stage in plan.stages) == ["cnn-n120-s0", "cnn-n30-s0", "cnn-n60-s0",
                                                         "vit+mae-pretrain"]
    started = Counter(e["cell"] for e in events(out) if e["event"] == "start")
    assert started["vit+mae-pretrain"] == 1 and all(count == 1 for count in started.values()) and len(started) == 10
    for size in (30, 60, 120):
        student = json.loads((out / "cells" / f"vit+distill-n{size}-s0" / "summary.json").read_text())
        teacher = json.loads((out / "stages" / f"cnn-n{size}-s0" / "summary.json").read_text())
        assert student["teacher_test_acc"] == pytest.approx(teacher["test_acc"]) and teacher["labels"] == size
        tuned = json.loads((out / "cells" / f"vit+mae-n{size}-s0" / "summary.json").read_text())
        assert tuned["init"] == str(out / "stages" / "vit+mae-pretrain") and tuned["layer_decay"] == 0.75
    assert json.loads((out / "stages" / "vit+mae-pretrain" / "summary.json").read_text())["images"] == 1438


def test_a_teacher_recipe_in_the_study_is_reused_not_retrained(tmp_path, tiny_recipes):
    from lowdata.study.plan import make_plan
    from lowdata.study.recipes import load_recipes, pick

    recipes = tmp_path / "shared.yaml"
    recipes.write_text(open(tiny_recipes).read() + SHARED_RECIPES)
    known = load_recipes(str(recipes))
    plan = make_plan("digits", [30, 60, 120], pick(known, ["cnn", "vit+distill"]), [0, 1], 1438, budget_epochs=1,
                     available=known)
    assert plan.stages == []
    student = next(c for c in plan.cells if c.id == "vit+distill-n60-s1")
    assert student.needs == {"teacher": "cells/cnn-n60-s1"}


@pytest.mark.parametrize("entry, message", [
    ("x:\n  teacher: nobody\n  settings: {model: vit-tiny}\n", "names teacher 'nobody', which is not a recipe"),
    ("x:\n  settings: {model: vit-tiny, teacher: runs/cnn}\n", "use the recipe's `teacher:`"),
    ("x:\n  pretrain: {epochs: 3}\n  settings: {model: vit-tiny, init: w.pth}\n", "sets init and one of start"),
    ("x:\n  pretrain: {epochz: 3}\n  settings: {model: vit-tiny}\n", "unknown setting 'epochz'"),
])
def test_bad_shared_stage_recipes(tmp_path, entry, message):
    from lowdata.study.recipes import load_recipes

    path = tmp_path / "bad.yaml"
    path.write_text(entry)
    with pytest.raises(UsageError, match=message):
        load_recipes(str(path))


def test_a_transfer_source_is_a_shared_stage_on_other_classes(tmp_path, tiny_recipes):
    recipes = tmp_path / "transfer.yaml"
    recipes.write_text(open(tiny_recipes).read() + """
vit+transfer:
  family: vit
  description: the tiny ViT trained on digits 5-9 first
  source: {classes: "5,6,7,8,9", epochs: 1}
  settings: {model: vit-tiny, model_args: {depth: 1, embed_dim: 32, num_heads: 2}}
""")
    out = tmp_path / "study"
    run_study(out, data="digits", sizes=[20, 40, 80], recipes=["vit", "vit+transfer"], seeds=[0], budget_epochs=1,
              settings={"batch_size": 32, "classes": "0,1,2,3,4"}, recipes_file=str(recipes))
    source = json.loads((out / "stages" / "vit+transfer-source" / "summary.json").read_text())
    assert source["num_classes"] == 5 and source["labels"] == 717  # every training image of digits 5-9
    cell = json.loads((out / "cells" / "vit+transfer-n40-s0" / "summary.json").read_text())
    assert cell["init"] == str(out / "stages" / "vit+transfer-source") and cell["num_classes"] == 5
    loaded, total = re.match(r"loaded (\d+) of (\d+) tensors", cell["init_report"][0]).groups()
    # 5 source classes and 5 target classes, but other ones: everything except the head carries over
    assert int(loaded) == int(total) - 2
    assert any(line.startswith("new head: the source learned other classes") for line in cell["init_report"])


def test_references_come_from_the_recipes_or_the_flag(tmp_path):
    recipes = tmp_path / "mine.yaml"
    recipes.write_text("""
small-cnn: {family: cnn, reference: true, settings: {model: resnet20}}
small-vit: {family: vit, settings: {model: vit-tiny, model_args: {depth: 1, embed_dim: 32, num_heads: 2}}}
wide-vit: {family: vit, settings: {model: vit-tiny, model_args: {depth: 1, embed_dim: 64, num_heads: 2}}}
""")
    out = tmp_path / "study"
    fits = run_study(out, data="digits", sizes=[30, 60, 120], recipes=["small-cnn", "small-vit", "wide-vit"],
                     seeds=[0], budget_epochs=1, settings={"batch_size": 32}, recipes_file=str(recipes),
                     references=["small-vit"])
    assert load_plan(out).references == {"cnn": "small-cnn", "vit": "small-vit"}
    assert set(fits["crossovers"]) == {"small-vit", "wide-vit"}  # each against small-cnn
    assert set(fits["multipliers"]) == {"small-cnn", "wide-vit"}  # each against small-vit
    assert "the plain `small-vit` recipe" in (out / "report.md").read_text()


def test_bad_references_are_usage_errors():
    from lowdata.study.plan import pick_references
    from lowdata.study.recipes import Recipe

    one, two = Recipe("a", "cnn", "", {}, reference=True), Recipe("b", "cnn", "", {}, reference=True)
    with pytest.raises(UsageError, match="several references"):
        pick_references([one, two], [])
    with pytest.raises(UsageError, match="--reference c is not a recipe of this study"):
        pick_references([one], ["c"])
    assert pick_references([one], []) == {"cnn": "a", "vit": "vit"}


def test_lowdata_fit_on_a_study_results_csv_refits_the_same_curves(tmp_path, tiny_study):
    from lowdata.cli import main

    out = tmp_path / "study"
    fits = run_study(out, **tiny_study)
    assert main(["fit", str(out / "results.csv"), "--out", str(tmp_path / "refit")]) == 0
    refit = json.loads((tmp_path / "refit" / "fits.json").read_text())
    assert refit["recipes"] == fits["recipes"]
    assert refit["crossovers"] == fits["crossovers"] and refit["multipliers"] == fits["multipliers"]
    assert (tmp_path / "refit" / "curves.png").is_file() and (tmp_path / "refit" / "report.html").is_file()
    assert "12 results" in (tmp_path / "refit" / "report.md").read_text()


def test_the_combined_recipe_runs_each_stage_once_and_reports_the_pool(tmp_path, tiny_recipes):
    recipes = tmp_path / "combined.yaml"
    recipes.write_text(open(tiny_recipes).read() + """
vit+mae+pool:
  family: vit
  description: MAE-pretrained once, then taught by the cnn recipe on its labels and the pool
  teacher: cnn
  pretrain: {epochs: 1, batch_size: 256, knn_memory: 100, method_args: {decoder_dim: 16, decoder_depth: 1}}
  settings: {model: vit-tiny, model_args: {depth: 1, embed_dim: 32, num_heads: 2}, layer_decay: 0.75,
             distill: soft, pool: 200}
""")
    out = tmp_path / "study"
    run_study(out, data="digits", sizes=[30, 60, 120], recipes=["cnn", "vit+mae+pool"], seeds=[0],
              budget_epochs=1, settings={"batch_size": 32}, recipes_file=str(recipes))
    started = Counter(e["cell"] for e in events(out) if e["event"] == "start")
    assert started["vit+mae+pool-pretrain"] == 1 and set(started.values()) == {1} and len(started) == 7
    for size in (30, 60, 120):
        cell = json.loads((out / "cells" / f"vit+mae+pool-n{size}-s0" / "summary.json").read_text())
        teacher = json.loads((out / "cells" / f"cnn-n{size}-s0" / "summary.json").read_text())
        assert cell["init"] == str(out / "stages" / "vit+mae+pool-pretrain") and cell["pool_images"] == 200
        assert cell["teacher_test_acc"] == pytest.approx(teacher["test_acc"]) and cell["pool_images_read"] > 0
    import csv

    rows = list(csv.DictReader((out / "results.csv").read_text().splitlines()))
    assert [(r["recipe"], r["pool_images"], r["num_classes"]) for r in (rows[0], rows[-1])] == [
        ("cnn", "0", "10"), ("vit+mae+pool", "200", "10")]
    assert "vit+mae+pool read from 200 pool images" in (out / "report.md").read_text()


def test_a_cell_killed_before_its_summary_is_finished_by_the_next_run(tmp_path, tiny_study):
    out = tmp_path / "study"
    run_study(out, **tiny_study)
    before = (out / "results.csv").read_text()
    (out / "cells" / "vit-n60-s1" / "summary.json").unlink()  # killed after the last checkpoint
    run_study(out, **tiny_study)
    assert (out / "results.csv").read_text() == before
    started = Counter(e["cell"] for e in events(out) if e["event"] == "start")
    assert started["vit-n60-s1"] == 2 and started["cnn-n60-s1"] == 1


@pytest.mark.parametrize("damage", ['{"test_acc": 0.5', "", '{"test_acc": 5.0, "epochs": 2}',
                                    '{"test_acc": NaN, "epochs": 2}', '["not", "a", "summary"]'])
def test_a_damaged_cell_summary_is_named_and_the_cell_evaluated_again(tmp_path, tiny_study, damage, capsys):
    out = tmp_path / "study"
    run_study(out, **tiny_study)
    before = (out / "results.csv").read_text()
    summary = out / "cells" / "cnn-n30-s0" / "summary.json"
    summary.write_text(damage)
    with pytest.raises(UsageError, match=f"{summary}"):
        from lowdata.rundir import read_summary

        read_summary(summary.parent)
    # its bytes are no longer those lowdata wrote: never replaced, the study names it and stops
    with pytest.raises(UsageError, match="summary.json that lowdata did not write"):
        run_study(out, **tiny_study)
    assert summary.read_text() == damage
    summary.unlink()  # what the message asks: then the cell is evaluated again, nothing else reruns
    run_study(out, **tiny_study)
    assert (out / "results.csv").read_text() == before
    started = Counter(e["cell"] for e in events(out) if e["event"] == "start")
    assert started["cnn-n30-s0"] == 3 and sum(started.values()) == 14  # the refused attempt started too


def test_report_files_are_written_all_or_nothing(tmp_path, tiny_study, monkeypatch):
    import lowdata.study.report as report

    out = tmp_path / "study"
    run_study(out, **tiny_study)
    monkeypatch.setattr(report, "render_html", lambda *args: 1 / 0)  # fails after the fits and the markdown
    for name in REPORT_FILES:
        (out / name).write_bytes(b"old")
    with pytest.raises(ZeroDivisionError):
        build_report(out)
    assert all((out / name).read_bytes() == b"old" for name in REPORT_FILES)


@pytest.mark.parametrize("content", ["", "{not json", "[1, 2]"])
def test_empty_or_unparsable_claims_are_taken_over_once_no_heartbeat_touches_them(tmp_path, content):
    from lowdata.study.run import claim_is_stale

    claim = tmp_path / "cell.claim"
    claim.write_text(content)
    assert not claim_is_stale(claim, claim_timeout=900)  # fresh: its writer may be writing it now
    old = time.time() - 61  # three missed heartbeats (every 20 s)
    os.utime(claim, (old, old))
    assert claim_is_stale(claim, claim_timeout=900)


def test_a_live_claim_from_another_host_waits_for_the_timeout(tmp_path):
    from lowdata.study.run import claim_is_stale

    claim = tmp_path / "cell.claim"
    claim.write_text(json.dumps({"worker": "w", "host": "elsewhere", "pid": 1}))
    old = time.time() - 61
    os.utime(claim, (old, old))
    assert not claim_is_stale(claim, claim_timeout=900) and claim_is_stale(claim, claim_timeout=60)


def test_jobs_starts_that_many_workers_each_with_its_share_of_the_cores(tmp_path, tiny_study):
    from lowdata.cores import usable_cores

    out = tmp_path / "study"
    assert run_study(out, jobs=2, **tiny_study) is not None
    starts = Counter(e["cell"] for e in events(out) if e["event"] == "start")
    assert len(starts) == 12 and set(starts.values()) == {1}
    assert len({e["worker"] for e in events(out)}) == 2
    threads = {json.loads((out / "cells" / cell / "summary.json").read_text())["threads"] for cell in starts}
    assert threads == {max(1, usable_cores() // 2)}


@pytest.mark.parametrize("jobs, message", [("0", "--jobs must be at least 1, got 0"),
                                           ("-1", "--jobs must be at least 1, got -1"),
                                           ("100", "--jobs 100 is more workers than this host's")])
def test_a_jobs_count_that_cannot_work_is_refused_before_any_cell(tmp_path, capsys, jobs, message):
    from lowdata.cli import main

    out = tmp_path / "study"
    assert main(["study", "--data", "digits", "--sizes", "30,60,120", "--recipes", "cnn", "--budget-epochs", "1",
                 "--jobs", jobs, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and err.count("\n") == 0
    assert not list((out / "cells").glob("*/summary.json")) if (out / "cells").exists() else True


def test_a_dead_worker_is_one_line_and_its_cells_are_done_by_the_others(tmp_path, tiny_study, monkeypatch, capsys):
    import subprocess
    import sys

    from lowdata.errors import Failed

    real = subprocess.Popen
    def dying_worker(command, **kwargs):
        if "--worker" in command:
            command = [sys.executable, "-c", "raise SystemExit(3)"]
        return real(command, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", dying_worker)
    monkeypatch.setattr("lowdata.study.run.check_jobs", lambda jobs: None)
    with pytest.raises(Failed, match="1 of 1 study workers exited with status 3 .* taken over when you rerun"):
        run_study(tmp_path / "study", jobs=2, **tiny_study)
    starts = Counter(e["cell"] for e in events(tmp_path / "study") if e["event"] == "done")
    assert len(starts) == 12  # the parent worked through the grid alone


@pytest.mark.skipif(__import__("lowdata.cores").cores.usable_cores() < 2, reason="--jobs 2 needs two cores")
def test_sigterm_to_a_jobs_parent_reaches_its_workers_and_each_checkpoints(tmp_path, tiny_recipes):
    import signal

    out = tmp_path / "study"
    command = [sys.executable, "-m", "lowdata", "study", "--data", "digits", "--sizes", "200,300,400", "--recipes",
               "cnn", "--seeds", "0", "--budget-epochs", "300", "--recipes-file", tiny_recipes, "--jobs", "2",
               "--out", str(out)]
    parent = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120

    def started():
        return [e for e in events(out) if e["event"] == "start"] if (out / "events.jsonl").exists() else []

    while time.time() < deadline and len(started()) < 2 and parent.poll() is None:
        time.sleep(0.2)
    cells = [out / "cells" / e["cell"] for e in started()]
    while time.time() < deadline and not all((cell / "metrics.jsonl").exists() for cell in cells):
        time.sleep(0.2)  # both workers are inside their training loops
    parent.send_signal(signal.SIGTERM)
    err = parent.stderr.read()
    assert parent.wait(timeout=120) == 143, err
    assert err.count("stopped by SIGTERM; checkpointed at step") == 2, err  # the parent's cell and the child's
    for cell in cells:
        assert (cell / "checkpoint" / "state.json").exists() and not (cell / "summary.json").exists()


def test_a_study_never_starts_in_a_folder_of_other_files(tmp_path, tiny_study):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"jpeg")
    with pytest.raises(UsageError, match="holds holiday.jpg that lowdata did not write"):
        run_study(folder, **tiny_study)
    assert [p.name for p in folder.iterdir()] == ["holiday.jpg"]


DINO_RECIPES = """
cct-2+dino:
  family: vit
  description: CCT-2 pretrained once by DINO, then fine-tuned
  pretrain: {method: dino, epochs: 1, batch_size: 256, knn_memory: 100,
             method_args: {out_dim: 32, hidden_dim: 16, bottleneck_dim: 8, local_crops: 2}}
  settings: {model: cct-2/3x2}
"""


def test_a_dino_stage_runs_once_for_every_budget_and_reports_its_cost_apart(tmp_path, tiny_recipes):
    recipes = tmp_path / "dino.yaml"
    recipes.write_text(open(tiny_recipes).read() + DINO_RECIPES)
    out = tmp_path / "study"
    run_study(out, data="digits", sizes=[30, 60, 120], recipes=["cnn", "cct-2+dino"], seeds=[0], budget_epochs=1,
              settings={"batch_size": 32}, recipes_file=str(recipes))
    plan = load_plan(out)
    assert [(stage.id, stage.kind, stage.settings["method"]) for stage in plan.stages] == [
        ("cct-2+dino-pretrain", "pretrain", "dino")]
    started = Counter(e["cell"] for e in events(out) if e["event"] == "start")
    assert started["cct-2+dino-pretrain"] == 1 and len(started) == 7
    for cell in (c for c in plan.cells if c.recipe == "cct-2+dino"):
        summary = json.loads((out / "cells" / cell.id / "summary.json").read_text())
        assert summary["init"] == str(out / "stages" / "cct-2+dino-pretrain")
    stage = json.loads((out / "stages" / "cct-2+dino-pretrain" / "summary.json").read_text())
    report = (out / "report.md").read_text()
    assert "## Shared runs" in report
    row = next(line for line in report.splitlines() if line.startswith("| [cct-2+dino-pretrain]"))
    assert "pretrain (dino)" in row and "1,438" in row and f"k-NN {stage['knn_acc']:.1%}" in row
    assert f"{stage['train_seconds'] / 60:.1f} min" in row
    from lowdata.study.spend import flops_text

    assert stage["train_flops"] > 0 and f"| {flops_text(stage['train_flops'])} |" in row  # its cost, once


def test_cells_costs_reach_the_csv_and_the_fits_and_an_old_study_without_them_still_reports(tmp_path, tiny_study):
    import csv

    out = tmp_path / "study"
    fits = run_study(out, **tiny_study)
    rows = list(csv.DictReader((out / "results.csv").open()))
    summary = json.loads((out / "cells" / "cnn-n60-s0" / "summary.json").read_text())
    row = next(r for r in rows if r["cell"] == "cnn-n60-s0")
    assert int(row["train_flops"]) == summary["train_flops"] > 0 and row["cpu_capability"]
    seeds = [json.loads((out / "cells" / f"cnn-n60-s{s}" / "summary.json").read_text()) for s in (0, 1)]
    at_60 = next(m for m in fits["recipes"]["cnn"]["measured"] if m["labels"] == 60)
    assert at_60["train_flops"] == pytest.approx(sum(s["train_flops"] for s in seeds) / 2)
    assert build_report(out) == fits  # `lowdata report` rebuilds the same
    assert (out / "cost.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "![test accuracy against training cost](cost.png)" in (out / "report.md").read_text()
    for path in (out / "cells").glob("*/summary.json"):  # a study from before costs were recorded
        old = {k: v for k, v in json.loads(path.read_text()).items() if k not in ("train_flops", "model_flops")}
        path.write_text(json.dumps(old))
    refits = build_report(out)
    assert all(m["train_flops"] is None for m in refits["recipes"]["cnn"]["measured"])
    assert "## Answer" in (out / "report.md").read_text()


def test_the_selection_axis_trains_each_recipe_per_strategy_and_reads_it_on_the_random_curve(tmp_path, tiny_study):
    out = tmp_path / "study"
    fits = run_study(out, **{**tiny_study, "recipes": ["cnn"], "seeds": [0], "selection": ["random", "typiclust"]})
    plan = json.loads((out / "plan.json").read_text())
    assert plan["recipes"]["cnn+typiclust"]["settings"]["selection"] == "typiclust"
    assert plan["recipes"]["cnn+typiclust"]["baseline"] == "cnn" and "baseline" not in plan["recipes"]["cnn"]
    read = fits["against_baseline"]["cnn+typiclust"]
    assert read["baseline"] == "cnn" and [m["labels"] for m in read["multipliers"]] == [30, 60, 120]
    report = (out / "report.md").read_text()
    assert "## What the choice of labelled images is worth" in report and "| cnn+typiclust | cnn |" in report
    with pytest.raises(UsageError, match="--selection: unknown selection strategy 'typiclus'"):
        run_study(tmp_path / "bad", **{**tiny_study, "selection": ["typiclus"]})


def test_the_imagenet_recipes_fine_tune_the_wheels_model_and_let_it_teach_over_the_pool():
    from lowdata.data import load_dataset
    from lowdata.study.check import check_units
    from lowdata.study.plan import make_plan
    from lowdata.study.recipes import load_recipes, pick

    known = load_recipes()
    names = ["cnn-imagenet", "cnn+imagenet-teacher", "vit+imagenet-teacher", "cct-2+imagenet-teacher"]
    plan = make_plan("digits", [100, 200, 400], pick(known, names), [0], 1438, budget_epochs=1, base={},
                     available=known)
    cells = {c.id: c for c in plan.cells}
    reference = cells["cnn-imagenet-n200-s0"].settings
    assert reference["init"] == "efficientnet_lite0" and reference["pretrained"] and reference["image_size"] == 128
    for student in names[1:]:
        taught = cells[f"{student}-n200-s0"]
        assert taught.needs == {"teacher": "cells/cnn-imagenet-n200-s0"}  # the fine-tuned model of the same labels
        assert taught.settings["pool"] == "all" and taught.settings["distill"] == {"mode": "soft",
                                                                                   "teacher_cache": True}
        assert "image_size" not in taught.settings  # the student keeps the data's size; the teacher resizes
    check_units(plan, load_dataset("digits"))  # every unit's settings and model build offline
