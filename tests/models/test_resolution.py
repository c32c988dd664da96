"""Progressive resolution (low_res_size): the early epochs' steps read smaller images, the model unchanged."""
import pytest
import torch
import torch.nn.functional as F

from lowdata import train
from lowdata.errors import UsageError
from lowdata.models import create_model
from lowdata.models.gpsa import GatedPositionalAttention, relative_indices
from lowdata.models.resolution import LowResolution


def shrink(images, side):
    return F.interpolate(images, size=(side, side), mode="bilinear", antialias=True, align_corners=False)


def test_a_cnn_reads_the_resized_batch():
    torch.manual_seed(0)
    model, images = create_model("resnet20", 10, 3, (32, 32)).eval(), torch.randn(2, 3, 32, 32)
    assert torch.equal(LowResolution(model, 16)(images), model(shrink(images, 16)))


def test_a_cct_with_gated_attention_computes_what_one_built_for_the_smaller_grid_computes():
    """With no position table, a CCT built at 32 px and read at 24 px is the same network as one built at 24 px
    holding the same weights: the gated attention's offsets are those of the 6x6 grid."""
    settings = dict(depth=2, gpsa_blocks=1, pos_embed="none")
    torch.manual_seed(0)
    built = create_model("cct-2/3x2", 10, 3, (32, 32), **settings)
    small = create_model("cct-2/3x2", 10, 3, (24, 24), **settings)
    small.load_state_dict(built.state_dict())
    images = torch.randn(3, 3, 32, 32)
    expected = small.eval()(shrink(images, 24))
    torch.testing.assert_close(LowResolution(built.eval(), 24)(images), expected, rtol=1e-5, atol=1e-5)
    gated = next(module for module in built.modules() if isinstance(module, GatedPositionalAttention))
    assert torch.equal(gated.offsets(36), relative_indices((6, 6))) and gated.offsets(64) is gated.rel_indices
    with pytest.raises(ValueError, match="takes other square grids, not 24 tokens"):
        gated.offsets(24)


def test_the_first_epochs_train_small_then_full_size(tmp_path):
    seen = []
    model_hook = torch.nn.modules.module.register_module_forward_pre_hook(
        lambda module, args: seen.append(args[0].shape[-1])
        if type(module).__name__ == "ConvTokenizer" and torch.is_grad_enabled() else None)  # training steps only
    try:
        summary = train(data="digits", labels=100, epochs=4, batch_size=50, threads=1, model="cct-2/3x2",
                        model_args={"depth": 1, "gpsa_blocks": 1}, low_res_size=4, low_res_fraction=0.5,
                        out=str(tmp_path / "run"))
    finally:
        model_hook.remove()
    assert seen[:8] == [4] * 4 + [8] * 4 and set(seen[8:]) <= {8}  # two epochs of two steps at each size
    low_res = summary["low_res"]
    assert (low_res["size"], low_res["epochs"]) == (4, 2) and 0.2 < low_res["flops_ratio"] < 0.25  # attention: N²


def test_a_run_stopped_in_its_small_epochs_resumes_bit_for_bit(straight_and_resumed):
    a, b = straight_and_resumed(6, data="digits", labels=100, epochs=3, batch_size=25, threads=1, seed=0,
                                model="resnet20", low_res_size=4, low_res_fraction=0.67)  # step 6: epoch 2, small
    assert all(torch.equal(a[key], b[key]) for key in a)


def test_the_runs_flops_count_its_early_epochs_at_their_size(tmp_path):
    settings = dict(data="digits", labels=100, epochs=2, batch_size=50, threads=1, model="resnet20")
    full = train(out=str(tmp_path / "full"), **settings)
    low = train(out=str(tmp_path / "low"), low_res_size=4, **settings)
    ratio = low["low_res"]["flops_ratio"]
    assert 0.25 <= ratio < 0.3  # a quarter of the pixels; the head's FLOPs do not shrink
    assert low["train_flops"] == pytest.approx(full["train_flops"] * (0.5 + 0.5 * ratio), rel=1e-3)


@pytest.mark.parametrize("settings, message", [
    (dict(model="resnet20", low_res_size=8), "low_res_size=8 is not below the images' height"),
    (dict(model="cct-2/3x2", model_args={"depth": 1}, low_res_size=5), "not divisible by the model's token stride"),
    (dict(model="vit-tiny", model_args={"depth": 2, "gpsa_blocks": 1}, low_res_size=4),
     "takes CNNs and ViT-family presets built on timm's VisionTransformer"),
    (dict(model="resnet20", low_res_size=4, drloc={"images": "labelled"}), "auxiliary term drloc reads"),
    (dict(model="resnet20", low_res_size=4, low_res_fraction=0.01), "needs at least 2 epochs"),
])
def test_what_it_cannot_train_is_refused_in_one_line(tmp_path, settings, message):
    with pytest.raises(UsageError, match=message):
        train(data="digits", labels=50, epochs=1 if "low_res_fraction" in settings else 2, threads=1,
              out=str(tmp_path / "run"), **settings)
    assert not (tmp_path / "run").exists()
