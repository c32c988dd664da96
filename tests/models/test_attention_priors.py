"""Attention priors at initialisation (mimetic) and plain-ViT hygiene (fixed 2-D sin-cos positions, average
pooling): closed forms, and timm rebuilding the models alone."""
import subprocess
import sys

import pytest
import torch
from timm.layers import build_sincos2d_pos_embed
from timm.models.vision_transformer import Attention

from lowdata.errors import UsageError
from lowdata.models import create_model
from lowdata.models.attention_init import mimetic_init, mimetic_target
from lowdata.runs.export import write_checked


class OneLayer(torch.nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.attn = Attention(dim, num_heads=heads, qkv_bias=True)


def products(attn: Attention, dim: int, heads: int):
    """Per head W_q,hᵀ·W_k,h, and W_vᵀ·W_projᵀ, in timm's layout."""
    w, head_dim = attn.qkv.weight.detach(), dim // heads
    qk = [w[h * head_dim:(h + 1) * head_dim].T @ w[dim + h * head_dim:dim + (h + 1) * head_dim] for h in range(heads)]
    return qk, w[2 * dim:].T @ attn.proj.weight.detach().T


def test_one_head_gets_exactly_the_mimetic_products():
    layer = OneLayer(8, 1)
    assert mimetic_init(layer, torch.Generator().manual_seed(0)) == 1
    again = torch.Generator().manual_seed(0)  # the same draws, in the same order: the q-k target, then v-proj
    qk_target, vproj_target = mimetic_target(8, 0.7, 0.7, +1, again), mimetic_target(8, 0.4, 0.4, -1, again)
    (qk,), vproj = products(layer.attn, 8, 1)
    assert torch.allclose(qk, qk_target, atol=1e-5) and torch.allclose(vproj, vproj_target, atol=1e-5)


def test_each_of_several_heads_gets_the_best_approximation_of_its_rank():
    layer = OneLayer(8, 2)
    mimetic_init(layer, torch.Generator().manual_seed(1))
    again = torch.Generator().manual_seed(1)
    targets = [mimetic_target(8, 0.7, 0.7, +1, again) for _ in range(2)]
    qk, _ = products(layer.attn, 8, 2)
    for product, target in zip(qk, targets):
        u, s, vh = torch.linalg.svd(target)
        assert torch.allclose(product, (u[:, :4] * s[:4]) @ vh[:4], atol=1e-5)  # rank 4 = the head's width
        assert torch.linalg.matrix_rank(product) == 4


@pytest.mark.parametrize("name", ["vit-tiny", "vit-tiny-convstem", "vit-tiny-sl", "cct-2/3x2"])
def test_every_vit_family_preset_takes_mimetic_initialisation(name):
    torch.manual_seed(0)
    model = create_model(name, 10, 3, (32, 32), attn_init="mimetic")
    attn = model.blocks[0].attn
    qk, vproj = products(attn, model.embed_dim, attn.num_heads)
    assert torch.diagonal(qk[0]).mean() > 0.2 and torch.diagonal(vproj).mean() < -0.2  # +I and -I leanings
    plain = create_model(name, 10, 3, (32, 32))
    assert abs(torch.diagonal(products(plain.blocks[0].attn, plain.embed_dim, attn.num_heads)[1]).mean()) < 0.05


def test_sincos_positions_are_fixed_and_unknown_options_are_one_line():
    model = create_model("vit-tiny", 10, 3, (32, 32), pos_embed="sincos", pool="avg", depth=1)
    expected = build_sincos2d_pos_embed([8, 8], 192)[None]
    assert torch.equal(model.pos_embed, expected)
    assert "pos_embed" not in dict(model.named_parameters()) and "pos_embed" in model.state_dict()
    token = create_model("vit-tiny", 10, 3, (32, 32), pos_embed="sincos", depth=1)
    assert torch.equal(token.pos_embed[:, 0], torch.zeros(1, 192))  # the class token's position
    with pytest.raises(UsageError, match="model_args.attn_init='xavier' is unknown"):
        create_model("vit-tiny", 10, 3, (32, 32), attn_init="xavier")


OPTIONS = [dict(attn_init="mimetic", pos_embed="sincos", pool="avg"), dict(attn_init="impulse", num_heads=12, pool="avg"),
           dict(gpsa_blocks=1, pos_embed="sincos", pool="avg")]  # the last: timm's own ConViT


def test_the_new_options_round_trip_into_timm_without_lowdata(tmp_path):
    class Info:
        channels, image_size, classes, mean, std = 3, (32, 32), ("a", "b"), (0.5,) * 3, (0.25,) * 3
        depth, hflip = None, True

    x = torch.randn(2, 3, 32, 32)
    torch.save(x, tmp_path / "x.pt")
    models = []
    for index, options in enumerate(OPTIONS):
        torch.manual_seed(0)
        models.append(create_model("vit-tiny", 2, 3, (32, 32), depth=2, **options))
        assert write_checked("timm", models[-1], Info(), tmp_path / f"m{index}") == 0.0
    script = f"""
import sys, torch, timm
x = torch.load("{tmp_path / 'x.pt'}")
for index in range({len(OPTIONS)}):
    model = timm.create_model(f"local-dir:{tmp_path}/m{{index}}", pretrained=True).eval()
    with torch.no_grad():
        torch.save(model(x), f"{tmp_path}/y{{index}}.pt")
assert not any(name.startswith("lowdata") for name in sys.modules)
"""
    subprocess.run([sys.executable, "-c", script], check=True)  # one process that never imports lowdata
    for index, model in enumerate(models):
        with torch.no_grad():
            assert torch.allclose(torch.load(tmp_path / f"y{index}.pt"), model.eval()(x), atol=1e-5), OPTIONS[index]


def test_init_weights_replace_the_initialisation_and_the_run_says_so(tmp_path):
    from lowdata import train

    common = dict(data="digits", labels=50, epochs=1, batch_size=25, threads=1, model="vit-tiny",
                  model_args={"depth": 1})
    train(out=str(tmp_path / "source"), **common)
    summary = train(out=str(tmp_path / "tuned"), init=str(tmp_path / "source"),
                    **{**common, "model_args": {"depth": 1, "attn_init": "mimetic"}})
    assert "attn_init=mimetic skipped: --init gives the weights" in summary["init_report"]


def shift_matrix(grid, tap):
    """The 3x3 convolution tap `tap` = (row offset, column offset) as a token-to-token matrix (zero padding)."""
    rows, cols = grid
    target = torch.zeros(rows * cols, rows * cols)
    for i in range(rows * cols):
        r, c = divmod(i, cols)
        if 0 <= r + tap[0] < rows and 0 <= c + tap[1] < cols:
            target[i, (r + tap[0]) * cols + c + tap[1]] = 1.0
    return target


@pytest.mark.parametrize("name, extra", [("vit-tiny", {"num_heads": 12, "pool": "avg"}),
                                         ("vit-tiny-convstem", {"num_heads": 12, "pool": "avg"}),
                                         ("cct-2/3x2", {"num_heads": 16})])
def test_impulse_heads_start_as_the_3x3_shifts_they_target(name, extra):
    from lowdata.models.attention_init import TAPS

    torch.manual_seed(0)
    model = create_model(name, 10, 3, (32, 32), attn_init="impulse", **extra)
    grid, dim = tuple(model.patch_embed.grid_size), model.embed_dim
    tokens = torch.nn.functional.layer_norm(model.pos_embed[0].detach(), (dim,))  # what a block sees of positions
    for block in model.blocks:
        attn = block.attn
        head_dim = dim // attn.num_heads
        q, k, _ = attn.qkv(tokens).detach().reshape(len(tokens), 3, attn.num_heads, head_dim).permute(1, 2, 0, 3)
        maps = (q @ k.transpose(-2, -1) * head_dim ** -0.5).softmax(dim=-1)  # (heads, N, N)
        for head, weights in enumerate(maps):
            target = shift_matrix(grid, TAPS[head % 9])
            inside = target.sum(1) > 0  # tokens whose neighbour at the tap lies on the grid
            assert torch.equal(weights[inside].argmax(1), target[inside].argmax(1)), (name, head)
            assert (weights * target).sum(1)[inside].mean() > 0.9


def test_a_model_impulse_cannot_initialise_is_one_line():
    with pytest.raises(UsageError, match=r"needs 9 heads or more .* \(this model: 3 of 64\)"):
        create_model("vit-tiny", 10, 3, (32, 32), attn_init="impulse", pool="avg")
    with pytest.raises(UsageError, match="a model without a class token; use model_args.pool=avg"):
        create_model("vit-tiny", 10, 3, (32, 32), attn_init="impulse", num_heads=12)
