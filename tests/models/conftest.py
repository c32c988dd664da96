"""Fixtures for the model tests."""
import json
from pathlib import Path

import pytest
from safetensors.torch import save_file


def write_transformers_vit(model, folder: Path) -> Path:
    """A timm ViT's weights under Hugging Face transformers' ViT names, with its config.json (model_type vit)."""
    hf = {}
    for key, value in model.state_dict().items():  # write the model under transformers' ViT names
        if ".attn.qkv." in key:
            block, kind = key.split(".")[1], key.split(".")[-1]
            for name, part in zip(("query", "key", "value"), value.chunk(3)):
                hf[f"vit.encoder.layer.{block}.attention.attention.{name}.{kind}"] = part.clone()
            continue
        renames = {"cls_token": "vit.embeddings.cls_token", "pos_embed": "vit.embeddings.position_embeddings",
                   "patch_embed.proj.weight": "vit.embeddings.patch_embeddings.projection.weight",
                   "patch_embed.proj.bias": "vit.embeddings.patch_embeddings.projection.bias",
                   "norm.weight": "vit.layernorm.weight", "norm.bias": "vit.layernorm.bias",
                   "head.weight": "classifier.weight", "head.bias": "classifier.bias"}
        if key in renames:
            hf[renames[key]] = value.clone()
        else:
            block, rest = key.split(".")[1], key.split(".", 2)[2]
            for old, new in (("norm1", "layernorm_before"), ("norm2", "layernorm_after"),
                             ("attn.proj", "attention.output.dense"), ("mlp.fc1", "intermediate.dense"),
                             ("mlp.fc2", "output.dense")):
                if rest.startswith(old + "."):
                    hf[f"vit.encoder.layer.{block}.{new}{rest[len(old):]}"] = value.clone()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "vit"}))
    save_file(hf, str(folder / "model.safetensors"))
    return folder


@pytest.fixture
def transformers_vit_writer():
    return write_transformers_vit
