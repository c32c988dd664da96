"""Issue 41, defect 1: lowdata replaces, appends to or removes a file only when its content proves lowdata wrote
it (the folder's ledger), never by its name. Each hostile case keeps every byte of the user's file."""
import hashlib
import json
from pathlib import Path

import pytest

import lowdata
from lowdata.cli import main
from lowdata.errors import UsageError
from lowdata.ledger import LEDGER, Ledger


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def one_line_refusal(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("lowdata: error:"), err
    return err


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ledger") / "run"
    lowdata.train(data="digits", labels=60, model="resnet20", epochs=1, batch_size=32,
                  out=str(out))
    return out


# --- the ledger itself ---------------------------------------------------------------------------------------

def test_atomic_writes_are_recorded_and_replace_only_proven_content(tmp_path):
    from lowdata.io import atomic_write_text

    target = tmp_path / "notes.txt"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")  # its own: replaced
    entries = json.loads((tmp_path / LEDGER).read_text())
    assert entries["files"]["notes.txt"] == [hashlib.sha256(b"two").hexdigest()]
    target.write_text("edited by hand")  # the same name, other bytes: no longer lowdata's
    with pytest.raises(UsageError, match="lowdata did not write it"):
        atomic_write_text(target, "three")
    assert target.read_text() == "edited by hand"


def test_a_kill_between_the_two_ledger_steps_leaves_either_content_proven(tmp_path):
    ledger = Ledger(tmp_path)
    (tmp_path / "a.json").write_text("old")
    ledger.settle("a.json", hashlib.sha256(b"old").hexdigest())
    ledger.expect("a.json", hashlib.sha256(b"new").hexdigest())  # killed here: the old content still proves it
    assert ledger.proves("a.json")
    (tmp_path / "a.json").write_text("new")  # killed after the replace: the new content proves it
    assert ledger.proves("a.json")
    (tmp_path / "a.json").write_text("other")
    assert not ledger.proves("a.json")


def test_appends_are_proven_line_by_line_and_a_foreign_file_is_never_appended_to(tmp_path):
    ledger = Ledger(tmp_path)
    ledger.append_text("events.jsonl", '{"a": 1}\n')
    ledger.append_text("events.jsonl", '{"a": 2}\n')
    assert (tmp_path / "events.jsonl").read_text() == '{"a": 1}\n{"a": 2}\n' and ledger.proves("events.jsonl")
    with open(tmp_path / "events.jsonl", "a") as handle:
        handle.write("a line of the user's\n")
    before = sha(tmp_path / "events.jsonl")
    with pytest.raises(UsageError, match="nothing was appended"):
        ledger.append_text("events.jsonl", '{"a": 3}\n')
    assert sha(tmp_path / "events.jsonl") == before


def test_a_file_named_as_the_ledger_that_is_not_one_stops_every_write_there(tmp_path):
    from lowdata.io import atomic_write_text

    (tmp_path / LEDGER).write_text('{"mine": true}')
    with pytest.raises(UsageError, match="is not a ledger lowdata wrote"):
        atomic_write_text(tmp_path / "x.txt", "x")
    assert (tmp_path / LEDGER).read_text() == '{"mine": true}' and not (tmp_path / "x.txt").exists()


# --- every command, every name it writes ---------------------------------------------------------------------

RUN_NAMES = {"config.yaml": "lr: 0.1\n", "summary.json": '{"mine": 1}\n',
             "metrics.jsonl": '{"epoch": 1, "step": 3}\n{"epoch": 2, "step": 6}\n',
             "confusion.json": "{}\n", "trackers.json": "{}\n", "knn_at_init.json": "{}\n",
             "confusion.png": "not a png", "model": "a file named model", "rounds": "x",
             "reconstructions.png": "x"}


@pytest.mark.parametrize("name", sorted(RUN_NAMES))
def test_train_out_never_touches_a_users_file_of_a_name_a_run_writes(tmp_path, capsys, name):
    out = tmp_path / "out"
    out.mkdir()
    (out / name).write_text(RUN_NAMES[name])
    before = sha(out / name)
    assert main(["train", "--data", "digits", "--model", "resnet20", "--epochs", "1", "--out", str(out),
                 "labels=30"]) == 2
    assert name in one_line_refusal(capsys)
    assert sha(out / name) == before and sorted(p.name for p in out.iterdir()) == [name]  # nothing else made


def test_a_user_metrics_file_that_is_not_json_is_one_line_and_leaves_no_half_run(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "metrics.jsonl").write_text("epoch,loss\n1,0.5\n")
    assert main(["train", "--data", "digits", "--epochs", "1", "--out", str(out), "labels=30"]) == 2
    one_line_refusal(capsys)
    assert [p.name for p in out.iterdir()] == ["metrics.jsonl"]


def test_resume_never_rewrites_a_run_file_changed_by_hand(finished_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(finished_run, run)
    (run / "summary.json").unlink()  # an unfinished run, resumed ...
    with open(run / "metrics.jsonl", "a") as handle:  # ... whose log the user added to
        handle.write('{"epoch": 9, "note": "mine"}\n')
    before = sha(run / "metrics.jsonl")
    assert main(["train", "--resume", "--out", str(run)]) == 2
    assert "metrics.jsonl" in one_line_refusal(capsys) and sha(run / "metrics.jsonl") == before


def test_a_run_folders_own_files_are_proven_by_its_ledger(finished_run):
    ledger = Ledger(finished_run)
    assert ledger.unproven() == []
    for name in ("config.yaml", "metrics.jsonl", "summary.json", "checkpoint", "model", "tensorboard"):
        assert (finished_run / name).exists() and ledger.proves(name), name


@pytest.mark.parametrize("name", ["plan.json", "events.jsonl", "results.csv", "fits.json", "report.md",
                                  "report.html", "curves.png", "cost.png", "cells", "stages"])
def test_study_out_never_touches_a_users_file_of_a_name_a_study_writes(tmp_path, capsys, name):
    out = tmp_path / "study"
    out.mkdir()
    (out / name).write_text("recipe,labels,seed,error\ncnn,30,0,0.5\n")
    before = sha(out / name)
    assert main(["study", "--data", "digits", "--sizes", "30,60,120", "--recipes", "cnn", "--budget-epochs", "1",
                 "--out", str(out)]) == 2
    assert name in one_line_refusal(capsys)
    assert sha(out / name) == before and [p.name for p in out.iterdir()] == [name]


@pytest.mark.parametrize("name", ["fits.json", "report.md", "report.html", "curves.png", "cost.png"])
def test_fit_out_never_touches_a_users_file_of_a_name_the_report_writes(tmp_path, capsys, name):
    table = tmp_path / "results.csv"
    table.write_text("recipe,labels,seed,error\n" + "".join(f"{r},{n},{s},{e}\n" for r, e in (("cnn", 0.3), ("vit", 0.5))
                                                            for n in (50, 100, 200) for s in (0, 1)))
    (tmp_path / name).write_text('{"crossovers": []}' if name == "fits.json" else "# Data-hunger study\nmine")
    before = sha(tmp_path / name)
    assert main(["fit", str(table), "--out", str(tmp_path)]) == 2
    assert name in one_line_refusal(capsys) and sha(tmp_path / name) == before
    (tmp_path / name).unlink()
    assert main(["fit", str(table), "--out", str(tmp_path)]) == 0  # its own report, then, replaced again
    assert main(["fit", str(table), "--out", str(tmp_path)]) == 0


def test_predict_out_never_replaces_a_users_csv_that_looks_like_predictions(finished_run, tmp_path, capsys):
    mine = tmp_path / "p.csv"
    mine.write_text("image,class,probability\nmy.png,cat,0.9\n")  # the header lowdata writes, the user's rows
    before = sha(mine)
    images = tmp_path / "imgs"
    images.mkdir()
    from PIL import Image

    Image.new("L", (8, 8)).save(images / "a.png")
    assert main(["predict", "--run", str(finished_run), str(images), "--out", str(mine)]) == 2
    one_line_refusal(capsys)
    assert sha(mine) == before
    ours = tmp_path / "ours.csv"
    assert main(["predict", "--run", str(finished_run), str(images), "--out", str(ours)]) == 0
    assert main(["predict", "--run", str(finished_run), str(images), "--out", str(ours)]) == 0  # its own


def test_export_never_replaces_a_users_own_onnx_file(finished_run, tmp_path, capsys):
    """Made with torch.onnx.export, the user's file starts as a lowdata export does; its bytes decide."""
    pytest.importorskip("onnxruntime")
    import torch

    mine = tmp_path / "model.onnx"
    torch.onnx.export(torch.nn.Linear(3, 2), (torch.randn(1, 3),), str(mine), dynamo=True, verbose=False)
    before = sha(mine)
    assert main(["export", "--run", str(finished_run), "--format", "onnx", "--out", str(mine)]) == 2
    one_line_refusal(capsys)
    assert sha(mine) == before


def test_export_replaces_its_own_export_but_not_one_edited_since(finished_run, tmp_path, capsys):
    target = tmp_path / "m.pt2"
    assert main(["export", "--run", str(finished_run), "--format", "export", "--out", str(target)]) == 0
    assert main(["export", "--run", str(finished_run), "--format", "export", "--out", str(target)]) == 0
    with open(target, "ab") as handle:
        handle.write(b"!")
    before = sha(target)
    capsys.readouterr()
    assert main(["export", "--run", str(finished_run), "--format", "export", "--out", str(target)]) == 2
    one_line_refusal(capsys)
    assert sha(target) == before


def test_a_new_run_refuses_a_hidden_checkpoint_folder_it_did_not_write_before_training(tmp_path, capsys):
    out = tmp_path / "out"
    (out / ".checkpoint.old").mkdir(parents=True)
    (out / ".checkpoint.old" / "mine.txt").write_text("keep me")
    assert main(["train", "--data", "digits", "--epochs", "1", "--out", str(out), "labels=30"]) == 2
    assert ".checkpoint.old" in one_line_refusal(capsys)
    assert (out / ".checkpoint.old" / "mine.txt").read_text() == "keep me" and len(list(out.iterdir())) == 1


def test_a_checkpoint_folder_the_ledger_does_not_prove_is_never_removed(tmp_path):
    import torch

    from lowdata.training.state import TrainingState, save_checkpoint

    run = tmp_path / "run"
    (run / ".checkpoint.old").mkdir(parents=True)
    (run / ".checkpoint.old" / "mine.txt").write_text("keep me")
    model = torch.nn.Linear(2, 2)
    state = TrainingState(epoch=1, step=1, generators={}, extra={})
    with pytest.raises(UsageError, match=".checkpoint.old"):
        save_checkpoint(run, model, torch.optim.SGD(model.parameters(), lr=0.1), None, state, {})
    assert (run / ".checkpoint.old" / "mine.txt").read_text() == "keep me"


def test_a_stale_checkpoint_temp_folder_is_removed_only_when_lowdata_made_it(tmp_path):
    import torch

    from lowdata.training.state import TEMP_PREFIX, TrainingState, save_checkpoint

    run = tmp_path / "run"
    run.mkdir()
    theirs = run / f"{TEMP_PREFIX}mine"
    theirs.mkdir()
    (theirs / "x").write_text("x")
    model = torch.nn.Linear(2, 2)
    state = TrainingState(epoch=1, step=1, generators={}, extra={})
    save_checkpoint(run, model, torch.optim.SGD(model.parameters(), lr=0.1), None, state, {})
    save_checkpoint(run, model, torch.optim.SGD(model.parameters(), lr=0.1), None, state, {})
    assert (theirs / "x").read_text() == "x" and (run / "checkpoint" / "state.json").is_file()
    assert Ledger(run).proves("checkpoint") and not (run / ".checkpoint.old").exists()


def test_the_run_lock_is_never_truncated_when_it_is_not_lowdatas(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / ".lowdata.lock").write_text("my notes, hidden\n")
    assert main(["train", "--data", "digits", "--epochs", "1", "--out", str(out), "labels=30"]) == 2
    assert ".lowdata.lock" in one_line_refusal(capsys)
    assert (out / ".lowdata.lock").read_text() == "my notes, hidden\n"


def test_the_ray_nodes_write_probe_never_touches_an_existing_file(tmp_path):
    import os
    import socket

    from lowdata.study.ray_backend import check_writable

    theirs = tmp_path / f".probe-{socket.gethostname()}-{os.getpid()}"  # the name the probe used to write
    theirs.write_text("mine")
    check_writable(tmp_path)
    assert theirs.read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == [theirs.name]


def test_adopt_records_a_pre_ledger_run_so_it_resumes_and_leaves_out_changed_files(tmp_path, capsys):
    """A run made before lowdata kept ledgers (simulated: its ledgers removed) is refused on --resume until the
    user vouches for it with `lowdata adopt`; a file a ledger lists with other content stays refused."""
    run = tmp_path / "run"
    lowdata.train(data="digits", labels=60, model="resnet20", epochs=2, batch_size=30, out=str(run),
                  stop_after_epoch=1)
    for ledger in run.rglob(LEDGER):
        ledger.unlink()
    capsys.readouterr()
    assert main(["train", "--resume", "--out", str(run)]) == 2
    assert f"`lowdata adopt {run}` records it" in one_line_refusal(capsys)
    assert main(["adopt", str(run)]) == 0
    assert "recorded" in capsys.readouterr().err
    assert Ledger(run).unproven() == [] and Ledger(run).proves("checkpoint") and Ledger(run).proves("tensorboard")
    assert main(["train", "--resume", "--out", str(run)]) == 0
    with open(run / "metrics.jsonl", "a") as handle:
        handle.write("edited\n")
    assert main(["adopt", str(run)]) == 0
    assert "left out 1 file that changed since lowdata wrote them" in capsys.readouterr().err
    assert not Ledger(run).proves("metrics.jsonl")
