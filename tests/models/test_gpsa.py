"""Gated positional self-attention: timm's ConViT module's maths, its positional attention once per forward."""
import json

import pytest
import torch
from timm.models.convit import GPSA, MHSA, ConVit

from lowdata.errors import UsageError
from lowdata.models import create_model
from lowdata.models.gpsa import GatedPositionalAttention, relative_indices
from lowdata.models.vit import check_maskable, pooled_features
from lowdata.runs.export import write_checked


def test_it_computes_what_timms_gpsa_computes_on_the_same_weights():
    torch.manual_seed(0)
    ours = GatedPositionalAttention(32, 4, (4, 4), qkv_bias=True)
    with torch.no_grad():  # move away from the local initialisation: every parameter matters
        for parameter in ours.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    timms = GPSA(32, 4, qkv_bias=True)
    timms.load_state_dict(ours.state_dict())  # the same names: a checkpoint loads into timm's ConViT blocks
    x = torch.randn(3, 16, 32)
    assert torch.allclose(ours(x), timms(x), atol=1e-6)
    assert torch.equal(ours.rel_indices, timms.get_rel_indices(16))  # timm's relative positions, square grid


def test_the_positional_attention_is_computed_once_per_forward_for_one_image():
    layer = GatedPositionalAttention(16, 2, (2, 3))
    seen = []
    layer.pos_proj.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].shape))
    layer(torch.randn(5, 6, 16))
    assert seen == [torch.Size([1, 6, 6, 3])]  # one call, not one per image
    with pytest.raises(ValueError, match="built for a 2x3 token grid"):
        layer(torch.randn(1, 4, 16))


def test_local_initialisation_starts_each_head_on_one_tap_of_a_3x3_convolution():
    layer = GatedPositionalAttention(36, 9, (5, 5))
    attention = layer.positional_attention(25)[0]  # (heads, N, N)
    centre = 12  # row 2, column 2
    offsets = set()
    for head in range(9):
        peak = int(attention[head, centre].argmax())
        offsets.add((peak % 5 - 2, peak // 5 - 2))
    assert offsets == {(dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)}
    assert torch.equal(layer.v.weight, torch.eye(36))
    rel = relative_indices((2, 3))[0]
    assert rel[0, 5].tolist() == [2.0, 1.0, 5.0]  # token 0 at (0, 0) to token 5 at row 1, column 2


def test_presets_take_it_in_their_first_blocks_and_export(tmp_path):
    class Info:
        channels, image_size, classes, mean, std = 3, (32, 32), ("a", "b"), (0.5,) * 3, (0.25,) * 3
        depth, hflip = None, True

    torch.manual_seed(0)
    cct = create_model("cct-2/3x2", 2, 3, (32, 32), gpsa_blocks=1)
    assert isinstance(cct.blocks[0].attn, GatedPositionalAttention) and cct.blocks[0].attn.grid == (8, 8)
    assert not isinstance(cct.blocks[1].attn, GatedPositionalAttention)
    vit = create_model("vit-tiny", 2, 3, (32, 32), depth=3, gpsa_blocks=2, attn_init="mimetic")
    assert isinstance(vit, ConVit) and vit.local_up_to_layer == 2  # the class token joins after the gated blocks
    assert [type(block.attn) for block in vit.blocks] == [GatedPositionalAttention] * 2 + [MHSA]
    for model, name in ((cct, "cct"), (vit, "vit")):
        assert write_checked("timm", model, Info(), tmp_path / name) == 0.0  # rebuilt bit for bit by timm
    assert json.loads((tmp_path / "vit" / "config.json").read_text())["architecture"] == "convit_tiny"
    pytest.importorskip("onnxruntime")
    assert write_checked("onnx", vit, Info(), tmp_path / "vit.onnx") < 1e-4
    with pytest.raises(UsageError, match="has a class token: add model_args.pool=avg"):
        create_model("vit-tiny-convstem", 2, 3, (32, 32), gpsa_blocks=1)
    with pytest.raises(UsageError, match="give fewer than the model's 3 blocks"):
        create_model("vit-tiny", 2, 3, (32, 32), depth=3, gpsa_blocks=3)


def test_a_convit_refuses_what_needs_other_grids_in_one_line():
    vit = create_model("vit-tiny", 2, 3, (32, 32), depth=2, gpsa_blocks=1)
    with pytest.raises(UsageError, match="takes only its own 32x32 images .* set dino.local_crops=0"):
        pooled_features(vit, torch.randn(2, 3, 16, 16))
    assert pooled_features(vit, torch.randn(2, 3, 32, 32)).shape == (2, 192)
    with pytest.raises(UsageError, match="masked image modelling encodes a ViT's visible patches alone"):
        check_maskable(vit)


def test_position_tables_move_between_a_vit_and_a_convit():
    """A ConViT's class token has no position row: an --init between the two keeps the grid's rows."""
    from lowdata.models.weights import adapt

    convit = create_model("vit-tiny", 2, 3, (32, 32), depth=2, gpsa_blocks=1)
    vit = create_model("vit-tiny", 2, 3, (32, 32), depth=2)
    state, report = adapt(convit.state_dict(), vit)
    assert state["pos_embed"].shape == (1, 65, 192) and torch.equal(state["pos_embed"][0, 0], torch.zeros(192))
    assert torch.equal(state["pos_embed"][:, 1:], convit.pos_embed.detach())
    state, report = adapt(vit.state_dict(), convit)
    assert torch.equal(state["pos_embed"], vit.pos_embed.detach()[:, 1:])
    assert report == ["position embeddings resampled from a 8x8 grid to 8x8, prefix tokens 1 -> 0"]


@pytest.mark.parametrize("preset", ["cct-2/3x2", "vit-tiny"])
def test_token_dropping_is_refused_when_it_is_built_not_at_the_first_step(preset):
    """Gated positional attention is a table over the whole grid: with tokens dropped it has no row for them."""
    with pytest.raises(UsageError, match="patch_drop_rate drops tokens, and gated positional attention"):
        create_model(preset, 2, 3, (32, 32), depth=1, gpsa_blocks=1, patch_drop_rate=0.5)
    kept = create_model(preset, 2, 3, (32, 32), depth=1, patch_drop_rate=0.5)
    assert kept.patch_drop.prob == 0.5
