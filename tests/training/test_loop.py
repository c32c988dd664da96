import json
import re

import pytest
import torch
from safetensors.torch import load_file

from lowdata import train
from lowdata.errors import UsageError
from lowdata import rundir

QUICK = dict(data="digits", labels=200, epochs=4, batch_size=32, eval_every=2)


def weights(run_dir):
    return load_file(str(run_dir / "checkpoint" / "model.safetensors"))


def test_resnet20_learns_digits(tmp_path):
    summary = train(data="digits", model="resnet20", epochs=15, out=str(tmp_path / "run"))
    assert summary["test_acc"] >= 0.90
    for key in ("test_acc", "labels", "model", "params", "epochs", "train_seconds", "images_per_second"):
        assert key in summary
    assert summary["labels"] == 1438 and summary["params"] == 272_186
    on_disk = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert on_disk["test_acc"] == summary["test_acc"]


def test_run_directory_describes_itself(tmp_path):
    run = tmp_path / "run"
    train(model="resnet20", out=str(run), val_fraction=0.2, **QUICK)
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines] == [1, 2, 3, 4]
    assert "test_acc" in lines[1] and "val_acc" in lines[1] and "test_acc" not in lines[0]  # eval_every=2
    assert lines[1]["lr"] > lines[3]["lr"]  # warm-up over a fifth of this short run, then the cosine decays
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert "model: resnet20" in (run / "config.yaml").read_text()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["labels"] == 160 and summary["val_labels"] == 40
    assert set(weights(run)) == set(torch_model_keys("resnet20"))


def test_the_run_records_its_precision_and_why(tmp_path):
    auto = train(model="resnet20", out=str(tmp_path / "auto"), **QUICK)
    assert auto["precision"] in ("bf16", "fp32") and "bf16" in auto["precision_reason"]
    assert "precision: auto" in (tmp_path / "auto" / "config.yaml").read_text()  # a resume elsewhere re-picks
    assert 0 < auto["eval_seconds"] < auto["wall_seconds_this_session"]
    assert 0 < auto["checkpoint_seconds"] < auto["wall_seconds_this_session"]
    fp16 = train(model="resnet20", out=str(tmp_path / "fp16"), precision="fp16", **QUICK)
    assert (fp16["precision"], fp16["precision_reason"]) == ("fp16", "asked for")
    saved = json.loads((tmp_path / "fp16" / "checkpoint" / "state.json").read_text())
    assert saved["extra"]["grad_scaler"]["scale"] > 0  # fp16 trains with loss scaling, kept for --resume
    assert 0 < fp16["test_acc"] <= 1


def torch_model_keys(name):
    from lowdata.models import create_model

    return create_model(name, 10, 1, (8, 8)).state_dict().keys()


@pytest.mark.parametrize("model, extra", [("resnet20", {}), ("resnet20", {"precision": "fp16"}),
                                          ("vit-tiny", {"model_args": {"depth": 2}, "drop_path": 0.2,
                                                        "ema_decay": 0.9})])
def test_resume_gives_the_same_weights(tmp_path, model, extra):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train(model=model, out=str(straight), **QUICK, **extra)
    assert train(model=model, out=str(resumed), stop_after_epoch=2, **QUICK, **extra) is None
    assert json.loads((resumed / "checkpoint" / "state.json").read_text())["epoch"] == 2
    summary = train(out=str(resumed), resume=True)
    a, b = weights(straight), weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert summary["test_acc"] == json.loads((straight / "summary.json").read_text())["test_acc"]
    assert len((resumed / "metrics.jsonl").read_text().splitlines()) == 4


def test_existing_run_is_never_overwritten(tmp_path):
    run = tmp_path / "run"
    train(model="resnet20", out=str(run), **{**QUICK, "epochs": 1})
    before = weights(run)
    with pytest.raises(UsageError, match="already holds a training run"):
        train(model="resnet20", out=str(run), **{**QUICK, "epochs": 1})
    with pytest.raises(UsageError, match="differ: lr="):
        train(out=str(run), resume=True, lr=0.5)
    assert all(torch.equal(before[k], v) for k, v in weights(run).items())


def test_failed_checkpoint_write_keeps_the_previous_one(tmp_path, monkeypatch):
    run = tmp_path / "run"
    train(model="resnet20", out=str(run), stop_after_epoch=1, **QUICK)
    before = weights(run)

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    import safetensors.torch

    monkeypatch.setattr(safetensors.torch, "save_file", disk_full)
    with pytest.raises(UsageError, match="disk full while writing a checkpoint in .*; the previous checkpoint is kept"):
        train(out=str(run), resume=True)
    assert json.loads((run / "checkpoint" / "state.json").read_text())["epoch"] == 1
    assert all(torch.equal(before[k], v) for k, v in weights(run).items())
    assert not list(run.glob(".checkpoint.tmp-*"))


def test_half_swapped_checkpoint_is_still_found(tmp_path):
    run = tmp_path / "run"
    train(model="resnet20", out=str(run), stop_after_epoch=1, **QUICK)
    (run / "checkpoint").rename(run / rundir.OLD)  # died between the two renames
    assert rundir.checkpoint_dir(run) == run / rundir.OLD
    summary = train(out=str(run), resume=True)
    assert summary["epochs"] == 4 and (run / "checkpoint").is_dir()


def test_ema_weights_are_what_the_run_reports_and_eval_uses(tmp_path):
    from lowdata import evaluate_run

    run = tmp_path / "run"
    summary = train(model="resnet20", out=str(run), ema_decay=0.5, **QUICK)
    raw = weights(run)
    ema = load_file(str(run / "checkpoint" / "model_ema.safetensors"))
    assert set(raw) == set(ema) and any(not torch.equal(raw[k], ema[k]) for k in raw)
    assert evaluate_run(run)["test_acc"] == pytest.approx(summary["test_acc"])


def test_strong_augmentation_with_repeats_trains_on_soft_targets(tmp_path):
    run = tmp_path / "run"
    summary = train(model="resnet20", out=str(run), augment="strong", repeated_aug=3,
                    augment_args={"magnitude": 7}, **{**QUICK, "epochs": 15})
    assert summary["augment"].startswith("strong:") and "MixupCutmix" in summary["augment"]
    assert summary["repeated_aug"] == 3 and any("no horizontal flip" in n for n in summary["augment_notes"])
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert all(0 < line["train_loss"] < 5 for line in lines) and lines[-1]["train_loss"] < lines[0]["train_loss"]
    assert summary["test_acc"] > 0.45  # chance is 0.1; mixed, heavily augmented 8-px digits learn slowly
    assert "augment_args:\n  magnitude: 7" in (run / "config.yaml").read_text()


def test_checkpoints_are_written_by_the_clock_at_a_stop_and_at_the_end(tmp_path, monkeypatch):
    from lowdata.training import loop

    written = []
    real = loop.save_checkpoint
    monkeypatch.setattr(loop, "save_checkpoint", lambda *a: written.append(a[4].epoch) or real(*a))
    train(model="resnet20", out=str(tmp_path / "a"), checkpoint_minutes=10, **QUICK)
    assert written == [4]
    written.clear()
    train(model="resnet20", out=str(tmp_path / "b"), checkpoint_minutes=0, **QUICK)
    assert written == [1, 2, 3, 4]
    written.clear()
    train(model="resnet20", out=str(tmp_path / "c"), checkpoint_minutes=10, stop_after_epoch=3, **QUICK)
    assert written == [3]


def test_without_eval_every_a_run_is_evaluated_after_its_last_epoch(tmp_path):
    run = tmp_path / "run"
    train(model="resnet20", out=str(run), **{**QUICK, "epochs": 5, "eval_every": None})
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines if "test_acc" in line] == [5]
    assert len(lines) == 5 and all("train_loss" in line for line in lines)


@pytest.mark.slow
def test_a_compiled_model_trains_to_the_same_kind_of_result(tmp_path, monkeypatch):
    from lowdata.io import cache_root

    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "")
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR")  # lowdata's own shared cache, restored as absent afterwards
    settings = dict(model="vit-tiny", model_args={"depth": 1}, **QUICK)
    eager = train(out=str(tmp_path / "eager"), **settings)
    compiled = train(out=str(tmp_path / "compiled"), compile=True, **settings)
    assert set(weights(tmp_path / "compiled")) == set(weights(tmp_path / "eager"))  # the plain model is saved
    assert abs(compiled["test_acc"] - eager["test_acc"]) < 0.1
    assert compiled["compile"] is True and eager["compile"] is False
    assert any((cache_root() / "inductor").rglob("*"))  # compiled code a study's next cell reads
    rates = json.loads((cache_root() / "compile-rates.json").read_text())
    entry = next(v for k, v in rates.items() if "|vit-tiny|supervised|" in k)
    assert entry["eager"] > 0 and entry["compiled"] > 0 and entry["compile_seconds"] >= 0


def test_a_run_killed_between_its_last_checkpoint_and_its_summary_resumes_to_the_same_summary(tmp_path):
    run = tmp_path / "run"
    summary = train(model="resnet20", out=str(run), **QUICK)
    (run / "summary.json").unlink()  # as if killed after the last checkpoint, before the summary
    again = train(out=str(run), resume=True)
    assert again["test_acc"] == summary["test_acc"] and again["test_loss"] == pytest.approx(summary["test_loss"])
    assert again["epochs"] == summary["epochs"] and json.loads((run / "summary.json").read_text()) == again
    assert len((run / "metrics.jsonl").read_text().splitlines()) == QUICK["epochs"]  # nothing trained again


def test_resume_on_a_finished_run_says_so_and_exits_0(tmp_path, capsys):
    from lowdata.cli import main

    run = tmp_path / "run"
    summary = train(model="resnet20", out=str(run), **{**QUICK, "epochs": 1})
    before = (run / "summary.json").read_bytes()
    assert train(out=str(run), resume=True) == summary
    assert main(["train", "--out", str(run), "--resume"]) == 0
    assert "is finished (its summary.json is written); nothing to resume" in capsys.readouterr().err
    assert (run / "summary.json").read_bytes() == before


def test_resume_on_changed_data_is_refused(tmp_path, image_folder_writer):
    root = image_folder_writer(tmp_path / "images", per_class=12, split=False)
    run = tmp_path / "run"
    settings = dict(data=str(root), epochs=3, batch_size=8, out=str(run))
    assert train(stop_after_epoch=1, **settings) is None
    image_folder_writer(tmp_path / "more", per_class=4, split=False, seed=1)
    for image in (tmp_path / "more" / "cat").iterdir():
        image.rename(root / "cat" / f"new-{image.name}")  # images added between the crash and the resume
    with pytest.raises(UsageError, match="the training data differ from those .* was trained on so far"):
        train(out=str(run), resume=True)
    for image in (root / "cat").glob("new-*"):
        image.unlink()  # the data restored: the run continues
    assert train(out=str(run), resume=True)["epochs"] == 3


def test_stale_checkpoint_temps_are_removed_at_the_next_resume(tmp_path):
    run = tmp_path / "run"
    train(model="resnet20", out=str(run), stop_after_epoch=1, **QUICK)
    from lowdata.ledger import Ledger

    (run / ".checkpoint.tmp-killed").mkdir()  # a kill during a checkpoint write: the ledger lists the temp folder
    Ledger(run).add_folder(".checkpoint.tmp-killed")
    (run / ".checkpoint.tmp-killed" / "model.safetensors").write_bytes(b"half")
    assert train(out=str(run), resume=True)["epochs"] == 4
    assert not list(run.glob(".checkpoint.tmp-*"))


@pytest.mark.parametrize("file, content, message", [
    ("model.safetensors", b"", "model.safetensors changed since lowdata wrote it"),
    ("model.safetensors", b"\x80\x04random bytes, not safetensors", "model.safetensors changed since lowdata wrote it"),
    ("state.safetensors", b"\x00" * 3, "state.safetensors changed since lowdata wrote it"),
    ("state.json", b"{truncated", "cannot read checkpoint state"),
    ("state.json", b'{"epoch": 1}', "holds no run settings|does not fit this run"),
])
def test_a_damaged_checkpoint_is_a_one_line_error_naming_the_file(tmp_path, file, content, message):
    run = tmp_path / "run"
    train(model="resnet20", out=str(run), stop_after_epoch=1, **QUICK)
    (run / "checkpoint" / file).write_bytes(content)
    with pytest.raises(UsageError, match=f"({message}).*(start a new run|damaged)"):
        train(out=str(run), resume=True)


def test_every_epoch_leaves_a_line_when_not_on_a_terminal(tmp_path, capsys):
    train(model="resnet20", out=str(tmp_path / "run"), **QUICK)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("lowdata: epoch ")]
    assert [line.split(":")[1].strip().split()[1] for line in lines] == ["1/4", "2/4", "3/4", "4/4"]
    assert "test_acc" in lines[1] and "test_acc" not in lines[0] and "img/s" in lines[-1]  # eval_every=2
    assert re.search(r"\d+ img/s, \d+\.\d min$", lines[-1])  # speed and minutes per epoch


def test_a_second_process_training_into_the_same_folder_is_refused(tmp_path):
    from lowdata.runs.skeleton import run_lock

    run = tmp_path / "run"
    with run_lock(run, is_main=True):  # another `lowdata train --out run` holds it
        with pytest.raises(UsageError, match=f"{run} is in use by another lowdata process \\(pid \\d+\\)"):
            train(model="resnet20", out=str(run), **QUICK)
    assert not (run / "checkpoint").exists()
    train(model="resnet20", out=str(run), stop_after_epoch=1, **QUICK)  # free again (and after a kill: flock)


def test_a_hand_edit_of_config_yaml_before_resume_is_refused_by_name(tmp_path):
    run = tmp_path / "run"
    train(model="resnet20", out=str(run), stop_after_epoch=1, **QUICK)
    import yaml

    as_written = (run / "config.yaml").read_bytes()
    original = yaml.safe_load(as_written)
    (run / "config.yaml").write_text(yaml.safe_dump({**original, "lr": 0.5, "threads": 1}))
    with pytest.raises(UsageError, match=rf"config.yaml was edited since the run's checkpoint \(lr: {original['lr']} -> 0.5\)"):
        train(out=str(run), resume=True)
    (run / "config.yaml").write_text("model: [")
    with pytest.raises(UsageError, match="no longer reads as the run's settings"):
        train(out=str(run), resume=True)
    (run / "config.yaml").write_text(yaml.safe_dump({**original, "threads": 1}))  # the same settings ...
    with pytest.raises(UsageError, match="config.yaml that lowdata did not write"):  # ... in bytes of the user's
        train(out=str(run), resume=True)
    (run / "config.yaml").write_bytes(as_written)  # undone: lowdata's file again
    assert train(out=str(run), resume=True, threads=1)["epochs"] == 4  # placement may differ


def test_a_new_run_never_writes_into_a_folder_of_other_files(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "config.yaml").write_text("mine: true\n")
    (photos / "holiday.jpg").write_bytes(b"jpeg")
    with pytest.raises(UsageError, match="holds config.yaml, holiday.jpg that lowdata did not write"):
        train(model="resnet20", out=str(photos), **QUICK)
    assert sorted(p.name for p in photos.iterdir()) == ["config.yaml", "holiday.jpg"]
    assert (photos / "config.yaml").read_text() == "mine: true\n"


def test_the_summary_names_the_code_the_run_started_with(tmp_path, monkeypatch):
    """A commit made while a run trains is not the code it ran: the commit is read as the run starts."""
    from lowdata import train
    from lowdata.runs import skeleton

    answers = iter(["abc123+changes", "def456"])
    monkeypatch.setattr(skeleton, "git_commit", lambda: next(answers))
    summary = train(data="digits", labels=50, epochs=1, out=str(tmp_path / "run"))
    assert summary["git_commit"] == "abc123+changes"


def test_each_epoch_line_says_the_whole_runs_time_left():
    from lowdata.training.records import epoch_line

    metrics = {"epoch": 2, "train_loss": 1.5, "train_acc": 0.5, "images_per_second": 100.0, "epoch_seconds": 61.0}
    line = epoch_line(metrics, 10, trained_seconds=120.0)  # 60 s an epoch so far, 8 epochs to go
    assert line == ("lowdata: epoch 2/10: train_loss 1.5, train_acc 0.5, 100 img/s, 1.0 min, about 8.0 min left")
    assert "left" not in epoch_line({**metrics, "epoch": 10}, 10, trained_seconds=600.0)
