"""Frozen networks (teachers, guides): inference mode, ordinary outputs, the probed memory layout, cached."""
import json
from contextlib import nullcontext

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from lowdata.models import create_model
from lowdata.models.frozen import Frozen, Layout, freeze, pick_layout

CPU = torch.device("cpu")
SHAPE = (3, 8, 8)


def cnn() -> nn.Module:
    torch.manual_seed(0)
    return create_model("resnet20", num_classes=10, in_chans=3, img_size=(8, 8))


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_frozen_outputs_equal_the_networks_and_serve_as_loss_targets(layout):
    network, images = cnn().eval(), torch.randn(4, *SHAPE)
    with torch.no_grad():
        expected = network(images)
        expected_maps = network.forward_intermediates(images, intermediates_only=True)
    frozen = Frozen(network, Layout(layout, "test"))
    out = frozen(images)
    assert torch.allclose(out, expected, atol=1e-5) and not out.is_inference()
    maps = frozen.forward_intermediates(images, intermediates_only=True)
    assert all(torch.allclose(a, b, atol=1e-5) and not a.is_inference() for a, b in zip(maps, expected_maps))
    student = torch.zeros(4, 10, requires_grad=True)  # a target from inference mode can be saved for backward
    F.kl_div(F.log_softmax(student, 1), F.log_softmax(out, 1), log_target=True, reduction="batchmean").backward()
    assert student.grad is not None and student.grad.abs().sum() > 0
    conv = next(m for m in frozen.modules() if isinstance(m, nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=Layout(layout, "").memory_format)


def test_a_frozen_network_stays_in_eval_mode_without_gradients():
    frozen = Frozen(cnn(), Layout("contiguous", "test"))
    norm = next(m for m in frozen.modules() if isinstance(m, nn.BatchNorm2d))
    before = norm.running_mean.clone()
    frozen.train()
    frozen(torch.randn(8, *SHAPE) * 5 + 3)
    assert not frozen.training and not norm.training and torch.equal(norm.running_mean, before)
    assert not any(p.requires_grad for p in frozen.parameters())


def test_the_layout_probe_runs_once_per_key_is_cached_and_leaves_the_global_random_stream(tmp_path, monkeypatch):
    cache = tmp_path / "layout-probe.json"
    network = cnn()
    rng = torch.get_rng_state()
    first = pick_layout(network, SHAPE, CPU, nullcontext, cache)
    assert torch.equal(torch.get_rng_state(), rng)  # the probe's random images come from its own generator
    known = json.loads(cache.read_text())
    (key, speedup), = known.items()
    assert key.endswith(f"|ResNet|fp32|{torch.get_num_threads()} threads") and speedup > 0
    assert first.name in ("channels_last", "contiguous")

    def no_probe(*args, **kwargs):
        raise AssertionError("the probe ran again")

    monkeypatch.setattr("lowdata.models.frozen.channels_last_speedup", no_probe)
    cache.write_text(json.dumps({key: 1.5}))
    faster = freeze(cnn(), SHAPE, CPU, nullcontext, cache)
    assert faster.layout.name == "channels_last" and "1.50x" in faster.layout.reason
    cache.write_text(json.dumps({key: 0.9}))
    assert pick_layout(cnn(), SHAPE, CPU, nullcontext, cache).name == "contiguous"
    bf16 = lambda: torch.autocast("cpu", dtype=torch.bfloat16)  # noqa: E731 - another precision, another key
    with pytest.raises(AssertionError, match="ran again"):
        pick_layout(cnn(), SHAPE, CPU, bf16, cache)
    threads = torch.get_num_threads()
    torch.set_num_threads(threads + 1)  # another thread count, another key
    try:
        with pytest.raises(AssertionError, match="ran again"):
            pick_layout(cnn(), SHAPE, CPU, nullcontext, cache)
    finally:
        torch.set_num_threads(threads)


def test_a_network_without_convolutions_keeps_the_default_layout_unprobed(tmp_path):
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 10))
    layout = pick_layout(mlp, SHAPE, CPU, nullcontext, tmp_path / "probe.json")
    assert layout.name == "contiguous" and "no convolutions" in layout.reason
    assert not (tmp_path / "probe.json").exists()
