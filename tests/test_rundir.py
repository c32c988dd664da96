import json

import pytest
import torch
from safetensors.torch import save_file

from lowdata import rundir
from lowdata.errors import UsageError


def write_checkpoint(folder, config, weights, ema=None):
    folder.mkdir(parents=True)
    (folder / "state.json").write_text(json.dumps({"config": config}))
    save_file(weights, str(folder / "model.safetensors"))
    if ema is not None:
        save_file(ema, str(folder / "model_ema.safetensors"))


def test_a_run_is_read_from_its_files(tmp_path):
    run = tmp_path / "run"
    write_checkpoint(run / rundir.CHECKPOINT, {"model": "resnet20"}, {"w": torch.zeros(2)}, ema={"w": torch.ones(2)})
    assert rundir.checkpoint_dir(run) == run / rundir.CHECKPOINT
    assert rundir.read_config(run) == {"model": "resnet20"}
    assert torch.equal(rundir.read_run_weights(run)["w"], torch.ones(2))  # the EMA is what is evaluated
    assert not rundir.is_finished(run) and rundir.read_summary(run) is None and rundir.run_classes(run) is None
    (run / rundir.SUMMARY).write_text(json.dumps({"classes": ["cat", "dog"], "test_acc": 0.5, "epochs": 1}))
    assert rundir.is_finished(run) and rundir.run_classes(run) == ["cat", "dog"]


def test_the_old_checkpoint_is_used_when_the_new_one_is_missing(tmp_path):
    run = tmp_path / "run"
    write_checkpoint(run / rundir.OLD, {"model": "vit-tiny"}, {"w": torch.full((2,), 3.0)})
    assert rundir.checkpoint_dir(run) == run / rundir.OLD
    assert torch.equal(rundir.read_run_weights(run)["w"], torch.full((2,), 3.0))


def test_a_folder_without_a_run_is_a_usage_error(tmp_path):
    assert rundir.checkpoint_dir(tmp_path) is None
    with pytest.raises(UsageError, match="no checkpoint in"):
        rundir.read_config(tmp_path)
    with pytest.raises(UsageError, match="no checkpoint in"):
        rundir.read_run_weights(tmp_path)


@pytest.mark.parametrize("init, message", [("/nowhere/run", "is neither a lowdata run directory"),
                                           ("empty-run", "no checkpoint in")])
def test_a_bad_init_is_refused_before_the_data_loads(tmp_path, monkeypatch, init, message):
    from lowdata import train
    from lowdata.data import datasets

    (tmp_path / "empty-run").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: pytest.fail("the data was loaded first"))
    monkeypatch.setattr("lowdata.data.load_dataset", lambda *a, **k: pytest.fail("the data was loaded first"))
    with pytest.raises(UsageError, match=message):
        train(data="digits", labels=100, model="resnet20", epochs=1, init=init, out=str(tmp_path / "run"))
