"""Augmentation policies: named recipes that turn a batch of uint8 images and class labels, on the training
device, into normalised float images and targets (class indices, or soft targets after Mixup/CutMix).

    policy = build_policy("strong", info)                  # or with overrides: build_policy("strong", info, mixup=0.2)
    images, targets = policy(uint8_images, labels, generator)

A policy is three stages: pixel operations on [0, 255] floats, normalisation, then operations on the normalised
tensor (random erasing) and mixing. Operations that make no sense for the data (colour on one-channel images, a
flip where orientation carries the label) are left out and listed in `policy.notes`, which training prints.
"""
from __future__ import annotations

import inspect
from typing import Callable

import torch
from torch import nn

from lowdata.augment import ops
from lowdata.augment.mixing import MixupCutmix, NoMixing
from lowdata.augment.randaugment import RandAugment
from lowdata.data.datasets import DatasetInfo
from lowdata.errors import UsageError, shown
from lowdata.registry import Registry

# (float images in [0, 255], generator) -> images; or, after normalisation, the same on normalised images
Operation = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
POLICIES: Registry[Callable[..., "Policy"]] = Registry("augmentation policy")


class Normalize(nn.Module):
    """uint8 (or [0, 255] float) images -> float, standardised with the training split's per-channel statistics."""

    def __init__(self, info: DatasetInfo) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(info.mean).view(1, -1, 1, 1) * 255, persistent=False)
        self.register_buffer("std", torch.tensor(info.std).view(1, -1, 1, 1) * 255, persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return (images.float() - self.mean) / self.std

    def inverse(self, images: torch.Tensor) -> torch.Tensor:
        return images * self.std + self.mean


class Policy:
    def __init__(self, name: str, info: DatasetInfo, pixel_ops: list[tuple[str, Operation]],
                 tensor_ops: list[tuple[str, Operation]] = (), mixing=None, notes: list[str] = ()) -> None:
        self.name, self.info = name, info
        self.pixel_ops, self.tensor_ops = list(pixel_ops), list(tensor_ops)
        self.mixing = mixing or NoMixing()
        self.notes = list(notes)
        self.normalize = Normalize(info)

    def to(self, device: torch.device) -> "Policy":
        self.normalize = self.normalize.to(device)
        return self

    def float_pixels(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        out = images.to(torch.float32, copy=True)  # operations may write into their input
        for _, op in self.pixel_ops:
            out = op(out, generator)
        return out

    def __call__(self, images: torch.Tensor, labels: torch.Tensor, generator: torch.Generator):
        out = self.normalize(self.float_pixels(images, generator))
        for _, op in self.tensor_ops:
            out = op(out, generator)
        return self.mixing(out, labels, generator)

    def describe(self) -> str:
        steps = [name for name, _ in self.pixel_ops] + ["normalize"] + [name for name, _ in self.tensor_ops]
        if not isinstance(self.mixing, NoMixing):
            steps.append(repr(self.mixing))
        return f"{self.name}: " + " -> ".join(steps)


def build_policy(name: str, info: DatasetInfo, **args) -> Policy:
    builder = POLICIES.get(name)
    accepted = [p for p in inspect.signature(builder).parameters if p != "info"]
    unknown = sorted(set(args) - set(accepted))
    if unknown:
        valid = ", ".join(accepted) if accepted else "none"
        raise UsageError(f"augmentation policy {shown(name)} has no setting {', '.join(unknown)}; "
                         f"its settings: {valid}")
    parameters = inspect.signature(builder).parameters
    for key, value in args.items():
        default = parameters[key].default
        if is_number(default) and not is_number(value):
            raise UsageError(f"augmentation policy {shown(name)}: {key} must be a number, got {shown(value)}; e.g. "
                             f"{key}={default}")
    try:
        return builder(info, **args)
    except (TypeError, ValueError) as err:
        raise UsageError(f"augmentation policy {shown(name)} rejected {', '.join(f'{k}={v}' for k, v in args.items())} "
                         f"({err}); see `lowdata augment-preview --help`") from None


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@POLICIES.register("none")
def no_augmentation(info: DatasetInfo) -> Policy:
    return Policy("none", info, [])


@POLICIES.register("basic")
def basic(info: DatasetInfo, crop: str = "pad", crop_scale: float = 0.35) -> Policy:
    """Pad-and-random-crop (padding 1/8 of the side) or random-resized-crop, and a horizontal flip where the
    dataset allows it."""
    notes: list[str] = []
    return Policy("basic", info, crop_and_flip(info, crop, crop_scale, notes), notes=notes)


@POLICIES.register("strong")
def strong(info: DatasetInfo, crop: str = "pad", crop_scale: float = 0.35, num_ops: int = 2,
           magnitude: float = 9.0, magnitude_std: float = 0.5, mixup: float = 0.8, cutmix: float = 1.0,
           switch_prob: float = 0.5, mix_prob: float = 1.0, erasing: float = 0.25) -> Policy:
    """DeiT's recipe at small sizes: crop + flip, RandAugment m9 (std 0.5), random erasing 0.25, Mixup 0.8 /
    CutMix 1.0 switching per batch. Label smoothing 0.1 and stochastic depth come from the training settings."""
    notes: list[str] = []
    pixel_ops = crop_and_flip(info, crop, crop_scale, notes)
    randaugment = RandAugment(info.channels, tuple(m * 255 for m in info.mean), num_ops, magnitude, magnitude_std)
    if randaugment.skipped:
        notes.append(f"RandAugment leaves out {', '.join(randaugment.skipped)} on one-channel images")
    pixel_ops.append((repr(randaugment), randaugment))
    tensor_ops = erasing_ops(erasing)
    return Policy("strong", info, pixel_ops, tensor_ops, mixing_for(info, mixup, cutmix, switch_prob, mix_prob),
                  notes)


@POLICIES.register("3aug")
def three_augment(info: DatasetInfo, crop: str = "pad", crop_scale: float = 0.35, jitter: float = 0.3,
                  mixup: float = 0.8, cutmix: float = 1.0, switch_prob: float = 0.5, mix_prob: float = 1.0,
                  erasing: float = 0.0) -> Policy:
    """DeiT III's three-augment: crop + flip, then per image one of grayscale / solarize / Gaussian blur, then
    colour jitter; Mixup/CutMix as in `strong`, no random erasing by default."""
    notes: list[str] = []
    pixel_ops = crop_and_flip(info, crop, crop_scale, notes)
    choices: list[tuple[str, Callable]] = [
        ("grayscale", lambda x, g: ops.grayscale(x)),
        ("solarize", lambda x, g: ops.solarize(x, torch.full((len(x),), 128.0, device=x.device))),
        ("blur", lambda x, g: ops.gaussian_blur(x, ops.uniform(len(x), 0.1, 1.0, g, x.device), kernel_size=5)),
    ]
    if info.channels == 1:
        choices = choices[1:]
        notes.append("3aug picks between solarize and blur only: grayscale does nothing to one-channel images")
    pixel_ops.append((f"one of {'/'.join(name for name, _ in choices)}", one_of(choices)))
    if jitter > 0:
        pixel_ops.append((f"colour jitter {jitter}", colour_jitter(jitter, info.channels)))
        if info.channels == 1:
            notes.append("colour jitter varies brightness and contrast only on one-channel images")
    return Policy("3aug", info, pixel_ops, erasing_ops(erasing),
                  mixing_for(info, mixup, cutmix, switch_prob, mix_prob), notes)


def crop_and_flip(info: DatasetInfo, crop: str, crop_scale: float, notes: list[str]) -> list[tuple[str, Operation]]:
    side = min(info.image_size)
    if crop == "pad":
        padding = max(1, side // 8)
        steps = [(f"pad {padding} + random crop", lambda x, g: ops.random_crop(x, padding, g))]
    elif crop == "resized":
        if not 0 < crop_scale <= 1:
            raise ValueError(f"crop_scale must be in (0, 1], got {crop_scale}")
        steps = [(f"random resized crop (scale {crop_scale}-1)",
                  lambda x, g: ops.random_resized_crop(x, (crop_scale, 1.0), (3 / 4, 4 / 3), g))]
    elif crop == "none":
        steps = []
    else:
        raise ValueError(f"crop must be pad, resized or none, got {crop!r}")
    if info.hflip:
        steps.append(("horizontal flip", ops.random_hflip))
    else:
        notes.append(f"no horizontal flip: {info.name} marks its images as orientation-sensitive")
    return steps


def one_of(choices: list[tuple[str, Callable]]) -> Operation:
    def apply(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        picks = torch.randint(0, len(choices), (len(images),), generator=generator,
                              device=generator.device).to(images.device)
        for index, (_, op) in enumerate(choices):
            chosen = (picks == index).nonzero().squeeze(1)
            if len(chosen):
                images[chosen] = op(images[chosen], generator)
        return images
    return apply


def colour_jitter(strength: float, channels: int) -> Operation:
    def apply(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n, device = len(images), images.device
        images = ops.brightness(images, ops.uniform(n, 1 - strength, 1 + strength, generator, device))
        images = ops.contrast(images, ops.uniform(n, 1 - strength, 1 + strength, generator, device))
        if channels == 3:
            images = ops.saturation(images, ops.uniform(n, 1 - strength, 1 + strength, generator, device))
        return images
    return apply


def erasing_ops(probability: float) -> list[tuple[str, Operation]]:
    if not 0 <= probability <= 1:
        raise ValueError(f"erasing is a probability in [0, 1], got {probability}")
    if probability == 0:
        return []
    return [(f"random erasing {probability}", lambda x, g: ops.random_erasing(x, probability, g))]


def mixing_for(info: DatasetInfo, mixup: float, cutmix: float, switch_prob: float, mix_prob: float):
    if mixup <= 0 and cutmix <= 0 or mix_prob <= 0:
        return NoMixing()
    return MixupCutmix(info.num_classes, mixup, cutmix, switch_prob, mix_prob)
