"""Ctrl-C and a scheduler's SIGTERM: a checkpoint at the next step, inside the epoch, that resumes bit for bit."""
import json
import os
import signal
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from lowdata import stopping, train

QUICK = dict(data="digits", labels=200, epochs=3, batch_size=32, eval_every=1)  # 7 steps an epoch


@pytest.mark.parametrize("model, extra", [("resnet20", {}),
                                          ("vit-tiny", {"model_args": {"depth": 2}, "drop_path": 0.2,
                                                        "ema_decay": 0.9, "augment": "strong"})])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_checkpoints_inside_the_epoch_and_the_resume_is_bit_identical(tmp_path, monkeypatch, signal_at_step,
                                                                               model, extra, signum):
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    train(model=model, out=str(straight), **QUICK, **extra)
    signal_at_step(9, signum)  # the second step of the second epoch
    with pytest.raises(stopping.Stopped) as caught:
        train(model=model, out=str(stopped), **QUICK, **extra)
    assert caught.value.exit_status == 128 + signum and "at step 2 of 7 in epoch 2" in caught.value.detail
    saved = json.loads((stopped / "checkpoint" / "state.json").read_text())
    assert (saved["epoch"], saved["step"], saved["extra"]["epoch_step"]) == (1, 9, 2)
    monkeypatch.undo()
    summary = train(out=str(stopped), resume=True)
    a, b = (load_file(str(run / "checkpoint" / "model.safetensors")) for run in (straight, stopped))
    assert all(torch.equal(a[key], b[key]) for key in a)
    expected = json.loads((straight / "summary.json").read_text())
    assert summary["test_acc"] == expected["test_acc"] and summary["train_acc"] == expected["train_acc"]
    assert len((stopped / "metrics.jsonl").read_text().splitlines()) == 3
    assert signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, stopping.handle)  # handlers put back


def test_a_second_signal_stops_at_once(monkeypatch):
    with stopping.graceful():
        os.kill(os.getpid(), signal.SIGTERM)
        assert stopping.requested() == signal.SIGTERM
        with pytest.raises(stopping.Stopped):
            os.kill(os.getpid(), signal.SIGTERM)
    assert stopping.requested() is None


def test_sigterm_on_the_command_line_is_said_exits_143_and_resumes(tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "lowdata", "train", "--data", "digits", "--model", "resnet20", "--epochs",
               "200", "--batch-size", "16", "--out", str(out)]
    child = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    for line in child.stderr:
        if "epoch 1/200" in line:
            child.send_signal(signal.SIGTERM)
            break
    rest = child.stderr.read()
    assert child.wait(timeout=120) == 143, rest
    assert "lowdata: stopped by SIGTERM; checkpointed at step" in rest
    saved = json.loads((out / "checkpoint" / "state.json").read_text())
    assert saved["epoch"] >= 1 and not (out / "summary.json").exists()


def test_a_pooled_run_stopped_inside_an_epoch_resumes_bit_for_bit(tmp_path, monkeypatch, signal_at_step):
    """The pool's stream belongs to the objective; a stop inside the epoch must bring it back too."""
    teacher = tmp_path / "teacher"
    train(model="resnet20", out=str(teacher), data="digits", labels=200, epochs=1, batch_size=32)
    pooled = dict(QUICK, model="resnet20", teacher=str(teacher), pool="all", pool_ratio=0.5)
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    expected = train(out=str(straight), **pooled)
    signal_at_step(10)
    with pytest.raises(stopping.Stopped):
        train(out=str(stopped), **pooled)
    monkeypatch.undo()
    summary = train(out=str(stopped), resume=True)
    a, b = (load_file(str(run / "checkpoint" / "model.safetensors")) for run in (straight, stopped))
    assert all(torch.equal(a[key], b[key]) for key in a)
    assert summary["pool_images_read"] == expected["pool_images_read"] > 0
