"""Multi-crop views for self-distillation (DINO, Caron et al. 2021, arXiv 2104.14294), batched on the device.

Two global crops at the image's size and `local_crops` small ones at `local_size`, each with its own area,
aspect ratio, flip and colours per image; the teacher sees the global crops only, the student all of them, so
it learns to answer for the whole image from a part of it. The colour steps are DINO's: jitter (brightness 0.4,
contrast 0.4, saturation 0.2; hue is left out, lowdata has no batched hue op) with probability 0.8, grayscale
0.2, Gaussian blur 1.0 / 0.1 / 0.5 on the first global / second global / local crops, solarisation 0.2 on the
second global crop. The blur's sigma is 0.1-1.0 pixels (DINO's 0.1-2.0 is for 224 px; 3aug uses the same range
here). The defaults for small images are Gani et al.'s (BMVC 2022, CIFAR): global crops 70-100 % of the image,
eight local crops of 20-50 % at half the side.

Input: the loop's normalised images (after the pretraining's `augment` policy); colour steps run on [0, 255]
pixels in between, so they mean what they mean on uint8 images.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from lowdata.augment import ops

RATIO = (3 / 4, 4 / 3)  # aspect ratios of a crop, as torchvision's RandomResizedCrop


@dataclass(frozen=True)
class MultiCrop:
    image_size: tuple[int, int]
    channels: int
    hflip: bool = True
    global_scale: tuple[float, float] = (0.7, 1.0)
    local_scale: tuple[float, float] = (0.2, 0.5)
    local_crops: int = 8
    local_size: tuple[int, int] | None = None  # None: half the image's side (at least 4 px)

    def __post_init__(self) -> None:
        for name, (low, high) in (("global_scale", self.global_scale), ("local_scale", self.local_scale)):
            if not 0 < low <= high <= 1:
                raise ValueError(f"{name} must be two area fractions 0 < low <= high <= 1, got {low}, {high}")
        if self.local_crops < 0:
            raise ValueError(f"local_crops must be 0 or more, got {self.local_crops}")
        if self.local_size is None:
            object.__setattr__(self, "local_size", tuple(max(4, side // 2) for side in self.image_size))

    def __call__(self, images: torch.Tensor, generator: torch.Generator, normalize: nn.Module
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(global crops (2N, C, H, W): first crops of all images, then second crops; local crops (L*N, C, h, w)
        in the same order, or None without local crops) of normalised images (N, C, H, W)."""
        pixels = normalize.inverse(images)
        first = self.view(pixels, self.global_scale, self.image_size, generator, blur=1.0, solarize=0.0)
        second = self.view(pixels, self.global_scale, self.image_size, generator, blur=0.1, solarize=0.2)
        globals_ = normalize(torch.cat([first, second]))
        if not self.local_crops:
            return globals_, None
        repeated = pixels.repeat(self.local_crops, 1, 1, 1)  # every image's L local crops drawn in one batch
        local = self.view(repeated, self.local_scale, self.local_size, generator, blur=0.5, solarize=0.0)
        return globals_, normalize(local)

    def view(self, pixels: torch.Tensor, scale: tuple[float, float], size: tuple[int, int],
             generator: torch.Generator, blur: float, solarize: float) -> torch.Tensor:
        n, device = len(pixels), pixels.device
        out = ops.random_resized_crop(pixels, scale, RATIO, generator, size=tuple(size))
        if self.hflip:
            out = ops.random_hflip(out, generator)
        out = where(ops.coin(n, 0.8, generator, device), self.jitter(out, generator), out)
        if self.channels == 3:
            out = where(ops.coin(n, 0.2, generator, device), ops.grayscale(out), out)
        if blur:
            sigma = ops.uniform(n, 0.1, 1.0, generator, device)
            out = where(ops.coin(n, blur, generator, device), ops.gaussian_blur(out, sigma, kernel_size=5), out)
        if solarize:
            out = where(ops.coin(n, solarize, generator, device),
                        ops.solarize(out, torch.full((n,), 128.0, device=device)), out)
        return out

    def jitter(self, pixels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n, device = len(pixels), pixels.device
        out = ops.brightness(pixels, ops.uniform(n, 0.6, 1.4, generator, device))
        out = ops.contrast(out, ops.uniform(n, 0.6, 1.4, generator, device))
        if self.channels == 3:
            out = ops.saturation(out, ops.uniform(n, 0.8, 1.2, generator, device))
        return out


def where(chosen: torch.Tensor, changed: torch.Tensor, kept: torch.Tensor) -> torch.Tensor:
    """Per image: `changed` where `chosen`, else `kept`."""
    return torch.where(ops.per_image(chosen), changed, kept)
