"""Test-time augmentation (as airbench, Jordan 2024, arXiv 2404.00498): a model's logits averaged over fixed
views of each image — the image and its mirror (where a flip keeps the label), each also shifted by 2 pixels
up-left and down-right (reflected at the border). The views are fixed, not random, so evaluation stays
deterministic; the wrapper is a model, so every evaluator, eval and predict take it unchanged."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

SHIFT = 2


def tta_views(images: torch.Tensor, flip: bool) -> list[torch.Tensor]:
    """The fixed views of a batch (N, C, H, W): 3 shifts, each also mirrored when `flip`."""
    bases = [images, images.flip(-1)] if flip else [images]
    return [view for base in bases for view in (base, shift(base, -SHIFT), shift(base, SHIFT))]


def shift(images: torch.Tensor, pixels: int) -> torch.Tensor:
    """Content moved by `pixels` down and right (negative: up and left), the border reflected."""
    height, width = images.shape[-2:]
    padded = F.pad(images, (SHIFT, SHIFT, SHIFT, SHIFT), mode="reflect")
    top = SHIFT - pixels
    return padded[..., top:top + height, top:top + width]


class ViewAverage(nn.Module):
    """`model`, with its logits averaged over tta_views."""

    def __init__(self, model: nn.Module, flip: bool) -> None:
        super().__init__()
        self.model, self.flip = model, flip

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        views = tta_views(images, self.flip)
        logits = self.model(torch.cat(views))
        return logits.reshape(len(views), len(images), -1).mean(dim=0)
