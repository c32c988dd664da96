"""ViT presets for small images, built on timm's VisionTransformer (so their state dicts are timm's).

Patch 4 at 32 px gives an 8x8 grid of 64 tokens: a ViT's patch 16 on 32-px images leaves 4 tokens and
reaches about 51 % on CIFAR-10 (lucidrains/vit-pytorch#12).
"""
from __future__ import annotations

from functools import partial
from typing import Any

import torch
from torch import nn

from lowdata.errors import UsageError, shown
from lowdata.models.registry import MODELS, ModelSpec


DESIGN_SIZE = 32  # the presets' design input: patch 4 there gives the 8x8 grid


def grid_keeper(tokenizer: str, reduction: int):
    """The `sized_args` of a preset that reduces a DESIGN_SIZE image by `reduction` (patch size, or 2^stages of
    a convolutional tokenizer): at another size, the valid reduction whose grid side comes closest to the design's
    (the smaller reduction on a tie: more tokens), recorded in the run's model_args so a rebuild matches."""
    wanted = DESIGN_SIZE / reduction

    def sized_args(img_size: tuple[int, int]) -> dict[str, Any]:
        side = min(img_size)
        if tokenizer == "conv":  # each conv-pool stage halves the grid; any image size works
            choices = {2 ** layers: {"tokenizer_layers": layers} for layers in range(1, 7)}
        else:  # the grid must tile the image; a conv stem halves per convolution (powers of 2 from 2)
            divisors = [p for p in range(1, side + 1) if all(s % p == 0 for s in img_size)]
            # patches of at least 2x2 pixels: a ViT of one-pixel tokens (8x8 digits at patch 1) reached 26 %
            # training accuracy in 24 epochs on 800 labels where patch 2 reached 62 %, at 4.6x the time
            divisors = [p for p in divisors if p >= 2 and side // p >= 2] or divisors
            if tokenizer == "convstem":
                divisors = [p for p in divisors if p >= 2 and not p & (p - 1)] or [2]
            choices = {p: {"patch_size": p} for p in divisors}
        best = min(choices, key=lambda r: (abs(side / r - wanted), r))
        return choices[best]

    return sized_args


def default_patch_size(img_size: tuple[int, int]) -> int:
    """A model built without a patch size (runs from before `grid_keeper`, timm-style direct use): 4 at CIFAR/MNIST
    sizes; smaller for tiny images so the grid keeps at least 4x4 tokens."""
    for patch in (4, 2, 1):
        if all(side % patch == 0 and side // patch >= 4 for side in img_size):
            return patch
    return 1


TOKENIZERS = ("patch", "spt", "convstem", "conv")
ATTENTIONS = ("plain", "lsa")
POOLS = ("token", "seq", "avg")


def build_vit(num_classes: int, in_chans: int, img_size: tuple[int, int], drop_path: float,
              distilled: bool = False, tokenizer: str = "patch", tokenizer_layers: int = 1,
              attention: str = "plain", pool: str = "token", attn_init: str = "default", pos_embed: str = "learn",
              gpsa_blocks: int = 0, locality_strength: float = 1.0, **settings: Any) -> nn.Module:
    """timm's VisionTransformer with lowdata's small-data parts chosen by name (so a run's config.yaml says
    how to rebuild it): `tokenizer` patch (timm's), spt (shifted patches), convstem (early convolutions) or
    conv (CCT, `tokenizer_layers` conv-pool stages); `attention` plain or lsa (locality self-attention);
    `pool` token (class token), seq (CCT's sequence pooling) or avg; `attn_init` default (timm's) or mimetic
    (models/attention_init.py); `pos_embed` learn (timm's), sincos (fixed 2-D sin-cos, Beyer et al. 2022) or
    none; `gpsa_blocks` N: gated positional self-attention in the first N blocks (models/gpsa.py; a patch
    ViT becomes timm's ConViT, its class token joining after them), `locality_strength` its initial
    locality. Other settings are timm's.
    `distilled=True` adds DeiT's distillation token and head (timm's VisionTransformerDistilled, so the state
    dict loads into timm's `deit_*_distilled` models)."""
    from timm.models.deit import VisionTransformerDistilled
    from timm.models.vision_transformer import VisionTransformer

    from lowdata.models import small_data

    from lowdata.models.attention_init import ATTENTION_INITS

    for name, value, choices in (("tokenizer", tokenizer, TOKENIZERS), ("attention", attention, ATTENTIONS),
                                 ("pool", pool, POOLS), ("attn_init", attn_init, ATTENTION_INITS),
                                 ("pos_embed", pos_embed, POS_EMBEDS)):
        if value not in choices:
            raise UsageError(f"model_args.{name}={shown(value)} is unknown; choose from {', '.join(choices)}")
    if gpsa_blocks and settings.get("patch_drop_rate"):
        raise UsageError("model_args.patch_drop_rate drops tokens, and gated positional attention (gpsa_blocks) "
                         "attends over the whole token grid: use one of the two")
    if gpsa_blocks and tokenizer == "patch" and attention == "plain" and pool != "seq" and not distilled:
        from lowdata.models.gpsa import build_convit

        settings.setdefault("patch_size", default_patch_size(img_size))
        model = build_convit(num_classes, in_chans, img_size, drop_path, gpsa_blocks, locality_strength, pool,
                             pos_embed, **settings)
        return finish(model, pos_embed, attn_init)
    if tokenizer == "conv":
        if tokenizer_layers < 1:
            raise UsageError(f"model_args.tokenizer_layers must be at least 1, got {tokenizer_layers}")
        settings["patch_size"] = 2 ** tokenizer_layers  # the grid's reduction; any image size works
        settings["embed_layer"] = partial(small_data.ConvTokenizer, layers=tokenizer_layers)
    else:
        settings.setdefault("patch_size", default_patch_size(img_size))
        patch = settings["patch_size"]
        if any(side % patch for side in img_size):
            raise UsageError(f"image size {img_size[0]}x{img_size[1]} is not divisible by patch_size {patch}; "
                             "set model_args.patch_size to a divisor of the image size")
        if tokenizer == "convstem" and (patch < 2 or patch & (patch - 1)):
            raise UsageError(f"the convolutional stem halves the image per convolution, so patch_size must be a "
                             f"power of 2 (2, 4, 8...), got {patch}")
        if tokenizer != "patch":
            settings["embed_layer"] = {"spt": small_data.ShiftedPatchTokenizer,
                                       "convstem": small_data.ConvStem}[tokenizer]
    if attention == "lsa":
        settings["attn_layer"] = small_data.LocalitySelfAttention
    if pool != "token":
        if distilled:
            raise UsageError(f"DeiT's distillation token needs the class-token pooling, not pool={pool}; "
                             "distil this model without --dist-token (distill=soft or hard on its logits)")
        settings.update(class_token=False, global_pool="avg", fc_norm=False)  # final norm, then the pooling
    cls = VisionTransformerDistilled if distilled else VisionTransformer
    model = cls(img_size=img_size, in_chans=in_chans, num_classes=num_classes, drop_path_rate=drop_path,
                pos_embed="none" if pos_embed == "none" else "learn", **settings)
    if pool == "seq":
        model.attn_pool = small_data.SeqPool(model.embed_dim)
    if gpsa_blocks:
        from lowdata.models.gpsa import use_gpsa

        use_gpsa(model, gpsa_blocks, locality_strength)
    return finish(model, pos_embed, attn_init)


def finish(model: nn.Module, pos_embed: str, attn_init: str) -> nn.Module:
    from lowdata.models.attention_init import init_attention

    if pos_embed == "sincos":
        fix_sincos_position(model)
    init_attention(model, attn_init)
    return model


POS_EMBEDS = ("learn", "sincos", "none")


def fix_sincos_position(model: nn.Module) -> None:
    """The position embeddings as a fixed 2-D sin-cos table (a buffer under the same name, so no optimiser or
    unfreezing trains it and timm loads it into its own `pos_embed`); prefix tokens' positions zero."""
    from timm.layers import build_sincos2d_pos_embed

    grid = list(model.patch_embed.grid_size)
    table = build_sincos2d_pos_embed(grid, model.embed_dim)[None]  # (1, H*W, D)
    prefix = model.pos_embed.shape[1] - table.shape[1]
    table = torch.cat([table.new_zeros(1, prefix, model.embed_dim), table], dim=1)
    del model.pos_embed
    model.register_buffer("pos_embed", table)


def vit_preset(**defaults: Any):
    def build(num_classes: int, in_chans: int, img_size: tuple[int, int], drop_path: float, **overrides):
        return build_vit(num_classes, in_chans, img_size, drop_path, **{**defaults, **overrides})

    return build


VIT_TINY = dict(embed_dim=192, depth=9, num_heads=3, mlp_ratio=2.0)
# width 96, depth 4: a plain ViT of ResNet-20's and CCT-2's size (0.3M parameters), so a comparison of the three is
# one of inductive bias at equal size; the quick study's ViT (vit-tiny costs ~4x as much per image)
MODELS.register("vit-mini")(ModelSpec(vit_preset(embed_dim=96, depth=4, num_heads=3, mlp_ratio=2.0), "transformer",
                                      "ViT, width 96, depth 4, patch 4 at 32 px (ResNet-20's size)", drop_path=0.1,
                                      sized_args=grid_keeper("patch", 4)))
# depth 9, width 192, MLP ratio 2: the 2.7M-parameter ViT of the SPT/LSA small-dataset paper (3 heads of 64)
MODELS.register("vit-tiny")(ModelSpec(vit_preset(**VIT_TINY), "transformer",
                                      "ViT, width 192, depth 9, patch 4 at 32 px", drop_path=0.1,
                                      sized_args=grid_keeper("patch", 4)))
# DeiT-S widths at patch 4
MODELS.register("vit-small")(ModelSpec(vit_preset(embed_dim=384, depth=12, num_heads=6, mlp_ratio=4.0),
                                       "transformer", "ViT, width 384, depth 12, patch 4 at 32 px (DeiT-S size)",
                                       drop_path=0.1, sized_args=grid_keeper("patch", 4)))
# Beyer et al. 2022's plain-ViT hygiene: fixed 2-D sin-cos positions and global average pooling (no class token);
# at 1,000 CIFAR-10 labels, 60 epochs, 44.0 % against vit-tiny's 38.1 % (means of seeds 0-2,
# docs/results.md#issue-43)
MODELS.register("vit-tiny-simple")(ModelSpec(vit_preset(**VIT_TINY, pos_embed="sincos", pool="avg"), "transformer",
                                             "vit-tiny with fixed sin-cos positions and average pooling (Beyer et "
                                             "al. 2022)", drop_path=0.1, sized_args=grid_keeper("patch", 4)))
# Xiao et al. also drop one block to pay for the stem; at 32 px this stem costs ~5 % of one block, so none is
MODELS.register("vit-tiny-convstem")(ModelSpec(vit_preset(**VIT_TINY, tokenizer="convstem"), "transformer",
                                               "vit-tiny with early convolutions (Xiao et al. 2021) for patchify",
                                               drop_path=0.1, sized_args=grid_keeper("convstem", 4)))
MODELS.register("vit-tiny-sl")(ModelSpec(vit_preset(**VIT_TINY, tokenizer="spt", attention="lsa"), "transformer",
                                         "vit-tiny with shifted patches and locality self-attention (Lee et al. "
                                         "2021)", drop_path=0.1, sized_args=grid_keeper("spt", 4)))
# Hassani et al.'s CIFAR models: CCT-L/KxC = L layers, C conv-pool stages of kernel K; attention dropout 0.1
MODELS.register("cct-2/3x2")(ModelSpec(vit_preset(embed_dim=128, depth=2, num_heads=2, mlp_ratio=1.0,
                                                  tokenizer="conv", tokenizer_layers=2, pool="seq",
                                                  attn_drop_rate=0.1), "transformer",
                                       "Compact Convolutional Transformer, 2 layers, width 128, 2 conv stages",
                                       drop_path=0.1, sized_args=grid_keeper("conv", 4)))
MODELS.register("cct-7/3x1")(ModelSpec(vit_preset(embed_dim=256, depth=7, num_heads=4, mlp_ratio=2.0,
                                                  tokenizer="conv", tokenizer_layers=1, pool="seq",
                                                  attn_drop_rate=0.1), "transformer",
                                       "Compact Convolutional Transformer, 7 layers, width 256, 1 conv stage",
                                       drop_path=0.1, sized_args=grid_keeper("conv", 2)))


def use_fused_attention(model: nn.Module, fused: bool) -> int:
    """Switch timm's attention layers (their `fused_attn` flag) between the fused kernel and the explicit
    product; the weights and the maths are the same. Returns how many layers were switched."""
    layers = [module for module in model.modules() if hasattr(module, "fused_attn")]
    for layer in layers:
        layer.fused_attn = fused
    return len(layers)


# The model side of masked image modelling: what an objective needs to encode only some patches, so that
# objectives never reach into the ViT's layers themselves. timm's VisionTransformer has no masked forward.
def check_maskable(vit: nn.Module) -> None:
    """Masked image modelling hides whole patches, so each token must be computed from its own patch alone."""
    from timm.layers import PatchEmbed

    from timm.models.vision_transformer import VisionTransformer

    if isinstance(vit, nn.Module) and not isinstance(vit, VisionTransformer) and hasattr(vit, "patch_embed"):
        raise UsageError(f"masked image modelling encodes a ViT's visible patches alone; {type(vit).__name__} (gated "
                         "positional attention) reads the whole grid: use the preset without gpsa_blocks")
    if not isinstance(getattr(vit, "patch_embed", None), PatchEmbed):
        kind = type(getattr(vit, "patch_embed", vit)).__name__
        raise UsageError(f"masked image modelling needs tokens that each see only their own patch; this model's "
                         f"{kind} mixes neighbouring pixels into every token, so masked patches would leak into "
                         "the visible ones: use a patch-embedding ViT (vit-tiny, vit-tiny-simple, vit-small, or "
                         "vit-tiny with model_args.attention=lsa), or this model without masked modelling "
                         "(supervised, distillation, DRLoc)")


def patch_tokens(vit: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, L, D) patch embeddings with their position embeddings, no prefix tokens."""
    tokens = vit.patch_embed(images)
    return tokens + vit.pos_embed[:, vit.num_prefix_tokens:]


def encode_tokens(vit: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """Prepend the class token, if the ViT has one (with its position embedding), to some patch tokens (N, K, D)
    and run the blocks and the final norm: (N, P + K, D), P = 1 or 0."""
    if vit.num_prefix_tokens > 1 or getattr(vit, "no_embed_class", False):
        raise UsageError("masked image modelling needs a ViT preset with a class token or none (no distillation "
                         "token, no register tokens)")
    if vit.num_prefix_tokens:
        cls = (vit.cls_token + vit.pos_embed[:, :1]).expand(len(tokens), -1, -1)
        tokens = torch.cat([cls, tokens], dim=1)
    return vit.norm(vit.blocks(vit.norm_pre(tokens)))


def patch_grid(vit: nn.Module) -> tuple[int, int]:
    return tuple(vit.patch_embed.grid_size)


def patch_size(vit: nn.Module) -> int:
    return vit.patch_embed.patch_size[0]


def pooled_features(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Pooled pre-logit features (N, D) (timm's `forward_head(pre_logits=True)`) of images of any size the
    model's stride divides, e.g. the small local crops of self-distillation. A ViT's position embeddings are
    resampled to the images' token grid (timm's own `dynamic_img_size` path, switched on for this call only,
    so the model and its saved config stay as built); a CNN takes any size as it is."""
    from timm.models.vision_transformer import VisionTransformer

    embed = getattr(model, "patch_embed", None)
    if embed is None or tuple(images.shape[-2:]) == tuple(embed.img_size):
        return model.forward_head(model.forward_features(images), pre_logits=True)
    gated = any(hasattr(m, "rel_indices") for m in model.modules())  # offsets for square grids only
    square = images.shape[-1] == images.shape[-2] and embed.img_size[0] == embed.img_size[1]
    if not isinstance(model, VisionTransformer) or (gated and not square):
        height, width = embed.img_size
        raise UsageError(f"this model takes only its own {width}x{height} images (gated positional attention is "
                         f"built for its token grid), not {images.shape[-1]}x{images.shape[-2]} crops: set "
                         "dino.local_crops=0")
    grid = embed.dynamic_feat_size(tuple(images.shape[-2:]))
    strict, dynamic = getattr(embed, "strict_img_size", None), model.dynamic_img_size
    try:
        if strict is not None:
            embed.strict_img_size = False
        tokens = embed(images)  # (N, L, D) at this size
        model.dynamic_img_size = True  # timm's _pos_embed then resamples the position embeddings to `grid`
        x = model._pos_embed(tokens.reshape(len(images), *grid, tokens.shape[-1]))
    finally:
        model.dynamic_img_size = dynamic
        if strict is not None:
            embed.strict_img_size = strict
    x = model.norm(model.blocks(model.norm_pre(model.patch_drop(x))))
    return model.forward_head(x, pre_logits=True)
