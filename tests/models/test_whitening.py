"""Patch-whitening initialisation of the first convolution (airbench)."""
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from lowdata import train
from lowdata.errors import UsageError
from lowdata.models import create_model
from lowdata.models.whitening import first_conv, patch_whitening_weights, whiten_first_conv


def correlated_images(n=400, size=8, seed=0):
    """Images whose neighbouring pixels and channels are strongly correlated (smooth, colour-tinted)."""
    g = torch.Generator().manual_seed(seed)
    base = F.interpolate(torch.randn(n, 1, size // 2, size // 2, generator=g), size=(size, size), mode="bilinear")
    tint = torch.tensor([1.0, 0.8, 0.5]).view(1, 3, 1, 1)
    return base * tint + 0.1 * torch.randn(n, 3, size, size, generator=g)


def test_the_filters_whiten_the_patches_they_read():
    images = correlated_images()
    weights = patch_whitening_weights(images, (2, 2), filters=24, eps=1e-6)  # 12 directions, both signs
    assert weights.shape == (24, 3, 2, 2)
    assert torch.equal(weights[1::2], -weights[0::2])
    responses = F.conv2d(images, weights[0::2]).permute(0, 2, 3, 1).reshape(-1, 12)
    covariance = torch.cov(responses.T)
    assert torch.allclose(covariance, torch.eye(12), atol=2e-2)  # decorrelated, unit variance


def test_fewer_filters_take_the_strongest_directions_first():
    images = correlated_images()
    few = patch_whitening_weights(images, (3, 3), filters=16)
    all_of_them = patch_whitening_weights(images, (3, 3), filters=54)
    assert torch.equal(few, all_of_them[:16])
    variance = [F.conv2d(images, w[None] * w.norm() ** -2).var().item() for w in few[0::2]]
    assert variance == sorted(variance, reverse=True)  # along each unit direction: its eigenvalue, descending


@pytest.mark.parametrize("name", ["resnet20", "cct-2/3x2", "vit-tiny-convstem", "vit-tiny"])
def test_the_first_convolution_of_each_family_is_the_one_whitened(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=10, in_chans=3, img_size=(16, 16))
    images = correlated_images(n=64, size=16)
    conv = first_conv(model, images[:1])
    untouched = conv.weight.detach().clone()
    note = whiten_first_conv(model, images)
    expected = patch_whitening_weights(images, tuple(conv.kernel_size), conv.out_channels)
    assert torch.allclose(conv.weight[:len(expected)], expected)
    assert torch.equal(conv.weight[len(expected):], untouched[len(expected):])  # the rest stay random
    assert "patch whitening" in note and model.training


def test_a_run_whitens_once_and_refuses_it_with_init(tmp_path):
    settings = dict(data="digits", labels=100, epochs=1, batch_size=32, model="resnet20", threads=1)
    summary = train(out=str(tmp_path / "a"), patch_whitening=True, **settings)
    assert any(line.startswith("patch whitening: 16 of") for line in summary["init_report"])
    with pytest.raises(UsageError, match="patch_whitening initialises a model trained from scratch"):
        train(out=str(tmp_path / "b"), patch_whitening=True, init=str(tmp_path / "a"), **settings)


def test_a_model_without_a_convolution_is_one_line():
    with pytest.raises(UsageError, match="applies none"):
        whiten_first_conv(nn.Sequential(nn.Flatten(), nn.Linear(12, 2)), torch.zeros(4, 3, 2, 2))
