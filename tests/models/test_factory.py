import pytest
import torch

from lowdata.errors import UsageError
from lowdata.models import MODELS, count_params, create_model


@pytest.mark.parametrize("name, in_chans, size", [(name, c, s) for name in MODELS.names() for c, s in ((3, 32), (1, 28))])
def test_every_preset_runs_forward_and_backward(name, in_chans, size):
    model = create_model(name, num_classes=7, in_chans=in_chans, img_size=(size, size), drop_path=0.1)
    images = torch.randn(2, in_chans, size, size)
    logits = model(images)
    assert logits.shape == (2, 7)
    logits.sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)
    # the public interface objectives rely on
    features = model.forward_features(images)
    assert model.forward_head(features).shape == (2, 7)


def test_preset_sizes_match_their_descriptions():
    params = {name: count_params(create_model(name, 10, 3, (32, 32))) for name in ("resnet20", "resnet56", "vit-tiny")}
    assert 0.26e6 < params["resnet20"] < 0.28e6  # He et al.: 0.27M
    assert 0.84e6 < params["resnet56"] < 0.87e6  # 0.85M
    assert 2.6e6 < params["vit-tiny"] < 2.8e6


def test_vit_patch_follows_image_size_and_overrides_win():
    assert create_model("vit-tiny", 10, 3, (32, 32)).patch_embed.patch_size == (4, 4)
    assert create_model("vit-tiny", 10, 1, (8, 8)).patch_embed.patch_size == (2, 2)
    model = create_model("vit-tiny", 10, 3, (32, 32), patch_size=8, depth=2)
    assert model.patch_embed.num_patches == 16 and len(model.blocks) == 2
    with pytest.raises(UsageError, match="not divisible by patch_size 5"):
        create_model("vit-tiny", 10, 3, (32, 32), patch_size=5)


def test_cifar_resnet_keeps_resolution_in_the_stem():
    model = create_model("resnet20", 10, 3, (32, 32))
    features = model.forward_features(torch.randn(1, 3, 32, 32))
    assert features.shape == (1, 64, 8, 8)  # 32 -> 32 -> 16 -> 8: no stride in the stem


def test_any_timm_model_with_overrides():
    vit = create_model("vit_tiny_patch16_224", 5, 1, (32, 32), patch_size=4, depth=2)
    assert vit(torch.randn(2, 1, 32, 32)).shape == (2, 5)
    cnn = create_model("resnet10t", 5, 1, (28, 28))  # takes no img_size: dropped quietly
    assert cnn(torch.randn(2, 1, 28, 28)).shape == (2, 5)


def test_unknown_model_and_bad_override():
    with pytest.raises(UsageError, match="did you mean 'vit-tiny'"):
        create_model("vit-tinyy", 10, 3, (32, 32))
    with pytest.raises(UsageError, match="rejected its settings"):
        create_model("vit-tiny", 10, 3, (32, 32), no_such_setting=3)
    with pytest.raises(UsageError, match="'resnet20' rejected its settings"):
        create_model("resnet20", 10, 3, (32, 32), depth=2)


def test_stochastic_depth_defaults_per_model_and_overrides():
    vit = create_model("vit-tiny", 10, 3, (32, 32))
    assert vit.blocks[-1].drop_path1.drop_prob == pytest.approx(0.1)  # DeiT's default, linearly to the last block
    assert create_model("vit-tiny", 10, 3, (32, 32), drop_path=0.0).blocks[-1].drop_path1.__class__.__name__ == "Identity"
    resnet = create_model("resnet20", 10, 3, (32, 32))
    assert resnet.layer3[-1].drop_path is None
    assert create_model("resnet20", 10, 3, (32, 32), drop_path=0.2).layer3[-1].drop_path.drop_prob > 0
