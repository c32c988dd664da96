"""Where initial weights come from: a lowdata run, a weights file (timm's or anyone's state dict), a timm model
name with `--pretrained`, or a Hugging Face ViT directory. Files are read without running code."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from lowdata.errors import UsageError, shown

WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")


def read_source(source: str, pretrained: bool = False) -> tuple[dict[str, torch.Tensor], list[str]]:
    """A state dict in timm's naming, and report lines about how it was read."""
    path, kind = Path(source).expanduser(), source_kind(source)
    if kind == "hugging-face-folder":
        return read_hugging_face_vit(path), [f"converted Hugging Face ViT names to timm's ({path})"]
    if kind == "run":
        from lowdata.rundir import read_run_weights

        return read_run_weights(path), []
    if kind == "weights":
        return read_weights(path), []
    if kind == "timm-folder":
        return read_weights(path / "model.safetensors"), [f"read timm's folder format ({path})"]
    if kind == "timm":
        return read_timm_pretrained(source, pretrained)
    return read_hub(source)


def source_kind(source: str) -> str:
    """What `--init SOURCE` names, without reading it: hugging-face-folder, run, weights, timm (a model name) or
    hub (an id, looked up when its weights are read); a one-line error for anything else."""
    path = Path(source).expanduser()
    if path.is_dir():
        if (path / "config.json").is_file() and not (path / "checkpoint").exists():
            return "timm-folder" if is_timm_folder(path) else "hugging-face-folder"
        return "run"
    if path.is_file() and path.suffix in WEIGHT_SUFFIXES:
        return "weights"
    if not path.exists():
        import timm

        from lowdata.models.hub import is_hub_id

        if timm.is_model(source):
            return "timm"
        if is_hub_id(source):
            return "hub"
    raise unknown_source(source)


def is_timm_folder(path: Path) -> bool:
    """A folder timm's `save_for_hf` wrote (a run's model/, `lowdata export --format timm`): config.json names
    its architecture, model.safetensors holds timm's names."""
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(config, dict) and "architecture" in config and (path / "model.safetensors").is_file()


def read_hub(source: str) -> tuple[dict[str, torch.Tensor], list[str]]:
    """A hub model id (models/hub.py): timm's format read by timm, a transformers ViT converted to timm's names."""
    from lowdata.models.hub import is_timm_repo, read_timm_hub, snapshot

    repo = source.removeprefix("hf-hub:")
    if is_timm_repo(source):
        return read_timm_hub(repo)
    folder = snapshot(repo)
    if is_timm_repo(source, folder):  # timm's format under another organisation
        return read_timm_hub(repo)
    return read_hugging_face_vit(folder), [f"converted Hugging Face ViT {repo} ({folder}) to timm's names"]


def check_source(source: str) -> None:
    """What read_source would refuse about `source` without reading its weights, so that a run refuses a bad
    `--init` before it loads its data."""
    if source_kind(source) == "run":
        from lowdata.rundir import checkpoint_dir

        path = Path(source).expanduser()
        if checkpoint_dir(path) is None:
            raise UsageError(f"no checkpoint in {path}; give the --out folder of a lowdata run")


def unknown_source(source: str) -> UsageError:
    return UsageError(f"--init {source} is neither a lowdata run directory, a weights file "
                      f"({', '.join(WEIGHT_SUFFIXES)}), a Hugging Face ViT directory, a timm model name nor a hub "
                      "id (hf-hub:ORG/NAME, timm/NAME, ORG/NAME); check the path or the name "
                      "(`lowdata models --timm 'vit_*'`)")


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from safetensors, or from a torch file read with weights_only (no code runs)."""
    if path.suffix == ".safetensors":
        from lowdata.io import read_safetensors

        return read_safetensors(path, "weights", "it is not a whole safetensors file; save the weights again")
    import pickle

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        import re

        # torch's own message is a paragraph of options; the object the pickle names is what the user needs
        named = re.search(r"GLOBAL ([\w.]+)", str(err))
        what = f" (it names {named.group(1)[:80]})" if named else ""
        raise UsageError(f"{path} holds more than weights (a pickle that would run code{what}), so it is refused; "
                         "save a plain state dict or safetensors") from None
    except (OSError, RuntimeError, EOFError, ValueError) as err:  # truncated or not a torch file at all
        from lowdata.io import unreadable

        raise unreadable(path, "weights", err, "it is not a whole torch file; save the weights again") from None
    for key in ("state_dict", "model"):  # common wrappers around the state dict
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UsageError(f"{path} does not hold a state dict (name -> tensor); save model.state_dict()")
    return state


def read_timm_pretrained(name: str, pretrained: bool) -> tuple[dict[str, torch.Tensor], list[str]]:
    if not pretrained:
        raise UsageError(f"--init {name} is a timm model name: add --pretrained to fetch its weights "
                         "(or give a weights file)")
    import timm

    from lowdata.models.hub import use_cache_alone_when_offline

    use_cache_alone_when_offline()
    try:
        model = timm.create_model(name, pretrained=True)
    except Exception as err:  # noqa: BLE001 - hub and HTTP errors have many types; all mean "not available"
        raise UsageError(f"timm's pretrained weights for {name} are not available offline and could not be "
                         f"downloaded ({type(err).__name__}); connect once or give a weights file") from None
    return model.state_dict(), [f"timm's pretrained {name}"]


# Hugging Face transformers' ViT names -> timm's. timm reads many checkpoint formats but not this one.
HF_RENAMES = {
    "embeddings.cls_token": "cls_token", "embeddings.distillation_token": "dist_token",
    "embeddings.position_embeddings": "pos_embed",
    "embeddings.patch_embeddings.projection.weight": "patch_embed.proj.weight",
    "embeddings.patch_embeddings.projection.bias": "patch_embed.proj.bias",
    "layernorm.weight": "norm.weight", "layernorm.bias": "norm.bias",
    "classifier.weight": "head.weight", "classifier.bias": "head.bias",
}
HF_BLOCK_RENAMES = {
    "layernorm_before": "norm1", "layernorm_after": "norm2", "attention.output.dense": "attn.proj",
    "intermediate.dense": "mlp.fc1", "output.dense": "mlp.fc2",
}


def read_hugging_face_vit(path: Path) -> dict[str, torch.Tensor]:
    config = json.loads((path / "config.json").read_text())
    if config.get("model_type") not in ("vit", "deit"):
        raise UsageError(f"{path} holds a Hugging Face {shown(config.get('model_type'))} model; only ViT/DeiT "
                         "directories convert to lowdata's ViT")
    files = [path / name for name in ("model.safetensors", "pytorch_model.bin") if (path / name).is_file()]
    if not files:
        raise UsageError(f"{path} has config.json but no model.safetensors or pytorch_model.bin")
    raw = read_weights(files[0])
    state: dict[str, torch.Tensor] = {}
    qkv: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in raw.items():
        key = key.split(".", 1)[1] if key.startswith(("vit.", "deit.")) else key
        if key in HF_RENAMES:
            state[HF_RENAMES[key]] = value
        elif key.startswith("encoder.layer."):
            index, rest = key[len("encoder.layer."):].split(".", 1)
            if rest.startswith("attention.attention."):  # separate q, k, v -> timm's fused qkv
                part, kind = rest[len("attention.attention."):].split(".")
                qkv.setdefault(int(index), {})[f"{part}.{kind}"] = value
                continue
            for old, new in HF_BLOCK_RENAMES.items():
                if rest.startswith(old + "."):
                    state[f"blocks.{index}.{new}{rest[len(old):]}"] = value
                    break
    for index, parts in qkv.items():
        for kind in ("weight", "bias"):
            state[f"blocks.{index}.attn.qkv.{kind}"] = torch.cat([parts[f"{p}.{kind}"] for p in ("query", "key", "value")])
    return state
