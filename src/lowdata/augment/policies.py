"""Augmentation policies on batched uint8 tensors (N, C, H, W), on the training device.

torchvision's v2 transforms draw one set of parameters per call, so on a batch every image would get the same
crop; the batched crop below draws a separate offset per image from the caller's generator instead.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from lowdata.data.datasets import DatasetInfo
from lowdata.registry import Registry

# A policy maps (uint8 images, generator) -> uint8 images of the same shape.
Policy = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
POLICIES: Registry[Callable[[DatasetInfo], Policy]] = Registry("augmentation policy")


def build_policy(name: str, info: DatasetInfo) -> Policy:
    return POLICIES.get(name)(info)


@POLICIES.register("none")
def no_augmentation(info: DatasetInfo) -> Policy:
    return lambda images, generator: images


@POLICIES.register("basic")
def basic(info: DatasetInfo) -> Policy:
    """Pad-and-random-crop (padding 1/8 of the side, 4 px at 32) and, where labels allow, a horizontal flip."""
    padding = max(1, min(info.image_size) // 8)

    def apply(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        images = random_crop(images, padding, generator)
        return random_hflip(images, generator) if info.hflip else images

    return apply


def random_crop(images: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Zero-pad by `padding` and cut each image at its own random offset."""
    n, c, h, w = images.shape
    padded = nn.functional.pad(images, (padding, padding, padding, padding))
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=generator.device).to(images.device)
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=generator.device).to(images.device)
    rows = (dy[:, None] + torch.arange(h, device=images.device))[:, None, :, None].expand(n, c, h, w + 2 * padding)
    padded = padded.gather(2, rows)
    cols = (dx[:, None] + torch.arange(w, device=images.device))[:, None, None, :].expand(n, c, h, w)
    return padded.gather(3, cols)


def random_hflip(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    flip = torch.rand(images.shape[0], generator=generator, device=generator.device).to(images.device) < 0.5
    return torch.where(flip[:, None, None, None], images.flip(-1), images)


class Normalize(nn.Module):
    """uint8 images -> float, standardised with the training split's per-channel statistics."""

    def __init__(self, info: DatasetInfo) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(info.mean).view(1, -1, 1, 1) * 255, persistent=False)
        self.register_buffer("std", torch.tensor(info.std).view(1, -1, 1, 1) * 255, persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return (images.float() - self.mean) / self.std
