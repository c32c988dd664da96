"""Progressive resolution: the first part of a schedule trains on its images resized down, the rest (and every
evaluation) at their own size (`low_res_size`, `low_res_fraction`; FixRes, Touvron et al. 2019, arXiv
1906.06423, on why the last epochs at full size matter; fast.ai's progressive resizing).

A CNN's cost and a conv tokenizer's grow with the pixels, a transformer's blocks with the tokens: 24 px instead
of 32 px is 0.56x the work of each early step. The model is unchanged (its weights, its saved config): the loop
hands the method `LowResolution(model)` for the early epochs, which resizes what the method feeds it. A ViT
reads the smaller token grid through timm's own position-embedding resampling (models/vit.py's
`pooled_features`); gated positional attention computes its offsets for the smaller square grid.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lowdata.errors import UsageError


class LowResolution(nn.Module):
    """`model` reading each batch resized so that its height is `size` (the aspect kept), antialiased."""

    def __init__(self, model: nn.Module, size: int) -> None:
        super().__init__()
        self.model, self.size = model, size

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        from lowdata.models.vit import pooled_features

        height, width = images.shape[-2:]
        small = F.interpolate(images, size=(self.size, round(width * self.size / height)), mode="bilinear",
                              antialias=True, align_corners=False)
        if getattr(self.model, "patch_embed", None) is None:  # a CNN takes any size as it is
            return self.model(small)
        return self.model.head(pooled_features(self.model, small))


def flops_ratio(model: nn.Module, size: int, example: torch.Tensor) -> float:
    """The model's FLOPs on `example` read at `size` over those at its own size (a run's cost counts its early
    epochs at this share: runs/cost.py)."""
    from lowdata.models.flops import flops_of

    return flops_of(lambda: LowResolution(model, size)(example), model) / flops_of(lambda: model(example), model)


def check_low_res(model: nn.Module, size: int, image_size: tuple[int, int], terms: list[str], epochs: int) -> None:
    """Refuse, before the run starts, what `LowResolution` cannot train (`epochs`: how many it would): one line
    each."""
    from timm.models.vision_transformer import VisionTransformer

    height, width = image_size
    if not epochs:
        raise UsageError("low_res_size needs at least 2 epochs: the first at the low resolution, the last at full "
                         "size; give more epochs or leave low_res_size unset")
    if size >= height:
        raise UsageError(f"low_res_size={size} is not below the images' height ({height} px); give a smaller "
                         "side, or leave low_res_size unset to train at full size throughout")
    if terms:
        raise UsageError(f"low_res_size trains the early epochs at another token grid than the auxiliary "
                         f"term{'s' if len(terms) > 1 else ''} {', '.join(terms)} read{'' if len(terms) > 1 else 's'}; "
                         "use one of the two")
    embed = getattr(model, "patch_embed", None)
    if embed is None:
        return
    if type(model) is not VisionTransformer:
        raise UsageError(f"low_res_size takes CNNs and ViT-family presets built on timm's VisionTransformer "
                         f"(cct-*, vit-*), not this {type(model).__name__}; leave low_res_size unset")
    stride = embed.patch_size[0]
    if size % stride:
        raise UsageError(f"low_res_size={size} is not divisible by the model's token stride ({stride} px); "
                         f"give a multiple of {stride}")
    if height != width and any(hasattr(module, "rel_indices") for module in model.modules()):
        raise UsageError("low_res_size with gated positional attention (gpsa_blocks) needs square images; "
                         "set image_size, or leave low_res_size unset")
