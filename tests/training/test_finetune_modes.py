import pytest
import torch
from safetensors.torch import load_file

from lowdata import train

COMMON = dict(data="digits", model="resnet20", batch_size=50, labels=100)


@pytest.fixture(scope="module")
def cnn_source(tmp_path_factory):
    out = tmp_path_factory.mktemp("finetune") / "source"
    train(out=str(out), epochs=1, **COMMON)
    return out


def weights(run):
    return load_file(str(run / "checkpoint" / "model.safetensors"))


def test_a_linear_probe_leaves_the_frozen_batch_norm_statistics_alone(tmp_path, cnn_source):
    start = weights(cnn_source)
    train(out=str(tmp_path / "probe"), epochs=2, init=str(cnn_source), linear_probe=True, seed=1, **COMMON)
    probed = weights(tmp_path / "probe")
    statistics = [key for key in start if key.endswith(("running_mean", "running_var"))]
    assert len(statistics) > 20
    assert all(torch.equal(probed[key], start[key]) for key in statistics)
    assert not torch.equal(probed["fc.weight"], start["fc.weight"])


def test_head_first_epochs_hold_the_statistics_then_release_them(tmp_path, cnn_source):
    start = weights(cnn_source)
    run = tmp_path / "head-first"
    settings = dict(epochs=2, init=str(cnn_source), freeze_epochs=1, seed=1, **COMMON)
    assert train(out=str(run), stop_after_epoch=1, **settings) is None
    assert torch.equal(weights(run)["layer1.0.bn1.running_mean"], start["layer1.0.bn1.running_mean"])
    train(out=str(run), resume=True)
    assert not torch.equal(weights(run)["layer1.0.bn1.running_mean"], start["layer1.0.bn1.running_mean"])
