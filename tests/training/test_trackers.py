"""Metrics to TensorBoard, MLflow (its local file store) and Weights & Biases (offline): grouped tags at the
global step, one tracker run continued by --resume."""
import json

import pytest

from lowdata import train
from lowdata.errors import UsageError
from lowdata.training.trackers import parse_trackers, tag

QUICK = dict(data="digits", labels=100, epochs=2, batch_size=50, model="resnet20", eval_every=1, threads=1)


def test_tags_are_grouped_as_the_trackers_group_them():
    assert [tag(k) for k in ("train_loss", "test_acc", "val_acc", "knn_acc", "images_per_second", "lr")] == \
        ["train/loss", "test/acc", "val/acc", "knn/acc", "run/images_per_second", "run/lr"]


def test_tensorboard_gets_grouped_tags_at_the_global_step(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(out=str(tmp_path / "run"), **QUICK)
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    assert {"train/loss", "train/acc", "test/acc"} <= set(events.Tags()["scalars"])
    assert [event.step for event in events.Scalars("train/loss")] == [2, 4]  # 2 steps an epoch


def test_mlflow_gets_the_run_and_a_resume_continues_it(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())  # MLflow's local file store,
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # which MLflow 3 keeps behind this switch
    run = tmp_path / "run"
    assert train(out=str(run), stop_after_epoch=1, trackers="mlflow", **QUICK) is None
    first = json.loads((run / "trackers.json").read_text())["mlflow"]
    summary = train(out=str(run), resume=True, **QUICK)
    assert json.loads((run / "trackers.json").read_text())["mlflow"] == first  # the same MLflow run
    client = mlflow.tracking.MlflowClient()
    history = client.get_metric_history(first, "train/loss")
    assert [point.step for point in history] == [2, 4]
    assert client.get_metric_history(first, "test/acc")[-1].value == pytest.approx(summary["test_acc"])
    assert client.get_run(first).data.params["model"] == "resnet20"


def test_wandb_offline_writes_its_run_beside_the_run(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    run = tmp_path / "run"
    summary = train(out=str(run), trackers="wandb", **QUICK)
    offline = list((run / "wandb").glob("offline-run-*"))
    assert len(offline) == 1 and json.loads((run / "trackers.json").read_text())["wandb"] in offline[0].name
    # the run's log (protobuf records, which `wandb sync` uploads) holds the grouped keys, the test accuracy and
    # the config; wandb 0.31 keeps no Python reader for it, so its bytes are read
    records = next(offline[0].glob("run-*.wandb")).read_bytes()
    assert b"train/loss" in records and b"run/epoch" in records and b"resnet20" in records
    assert b"test/acc\x82\x01" in records and repr(summary["test_acc"]).encode() in records


def test_an_unknown_tracker_or_a_missing_client_is_one_line(monkeypatch):
    with pytest.raises(UsageError, match="unknown tracker 'neptune' in trackers; choose from mlflow, wandb"):
        parse_trackers("mlflow,neptune")
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UsageError, match=r"trackers=wandb needs the wandb client: pip install -e '.\[wandb\]'"):
        parse_trackers("wandb")
