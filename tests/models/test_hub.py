"""`--init` with hub ids, read from a Hugging Face cache the tests build (no network)."""
import pytest
import torch

from lowdata import train
from lowdata.errors import UsageError
from lowdata.models import create_model
from lowdata.models.weights import load_init

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An offline hub whose cache is a folder of this test: `put(repo)` returns the snapshot folder to fill."""
    import huggingface_hub.constants

    cache = tmp_path / "hub-cache"
    for name, value in (("HF_HUB_CACHE", str(cache)), ("HF_HUB_OFFLINE", True)):
        monkeypatch.setattr(huggingface_hub.constants, name, value)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def put(repo: str):
        folder = cache / f"models--{repo.replace('/', '--')}"
        (folder / "refs").mkdir(parents=True)
        (folder / "refs" / "main").write_text(COMMIT)
        snapshot = folder / "snapshots" / COMMIT
        snapshot.mkdir(parents=True)
        return snapshot

    return put


def timm_checkpoint(snapshot):
    """A small timm ViT saved in timm's hub format (config.json with its architecture, model.safetensors)."""
    import timm
    from timm.models import save_for_hf

    model = timm.create_model("vit_tiny_patch16_224", img_size=32, patch_size=4, depth=2, mlp_ratio=2.0,
                              num_classes=10)
    save_for_hf(model, str(snapshot), safe_serialization=True)
    return model


@pytest.mark.parametrize("name", ["timm/tiny-test", "hf-hub:timm/tiny-test", "someone/tiny-timm"])
def test_timm_hub_ids_load_from_the_cache(hub_cache, name):
    repo = name.removeprefix("hf-hub:")
    source = timm_checkpoint(hub_cache(repo))
    model = create_model("vit-tiny", num_classes=10, in_chans=3, img_size=(32, 32), depth=2)
    report = load_init(model, name)
    assert report[0] == f"loaded {len(model.state_dict())} of {len(model.state_dict())} tensors from {name}"
    assert f"timm's pretrained hf-hub:{repo}" in report
    assert all(torch.equal(model.state_dict()[k], v) for k, v in source.state_dict().items())


def test_a_transformers_vit_id_is_converted_from_the_cache(hub_cache, transformers_vit_writer):
    source = create_model("vit-tiny", num_classes=10, in_chans=3, img_size=(32, 32), depth=2)
    transformers_vit_writer(source, hub_cache("google/vit-tiny-test"))
    model = create_model("vit-tiny", num_classes=10, in_chans=3, img_size=(32, 32), depth=2)
    report = load_init(model, "google/vit-tiny-test")
    assert report[0].startswith(f"loaded {len(model.state_dict())} of")
    assert any(line.startswith("converted Hugging Face ViT google/vit-tiny-test") for line in report)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in source.state_dict().items())


def test_a_training_run_starts_from_a_hub_id(hub_cache, tmp_path):
    timm_checkpoint(hub_cache("timm/tiny-test"))
    summary = train(data="digits", labels=100, epochs=1, model="vit-tiny", model_args={"depth": 2},
                    init="timm/tiny-test", out=str(tmp_path / "run"))
    assert summary["init"] == "timm/tiny-test"
    assert summary["init_report"][:3] == ["loaded 32 of 32 tensors from timm/tiny-test",
                                          "timm's pretrained hf-hub:timm/tiny-test",
                                          "position embeddings resampled from a 8x8 grid to 4x4"]  # 8x8 digits


def test_an_id_in_neither_the_cache_nor_reach_is_one_line_naming_the_cache(hub_cache, tmp_path):
    model = create_model("vit-tiny", num_classes=10, in_chans=3, img_size=(32, 32), depth=1)
    for name in ("timm/absent", "someone/absent"):
        with pytest.raises(UsageError, match=f"--init {name}: .*offline, and it is not in the hub's cache "
                                             f"\\({tmp_path / 'hub-cache'}"):
            load_init(model, name)
