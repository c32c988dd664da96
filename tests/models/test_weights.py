import pytest
import timm
import torch
from safetensors.torch import save_file

from lowdata import train
from lowdata.errors import UsageError
from lowdata.models import create_model
from lowdata.models.weights import adapt, load_init

TIMM_TINY = dict(depth=12, mlp_ratio=4.0)  # lowdata's vit-tiny widths with timm's vit_tiny depth and MLP


@pytest.fixture(scope="module")
def timm_tiny_file(tmp_path_factory):
    torch.manual_seed(0)
    source = timm.create_model("vit_tiny_patch16_224", pretrained=False)
    path = tmp_path_factory.mktemp("timm") / "vit_tiny_patch16_224.safetensors"
    save_file(source.state_dict(), str(path))
    return path, source.state_dict()


def test_a_timm_224px_rgb_checkpoint_loads_into_a_32px_patch4_grayscale_vit(timm_tiny_file):
    path, source = timm_tiny_file
    model = create_model("vit-tiny", num_classes=10, in_chans=1, img_size=(32, 32), patch_size=4, **TIMM_TINY)
    report = load_init(model, path)
    text = "\n".join(report)
    assert report[0].startswith(f"loaded {len(model.state_dict()) - 2} of {len(model.state_dict())}")
    assert "resampled from a 14x14 grid to 8x8" in text and "kernel resampled (16, 16) -> (4, 4)" in text
    assert "from 3 to 1 input channels" in text and "new head for 10 classes (the source's head had 1000" in text
    state = model.state_dict()
    assert torch.equal(state["blocks.7.attn.qkv.weight"], source["blocks.7.attn.qkv.weight"])
    assert torch.equal(state["pos_embed"][:, 0], source["pos_embed"][:, 0])  # the class token's row is kept
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, 10)


def test_our_checkpoints_load_into_timm_with_the_same_outputs():
    ours = create_model("vit-tiny", num_classes=10, in_chans=3, img_size=(32, 32)).eval()
    theirs = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=10, img_size=32, patch_size=4,
                               depth=9, mlp_ratio=2.0).eval()
    theirs.load_state_dict(ours.state_dict())  # strict
    images = torch.randn(2, 3, 32, 32)
    assert torch.allclose(theirs(images), ours(images), atol=1e-5)


def test_position_embeddings_on_the_same_grid_are_unchanged():
    distilled = create_model("vit-tiny", num_classes=10, in_chans=3, img_size=(32, 32), distilled=True, depth=1)
    plain = create_model("vit-tiny", num_classes=10, in_chans=3, img_size=(32, 32), depth=1)
    state, report = adapt(distilled.state_dict(), plain)
    source = distilled.state_dict()["pos_embed"]
    assert torch.equal(state["pos_embed"][:, 1:], source[:, 2:])  # the 64 patch rows, untouched
    assert torch.equal(state["pos_embed"][:, :1], source[:, :1])
    assert "dist_token" not in state and any("dropped the distillation token" in line for line in report)
    same, nothing = adapt(plain.state_dict(), plain)
    assert nothing == [] and all(torch.equal(same[k], v) for k, v in plain.state_dict().items())


def test_a_hugging_face_vit_directory_is_converted(tmp_path, transformers_vit_writer):
    model = create_model("vit-tiny", num_classes=10, in_chans=3, img_size=(32, 32), depth=2)
    folder = transformers_vit_writer(model, tmp_path / "hf-vit")
    fresh = create_model("vit-tiny", num_classes=10, in_chans=3, img_size=(32, 32), depth=2)
    report = load_init(fresh, folder)
    assert report[0].startswith(f"loaded {len(fresh.state_dict())} of {len(fresh.state_dict())}")
    assert all(torch.equal(fresh.state_dict()[k], v) for k, v in model.state_dict().items())


def test_timm_names_need_pretrained_and_fail_clearly_offline(monkeypatch):
    model = create_model("vit-tiny", num_classes=10, in_chans=3, img_size=(32, 32), depth=1)
    with pytest.raises(UsageError, match="add --pretrained"):
        load_init(model, "vit_tiny_patch16_224")
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # restored after the test, as is the constant below
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", "/nonexistent-hf-cache")
    monkeypatch.setattr("lowdata.data.download.network_available", lambda url: False)
    with pytest.raises(UsageError, match="not available offline"):
        load_init(model, "vit_tiny_patch16_224", pretrained=True)


def test_freeze_then_unfreeze(tmp_path, timm_tiny_file):
    from safetensors.torch import load_file

    path, _ = timm_tiny_file
    settings = dict(data="digits", labels=100, model="vit-tiny", model_args=TIMM_TINY, epochs=2, init=str(path),
                    freeze_epochs=1, batch_size=50)
    assert train(out=str(tmp_path / "run"), stop_after_epoch=1, **settings) is None
    start = create_model("vit-tiny", num_classes=10, in_chans=1, img_size=(8, 8), **TIMM_TINY)
    load_init(start, path)
    after_one = load_file(str(tmp_path / "run" / "checkpoint" / "model.safetensors"))
    assert torch.equal(after_one["blocks.3.mlp.fc1.weight"], start.state_dict()["blocks.3.mlp.fc1.weight"])
    assert not torch.equal(after_one["head.weight"], start.state_dict()["head.weight"])
    train(out=str(tmp_path / "run"), resume=True)
    after_two = load_file(str(tmp_path / "run" / "checkpoint" / "model.safetensors"))
    assert not torch.equal(after_two["blocks.3.mlp.fc1.weight"], start.state_dict()["blocks.3.mlp.fc1.weight"])


def test_a_run_on_other_classes_gives_no_head_even_when_the_shapes_match(tmp_path):
    from safetensors.torch import load_file

    common = dict(data="digits", model="vit-tiny", model_args={"depth": 1}, epochs=1, batch_size=64)
    source = tmp_path / "source"
    summary = train(out=str(source), classes="5,6,7,8,9", labels=100, **common)
    assert summary["classes"] == ["5", "6", "7", "8", "9"]
    learned = load_file(str(source / "checkpoint" / "model.safetensors"))

    same = create_model("vit-tiny", num_classes=5, in_chans=1, img_size=(8, 8), depth=1)
    report = load_init(same, source, classes=["5", "6", "7", "8", "9"])
    assert report == [f"loaded {len(same.state_dict())} of {len(same.state_dict())} tensors from {source}"]
    assert torch.equal(same.state_dict()["head.weight"], learned["head.weight"])

    other = create_model("vit-tiny", num_classes=5, in_chans=1, img_size=(8, 8), depth=1)
    fresh_head = other.state_dict()["head.weight"].clone()
    report = load_init(other, source, classes=["0", "1", "2", "3", "4"])
    assert "new head: the source learned other classes (5, 6, 7, 8 and 1 more)" in "\n".join(report)
    assert torch.equal(other.state_dict()["head.weight"], fresh_head)
    assert torch.equal(other.state_dict()["blocks.0.attn.qkv.weight"], learned["blocks.0.attn.qkv.weight"])

    target = train(out=str(tmp_path / "target"), classes="0,1,2,3,4", labels=50, init=str(source), **common)
    assert any(line.startswith("new head: the source learned other classes") for line in target["init_report"])
