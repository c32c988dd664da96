"""ViT presets for small images, built on timm's VisionTransformer (so their state dicts are timm's).

Patch 4 at 32 px gives an 8x8 grid of 64 tokens: a ViT's patch 16 on 32-px images leaves 4 tokens and
reaches about 51 % on CIFAR-10 (lucidrains/vit-pytorch#12).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lowdata.errors import UsageError
from lowdata.models.factory import MODELS, ModelSpec


def default_patch_size(img_size: tuple[int, int]) -> int:
    """4 at CIFAR/MNIST sizes; smaller for tiny images so the grid keeps at least 4x4 tokens."""
    for patch in (4, 2, 1):
        if all(side % patch == 0 and side // patch >= 4 for side in img_size):
            return patch
    return 1


def build_vit(num_classes: int, in_chans: int, img_size: tuple[int, int], drop_path: float,
              distilled: bool = False, **settings: Any) -> nn.Module:
    """`distilled=True` adds DeiT's distillation token and head (timm's VisionTransformerDistilled, so the state
    dict loads into timm's `deit_*_distilled` models)."""
    from timm.models.deit import VisionTransformerDistilled
    from timm.models.vision_transformer import VisionTransformer

    settings.setdefault("patch_size", default_patch_size(img_size))
    patch = settings["patch_size"]
    if any(side % patch for side in img_size):
        raise UsageError(f"image size {img_size[0]}x{img_size[1]} is not divisible by patch_size {patch}; "
                         "set model_args.patch_size to a divisor of the image size")
    cls = VisionTransformerDistilled if distilled else VisionTransformer
    return cls(img_size=img_size, in_chans=in_chans, num_classes=num_classes, drop_path_rate=drop_path, **settings)


def vit_preset(**defaults: Any):
    def build(num_classes: int, in_chans: int, img_size: tuple[int, int], drop_path: float, **overrides):
        return build_vit(num_classes, in_chans, img_size, drop_path, **{**defaults, **overrides})

    return build


# depth 9, width 192, MLP ratio 2: the 2.7M-parameter ViT of the SPT/LSA small-dataset paper (3 heads of 64)
MODELS.register("vit-tiny")(ModelSpec(vit_preset(embed_dim=192, depth=9, num_heads=3, mlp_ratio=2.0),
                                      "transformer", "ViT, width 192, depth 9, patch 4 at 32 px", drop_path=0.1))
# DeiT-S widths at patch 4
MODELS.register("vit-small")(ModelSpec(vit_preset(embed_dim=384, depth=12, num_heads=6, mlp_ratio=4.0),
                                       "transformer", "ViT, width 384, depth 12, patch 4 at 32 px (DeiT-S size)",
                                       drop_path=0.1))


def use_fused_attention(model: nn.Module, fused: bool) -> int:
    """Switch timm's attention layers (their `fused_attn` flag) between the fused kernel and the explicit
    product; the weights and the maths are the same. Returns how many layers were switched."""
    layers = [module for module in model.modules() if hasattr(module, "fused_attn")]
    for layer in layers:
        layer.fused_attn = fused
    return len(layers)


# The model side of masked image modelling: what an objective needs to encode only some patches, so that
# objectives never reach into the ViT's layers themselves. timm's VisionTransformer has no masked forward.
def patch_tokens(vit: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, L, D) patch embeddings with their position embeddings, no prefix tokens."""
    tokens = vit.patch_embed(images)
    return tokens + vit.pos_embed[:, vit.num_prefix_tokens:]


def encode_tokens(vit: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """Prepend the class token (with its position embedding) to some patch tokens (N, K, D) and run the
    blocks and the final norm: (N, 1 + K, D)."""
    if vit.num_prefix_tokens != 1 or getattr(vit, "no_embed_class", False):
        raise UsageError("masked image modelling needs a ViT preset with a class token only (no distillation "
                         "token, no register tokens)")
    cls = (vit.cls_token + vit.pos_embed[:, :1]).expand(len(tokens), -1, -1)
    return vit.norm(vit.blocks(vit.norm_pre(torch.cat([cls, tokens], dim=1))))


def patch_grid(vit: nn.Module) -> tuple[int, int]:
    return tuple(vit.patch_embed.grid_size)


def patch_size(vit: nn.Module) -> int:
    return vit.patch_embed.patch_size[0]
