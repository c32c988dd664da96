"""RandAugment as timm's `rand-m9-mstd0.5-inc1` (DeiT's setting), batched: every image picks its own operations,
its own magnitude ~ N(m, std) clipped to [0, 10], and applies each picked operation with probability 0.5.

The operation list and magnitude ranges follow timm's "increasing" set (a larger magnitude is always a stronger
change). The batch is processed operation by operation on the images that picked it, so the cost does not grow
with the batch in Python.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from lowdata.augment import ops

MAX_LEVEL = 10.0


def signed(magnitude: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    flip = ops.coin(len(magnitude), 0.5, generator, magnitude.device)
    return torch.where(flip, -magnitude, magnitude)


def enhance_factor(level: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return 1.0 + signed(level / MAX_LEVEL * 0.9, generator)  # timm: [0.1, 1.9]


@dataclass(frozen=True)
class Operation:
    name: str
    apply: Callable[[torch.Tensor, torch.Tensor, torch.Generator, torch.Tensor], torch.Tensor]
    colour_only: bool = False  # meaningless on one-channel images


def _geometric(make_matrices):
    def apply(images, level, generator, fill):
        return ops.affine(images, make_matrices(level, generator), fill)
    return apply


OPERATIONS: list[Operation] = [
    Operation("AutoContrast", lambda x, m, g, f: ops.as_uint8_op(_autocontrast)(x)),
    Operation("Equalize", lambda x, m, g, f: ops.as_uint8_op(_equalize)(x)),
    Operation("Invert", lambda x, m, g, f: 255 - x),
    Operation("Rotate", _geometric(lambda m, g: ops.rotation_matrices(signed(m / MAX_LEVEL * 30, g)))),
    Operation("PosterizeIncreasing", lambda x, m, g, f: ops.posterize(x, 4 - (m / MAX_LEVEL * 4).long())),
    Operation("SolarizeIncreasing", lambda x, m, g, f: ops.solarize(x, 256 - (m / MAX_LEVEL * 256).long())),
    Operation("SolarizeAdd", lambda x, m, g, f: ops.solarize_add(x, (m / MAX_LEVEL * 110).long().float())),
    Operation("ColorIncreasing", lambda x, m, g, f: ops.saturation(x, enhance_factor(m, g)), colour_only=True),
    Operation("ContrastIncreasing", lambda x, m, g, f: ops.contrast(x, enhance_factor(m, g))),
    Operation("BrightnessIncreasing", lambda x, m, g, f: ops.brightness(x, enhance_factor(m, g))),
    Operation("SharpnessIncreasing", lambda x, m, g, f: ops.sharpness(x, enhance_factor(m, g))),
    Operation("ShearX", _geometric(lambda m, g: ops.shear_matrices(signed(m / MAX_LEVEL * 0.3, g), axis=0))),
    Operation("ShearY", _geometric(lambda m, g: ops.shear_matrices(signed(m / MAX_LEVEL * 0.3, g), axis=1))),
    Operation("TranslateXRel", _geometric(lambda m, g: ops.translate_matrices(signed(m / MAX_LEVEL * 0.45, g), 0))),
    Operation("TranslateYRel", _geometric(lambda m, g: ops.translate_matrices(signed(m / MAX_LEVEL * 0.45, g), 1))),
]


def _autocontrast(images: torch.Tensor) -> torch.Tensor:
    from torchvision.transforms.v2.functional import autocontrast

    return autocontrast(images)


def _equalize(images: torch.Tensor) -> torch.Tensor:
    from torchvision.transforms.v2.functional import equalize

    return equalize(images)


class RandAugment:
    def __init__(self, channels: int, fill: tuple[float, ...], num_ops: int = 2, magnitude: float = 9.0,
                 magnitude_std: float = 0.5, probability: float = 0.5) -> None:
        self.operations = [op for op in OPERATIONS if channels == 3 or not op.colour_only]
        self.skipped = [op.name for op in OPERATIONS if op not in self.operations]
        self.fill = torch.tensor(fill, dtype=torch.float32)
        self.num_ops, self.magnitude, self.magnitude_std, self.probability = num_ops, magnitude, magnitude_std, probability

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """float images in [0, 255], (N, C, H, W) -> the same."""
        n, device = images.shape[0], images.device
        fill = self.fill.to(device)
        for _ in range(self.num_ops):
            picks = torch.randint(0, len(self.operations), (n,), generator=generator,
                                  device=generator.device).to(device)
            applied = ops.coin(n, self.probability, generator, device)
            levels = self.magnitude + self.magnitude_std * torch.randn(n, generator=generator,
                                                                       device=generator.device).to(device)
            levels = levels.clamp(0, MAX_LEVEL)
            for index, op in enumerate(self.operations):
                chosen = ((picks == index) & applied).nonzero().squeeze(1)
                if len(chosen):
                    images[chosen] = op.apply(images[chosen], levels[chosen], generator, fill)
        return images

    def __repr__(self) -> str:
        return (f"RandAugment(num_ops={self.num_ops}, magnitude={self.magnitude}, std={self.magnitude_std}, "
                f"p={self.probability}, {len(self.operations)} operations)")
