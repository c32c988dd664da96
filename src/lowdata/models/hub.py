"""`--init` from the Hugging Face hub, as timm and transformers take it: `hf-hub:ORG/NAME` or `timm/NAME` (timm's
own checkpoints, built by timm from the repository's config.json) and `ORG/NAME` (a transformers ViT/DeiT,
converted to timm's names; a timm-format repository under another organisation is read as timm's).

Weights come from the hub's cache (`HF_HUB_CACHE`, by default ~/.cache/huggingface/hub) when it has them, and are
downloaded into it otherwise; offline, only the cache is read, at once (no retries).
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import torch

from lowdata.errors import UsageError

HUB_ID = re.compile(r"^(hf-hub:)?[A-Za-z0-9][\w.-]*/[\w.-]+$")


def is_hub_id(source: str) -> bool:
    return bool(HUB_ID.match(source))


def is_timm_repo(source: str, folder: Path | None = None) -> bool:
    """timm's format: named for timm (hf-hub:, timm/) or with timm's `architecture` in its config.json."""
    if source.startswith("hf-hub:") or source.startswith("timm/"):
        return True
    return folder is not None and "architecture" in json.loads((folder / "config.json").read_text())


def read_timm_hub(repo: str) -> tuple[dict[str, torch.Tensor], list[str]]:
    """A timm-format hub model (timm builds it from the repository's config.json) and its report line."""
    import timm

    offline = use_cache_alone_when_offline()
    try:
        model = timm.create_model(f"hf-hub:{repo}", pretrained=True)
    except Exception as err:  # noqa: BLE001 - hub, HTTP and file errors have many types; all mean "not here"
        raise not_found(repo, offline, err) from None
    return model.state_dict(), [f"timm's pretrained hf-hub:{repo}"]


def snapshot(repo: str) -> Path:
    """The local folder of a hub repository's config and weights (from the cache, or downloaded into it)."""
    from huggingface_hub import snapshot_download

    offline = use_cache_alone_when_offline()
    try:
        folder = Path(snapshot_download(repo, allow_patterns=["config.json", "*.safetensors", "pytorch_model.bin"],
                                        local_files_only=offline))
    except Exception as err:  # noqa: BLE001 - as above
        raise not_found(repo, offline, err) from None
    if not (folder / "config.json").is_file():
        raise UsageError(f"--init {repo}: the hub repository has no config.json; give a timm or transformers model")
    return folder


def use_cache_alone_when_offline() -> bool:
    """Whether the hub is out of reach; then the hub library reads its cache alone, at once (no ~46 s of
    retries). The library reads the variable when imported, so its constant is set too."""
    import huggingface_hub.constants

    from lowdata.data.download import network_available

    if huggingface_hub.constants.HF_HUB_OFFLINE or network_available("https://huggingface.co"):
        return bool(huggingface_hub.constants.HF_HUB_OFFLINE)
    os.environ["HF_HUB_OFFLINE"] = "1"
    huggingface_hub.constants.HF_HUB_OFFLINE = True
    return True


def not_found(repo: str, offline: bool, err: Exception) -> UsageError:
    import huggingface_hub.constants

    where = huggingface_hub.constants.HF_HUB_CACHE
    reason = "offline, and it is not in the hub's cache" if offline else f"it could not be fetched ({type(err).__name__})"
    return UsageError(f"--init {repo}: no such folder or file here, and no hub model: {reason} ({where}, set "
                      "HF_HUB_CACHE for another); check the name, or download it once while online")
