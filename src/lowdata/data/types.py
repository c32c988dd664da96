"""What every dataset source produces: uint8 images with integer labels and a description of them (a leaf
module, so sources, the cache and in-memory data share these types without importing each other)."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    classes: tuple[str, ...]
    channels: int
    image_size: tuple[int, int]  # (height, width)
    hflip: bool  # whether a horizontal flip keeps the label (not for digits)
    mean: tuple[float, ...]  # per channel, on the 0..1 scale, from the training split
    std: tuple[float, ...]
    # how images deeper than 8 bits were mapped to 8 (imagefolder.choose_depth); None for 8-bit data
    depth: dict | None = None

    @property
    def num_classes(self) -> int:
        return len(self.classes)


@dataclass(frozen=True)
class Dataset:
    info: DatasetInfo
    train_images: torch.Tensor  # uint8 (N, C, H, W)
    train_labels: torch.Tensor  # int64 (N,)
    test_images: torch.Tensor
    test_labels: torch.Tensor


def make_info(name: str, classes, train_images: torch.Tensor, hflip: bool, depth: dict | None = None) -> DatasetInfo:
    mean, std = channel_stats(train_images)
    return DatasetInfo(name=name, classes=tuple(classes), channels=train_images.shape[1],
                       image_size=tuple(train_images.shape[2:]), hflip=hflip, mean=mean, std=std, depth=depth)


def channel_stats(images: torch.Tensor, chunk: int = 4096) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std on the 0..1 scale, in chunks so CIFAR does not need a 600 MB float copy."""
    total = torch.zeros(images.shape[1], dtype=torch.float64)
    squares = torch.zeros_like(total)
    for start in range(0, len(images), chunk):
        part = images[start:start + chunk].to(torch.float64) / 255
        total += part.sum(dim=(0, 2, 3))
        squares += part.square().sum(dim=(0, 2, 3))
    count = images.shape[0] * images.shape[2] * images.shape[3]
    mean = total / count
    std = (squares / count - mean.square()).clamp_min(1e-12).sqrt()
    return tuple(round(v, 6) for v in mean.tolist()), tuple(round(v, 6) for v in std.tolist())
