"""lowdata's presets as timm models, so that timm (and tools built on it) can rebuild any run's model.

Every preset is registered in timm's model registry under `lowdata_<preset>` (`cct-2/3x2` -> `lowdata_cct_2_3x2`)
when `lowdata.models` is imported, and lowdata builds its presets through `timm.create_model` too: a model then
carries timm's `pretrained_cfg` and its reconstruction arguments, which is what `timm`'s own `config.json`
writer reads (models/export.py). After `import lowdata.models`:

    timm.create_model("lowdata_resnet20", num_classes=10, in_chans=3, img_size=32)
    timm.create_model("local-dir:RUN/model", pretrained=True)   # a finished run's weights and preprocessing
"""
from __future__ import annotations

import re
from functools import partial
from typing import Any

from torch import nn

PREFIX = "lowdata_"

# timm's register_model reads the pretrained config of an entry point from its module's `default_cfgs`
default_cfgs: dict[str, dict[str, Any]] = {}


def timm_name(preset: str) -> str:
    """The timm registry name of a lowdata preset."""
    return PREFIX + re.sub(r"[^0-9a-zA-Z]+", "_", preset).strip("_")


def build_preset(preset: str, num_classes: int = 10, in_chans: int = 3, img_size: Any = 32,
                 drop_path_rate: float | None = None, **overrides: Any) -> nn.Module:
    """The preset's module, with timm's keyword names (what timm's factory passes an entry point)."""
    from lowdata.models.registry import MODELS

    spec = MODELS.get(preset)
    size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
    return spec.build(num_classes=num_classes, in_chans=in_chans, img_size=size,
                      drop_path=spec.drop_path if drop_path_rate is None else drop_path_rate, **overrides)


def register_presets() -> None:
    """Register every lowdata preset with timm (idempotent: a preset already registered is left as it is)."""
    import timm
    from timm.models import build_model_with_cfg, register_model

    from lowdata.models.registry import MODELS

    for preset in MODELS.names():
        name = timm_name(preset)
        if timm.is_model(name):
            continue
        transformer = MODELS.get(preset).family == "transformer"
        # the CIFAR defaults; a run's own size, channels and normalisation go into its exported config.json
        default_cfgs[name] = {"input_size": (3, 32, 32), "num_classes": 10, "crop_pct": 1.0, "crop_mode": "squash",
                              "interpolation": "bilinear", "fixed_input_size": transformer,
                              "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5),
                              "classifier": "head" if transformer else "fc", "first_conv": None}

        def entry(pretrained: bool = False, _preset: str = preset, _name: str = name, **kwargs: Any) -> nn.Module:
            return build_model_with_cfg(partial(build_preset, _preset), _name, pretrained, **kwargs)

        entry.__name__ = entry.__qualname__ = name
        entry.__module__ = __name__
        register_model(entry)


def plain_timm_description(model: nn.Module) -> tuple[str, dict[str, Any]] | None:
    """(timm architecture name, its arguments) that rebuild `model` with timm alone, when the model is timm's
    own VisionTransformer with nothing of lowdata's (patch embedding, timm's attention, class-token or average
    pooling): a vit-tiny run then loads in an environment without lowdata. None for anything else (CCT, conv
    stems, LSA, the CIFAR ResNets), which keeps its `lowdata_` name."""
    from timm.layers import PatchEmbed
    from timm.models.convit import ConVit
    from timm.models.vision_transformer import Attention, Block, VisionTransformer

    if type(model) is ConVit:
        return convit_description(model)
    if type(model) is not VisionTransformer or type(model.patch_embed) is not PatchEmbed:
        return None
    blocks = list(model.blocks)
    if model.attn_pool is not None or not blocks or any(type(b) is not Block or type(b.attn) is not Attention
                                                         or not isinstance(b.ls1, nn.Identity) for b in blocks):
        return None
    first = blocks[0]
    return "vit_tiny_patch16_224", {  # timm's entry point; every argument below replaces its own
        "img_size": list(model.patch_embed.img_size), "patch_size": model.patch_embed.patch_size[0],
        "in_chans": model.patch_embed.proj.in_channels, "num_classes": model.num_classes,
        "global_pool": model.global_pool, "embed_dim": model.embed_dim, "depth": len(blocks),
        "num_heads": first.attn.num_heads, "mlp_ratio": first.mlp.fc1.out_features / model.embed_dim,
        "qkv_bias": first.attn.qkv.bias is not None, "class_token": model.cls_token is not None,
        "no_embed_class": model.no_embed_class, "reg_tokens": model.num_reg_tokens,
        "fc_norm": not isinstance(model.fc_norm, nn.Identity)}


def convit_description(model: nn.Module) -> tuple[str, dict[str, Any]] | None:
    """timm's ConVit arguments for a patch ViT with gated positional attention (models/gpsa.build_convit); None
    for a grid that is not square (timm's gated layers assume a square one)."""
    grid = model.patch_embed.grid_size
    if grid[0] != grid[1]:
        return None
    first, heads = model.blocks[0], model.blocks[0].attn.num_heads
    return "convit_tiny", {  # timm's entry point; every argument below replaces its own
        "img_size": list(model.patch_embed.img_size), "patch_size": model.patch_embed.patch_size[0],
        "in_chans": model.in_chans, "num_classes": model.num_classes, "global_pool": model.global_pool,
        "embed_dim": model.embed_dim // heads, "num_heads": heads, "depth": len(model.blocks),
        "mlp_ratio": first.mlp.fc1.out_features / model.embed_dim, "qkv_bias": first.attn.qk.bias is not None,
        "local_up_to_layer": model.local_up_to_layer, "use_pos_embed": model.use_pos_embed,
        "locality_strength": model.locality_strength}
