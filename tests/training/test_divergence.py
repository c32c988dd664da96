"""Issue 41, defect 3: a diverged run is a failed run — it stops at once, keeps its last good checkpoint,
writes no model and no summary, exits 1 in one line; eval, predict and export refuse non-finite weights."""
import json
import re

import pytest
import torch

import lowdata
from lowdata.cli import main
from lowdata.errors import UsageError
from lowdata.training.divergence import SCALER_PATIENCE, DivergenceGuard, Diverged


def test_lr_1e308_stops_at_once_with_one_line_and_writes_no_model(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--data", "digits", "--model", "resnet20", "--epochs", "3", "--out", str(out),
                 "labels=100", "lr=1e308"]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("lowdata: error: training diverged:") and "lower lr" in err
    assert re.search(r"at step [1-4] \(epoch 1\)", err)  # at once: in the first epoch's 4 steps (batch 25)
    assert not (out / "summary.json").exists() and not (out / "model").exists()
    assert not (out / "checkpoint").exists()  # nothing good to keep: it diverged in its first epoch


def test_the_last_good_checkpoint_is_kept_and_no_nan_weights_are_checkpointed(tmp_path):
    """One good epoch, then the weights are poisoned: the run fails, its epoch-1 checkpoint stays whole."""
    out = tmp_path / "run"
    lowdata.train(data="digits", labels=100, model="resnet20", epochs=2, batch_size=50, out=str(out),
                  checkpoint_minutes=0, stop_after_epoch=1)
    saved = (out / "checkpoint" / "model.safetensors").read_bytes()
    from lowdata.training import loop

    real_step = loop.optimizer_step

    def poisoned(objective, model, *args, **kwargs):
        result = real_step(objective, model, *args, **kwargs)
        with torch.no_grad():
            next(model.parameters()).fill_(float("nan"))
        return result

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(loop, "optimizer_step", poisoned)
        with pytest.raises(Diverged, match=r"last good checkpoint is kept in .*checkpoint"):
            lowdata.train(out=str(out), resume=True)
    assert (out / "checkpoint" / "model.safetensors").read_bytes() == saved
    assert json.loads((out / "checkpoint" / "state.json").read_text())["epoch"] == 1
    assert not (out / "summary.json").exists() and not (out / "model").exists()


def test_the_guard_waits_out_a_grad_scalers_skipped_steps_but_not_forever(tmp_path):
    nan = torch.tensor(float("nan"))
    with pytest.raises(Diverged, match="the loss is nan at step 1"):
        DivergenceGuard(tmp_path, scaler_enabled=False, lr=0.1).after_step(nan, 1, 0)
    scaled = DivergenceGuard(tmp_path, scaler_enabled=True, lr=0.1)
    for step in range(SCALER_PATIENCE):
        scaled.after_step(nan, step + 1, 0)  # skipped steps, as the scaler skips them
    scaled.after_step(torch.tensor(1.0), SCALER_PATIENCE + 1, 0)  # recovered: the count starts again
    for step in range(SCALER_PATIENCE):
        scaled.after_step(nan, step + 1, 0)
    with pytest.raises(Diverged):
        scaled.after_step(torch.tensor(float("inf")), 99, 0)


def test_eval_predict_and_export_refuse_non_finite_weights(tmp_path, capsys):
    from safetensors.torch import load_file, save_file

    out = tmp_path / "run"
    lowdata.train(data="digits", labels=60, model="resnet20", epochs=1, batch_size=30, out=str(out))
    weights = out / "checkpoint" / "model.safetensors"
    state = load_file(str(weights))
    first = next(key for key, value in state.items() if value.is_floating_point())
    state[first] = torch.full_like(state[first], float("nan"))
    save_file(state, str(weights))
    image = tmp_path / "a.png"
    from PIL import Image

    Image.new("L", (8, 8)).save(image)
    capsys.readouterr()
    for command in (["eval", "--run", str(out)], ["predict", "--run", str(out), str(image)],
                    ["export", "--run", str(out), "--out", str(tmp_path / "exported")]):
        assert main(command) == 2, command
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "NaN or infinite" in err and first[:40] in err, err
    assert not (tmp_path / "exported").exists()


def test_an_export_that_does_not_reproduce_the_model_writes_nothing(tmp_path):
    from lowdata.runs.export import write_checked

    class Drifting(torch.nn.Module):  # a model whose reloaded copy would differ: the check fails before the swap
        def forward(self, x):
            return x.flatten(1) + torch.rand(1)

    target = tmp_path / "m.pt"
    info = type("Info", (), {"channels": 1, "image_size": (2, 2), "classes": ("a", "b"), "mean": (0.0,),
                             "std": (1.0,)})()
    with pytest.raises(RuntimeError, match="nothing was written"):
        write_checked("torchscript", Drifting(), info, target)
    assert not target.exists()
    with pytest.raises(UsageError, match="non-finite logits"):
        write_checked("torchscript", torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2, bias=False)).
                      requires_grad_(False).apply(lambda m: m.weight.fill_(float("inf")) if hasattr(m, "weight")
                                                   else None), info, target)
    assert not target.exists()
