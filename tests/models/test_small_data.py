import pytest
import torch
from timm.layers import PatchEmbed

from lowdata import evaluate_run, train
from lowdata.errors import UsageError
from lowdata.models import create_model
from lowdata.models.loading import load_trained_model
from lowdata.models.small_data import ConvTokenizer, LocalitySelfAttention, SeqPool, ShiftedPatchTokenizer

PRESETS = ["vit-tiny-convstem", "vit-tiny-sl", "cct-2/3x2", "cct-7/3x1"]


@pytest.mark.parametrize("name", PRESETS)
@pytest.mark.parametrize("channels, size", [(3, 32), (1, 28)])
def test_every_preset_trains_every_parameter(name, channels, size):
    torch.manual_seed(0)
    model = create_model(name, num_classes=10, in_chans=channels, img_size=(size, size))
    logits = model(torch.randn(2, channels, size, size))
    assert logits.shape == (2, 10)
    logits.logsumexp(1).sum().backward()
    assert [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0] == []


def test_cct_sizes_match_the_paper():
    # Hassani et al., Table 1: CCT-2/3x2 0.28M and CCT-7/3x1 3.76M parameters on CIFAR-10
    for name, millions in (("cct-2/3x2", 0.28), ("cct-7/3x1", 3.76)):
        model = create_model(name, num_classes=10, in_chans=3, img_size=(32, 32))
        assert sum(p.numel() for p in model.parameters()) / 1e6 == pytest.approx(millions, abs=0.01)
        assert model.cls_token is None and isinstance(model.attn_pool, SeqPool)


@pytest.mark.parametrize("fused", [False, True])
def test_lsa_masks_the_diagonal_with_a_learned_temperature(fused):
    torch.manual_seed(0)
    attention = LocalitySelfAttention(4, num_heads=1, qkv_bias=False).eval()
    attention.fused_attn = fused
    with torch.no_grad():
        attention.proj.weight.copy_(torch.eye(4))
        attention.proj.bias.zero_()
        attention.temperature.fill_(0.7)
    x = torch.randn(1, 3, 4)
    q, k, v = attention.qkv(x).reshape(1, 3, 3, 4).unbind(2)
    scores = 0.7 * q[0] @ k[0].T  # closed form: temperature times q.k, the diagonal left out
    scores.fill_diagonal_(float("-inf"))
    expected = scores.softmax(-1) @ v[0]
    torch.testing.assert_close(attention(x)[0], expected, rtol=1e-5, atol=1e-6)
    # with two tokens each may only attend to the other: its output is the other's value, whatever the scores
    pair = torch.randn(1, 2, 4)
    v_pair = attention.qkv(pair).reshape(1, 2, 3, 4)[0, :, 2]
    torch.testing.assert_close(attention(pair)[0], v_pair.flip(0), rtol=1e-5, atol=1e-6)


def test_lsa_starts_at_timm_scale_and_its_temperature_learns():
    attention = LocalitySelfAttention(64, num_heads=2)
    assert torch.allclose(attention.temperature, torch.full((2,), 32 ** -0.5))
    attention(torch.randn(2, 5, 64)).square().sum().backward()
    assert attention.temperature.grad.abs().min() > 0


def test_spt_keeps_the_plain_patch_grid_and_shifts_by_half_a_patch():
    plain = PatchEmbed(img_size=32, patch_size=4, in_chans=3, embed_dim=192)
    shifted = ShiftedPatchTokenizer(img_size=(32, 32), patch_size=4, in_chans=3, embed_dim=192)
    x = torch.randn(2, 3, 32, 32)
    assert shifted(x).shape == plain(x).shape == (2, 64, 192)
    assert shifted.grid_size == tuple(plain.grid_size) and shifted.num_patches == plain.num_patches
    image = torch.arange(36.0).reshape(1, 1, 6, 6)
    views = ShiftedPatchTokenizer(img_size=(6, 6), patch_size=2, in_chans=1, embed_dim=8).shifted(image)
    assert views.shape == (1, 5, 6, 6) and torch.equal(views[0, 0], image[0, 0])
    assert torch.equal(views[0, 1, :5, :5], image[0, 0, 1:, 1:]) and views[0, 1, 5].abs().sum() == 0  # left-up
    assert torch.equal(views[0, 4, 1:, 1:], image[0, 0, :5, :5]) and views[0, 4, 0].abs().sum() == 0  # right-down


def test_conv_tokenizer_grid_and_sequence_pooling():
    tokenizer = ConvTokenizer(img_size=(32, 32), in_chans=3, embed_dim=16, layers=2)
    tokens = tokenizer(torch.randn(2, 3, 32, 32))
    assert tokens.shape == (2, 64, 16) and tokenizer.grid_size == (8, 8) and tokenizer.feat_ratio() == 4
    pool = SeqPool(16)
    same = torch.randn(1, 1, 16).expand(2, 7, 16)
    torch.testing.assert_close(pool(same), same[:, 0])  # weights sum to one
    with torch.no_grad():
        pool.attention.weight.zero_()
        pool.attention.bias.zero_()
    torch.testing.assert_close(pool(tokens), tokens.mean(1))  # equal scores: the plain average


@pytest.mark.parametrize("args, message", [
    (dict(tokenizer="pixels"), "model_args.tokenizer='pixels' is unknown; choose from patch, spt"),
    (dict(pool="max"), "model_args.pool='max' is unknown"),
    (dict(tokenizer="convstem", patch_size=3), "image size 32x32 is not divisible by patch_size 3"),
    (dict(tokenizer="convstem", patch_size=1), "power of 2"),
    (dict(tokenizer="conv", tokenizer_layers=0), "tokenizer_layers must be at least 1"),
])
def test_bad_small_data_settings_are_usage_errors(args, message):
    with pytest.raises(UsageError, match=message):
        create_model("vit-tiny", num_classes=10, in_chans=3, img_size=(32, 32), **args)


def test_combinations_that_cannot_work_say_what_does():
    with pytest.raises(UsageError, match="distil this model without --dist-token"):
        create_model("cct-2/3x2", num_classes=10, in_chans=3, img_size=(32, 32), distilled=True)
    from lowdata.objectives.mae import MaskedAutoencoder

    for name in ("cct-2/3x2", "vit-tiny-convstem", "vit-tiny-sl"):
        encoder = create_model(name, num_classes=10, in_chans=3, img_size=(32, 32), depth=1)
        with pytest.raises(UsageError, match="use a patch-embedding ViT"):
            MaskedAutoencoder(encoder, in_chans=3)
    lsa = create_model("vit-tiny", num_classes=10, in_chans=3, img_size=(32, 32), depth=1, attention="lsa")
    assert MaskedAutoencoder(lsa, in_chans=3).grid == (8, 8)  # locality attention alone masks like any ViT


def test_a_cct_run_rebuilds_from_its_directory(tmp_path):
    out = tmp_path / "runs" / "cct"
    summary = train(data="digits", model="cct-2/3x2", labels=200, epochs=2, batch_size=64, out=str(out),
                    model_args={"embed_dim": 32})
    model, name = load_trained_model(out, num_classes=10, in_chans=1, img_size=(8, 8))
    assert name == "cct-2/3x2" and model.embed_dim == 32 and isinstance(model.attn_pool, SeqPool)
    assert evaluate_run(out)["test_acc"] == pytest.approx(summary["test_acc"], abs=1e-9)
    # its own run initialises a new one, and it teaches a plain ViT (distillation on the logits)
    tuned = train(data="digits", model="cct-2/3x2", labels=100, epochs=1, batch_size=64, out=str(tmp_path / "tuned"),
                  model_args={"embed_dim": 32}, init=str(out))
    assert tuned["init_report"][0].startswith(f"loaded {len(model.state_dict())} of {len(model.state_dict())}")
    student = train(data="digits", model="vit-tiny", labels=100, epochs=1, batch_size=64, out=str(tmp_path / "s"),
                    model_args={"depth": 1}, teacher=str(out), distill="soft")
    assert student["teacher_model"] == "cct-2/3x2" and student["teacher_test_acc"] == summary["test_acc"]
