"""A frozen network run only for what it says (a distillation teacher, a feature guide): in eval mode, without
gradients, in inference mode, and in the memory layout that measures faster for it on this machine.

The layout is the one free win for a CNN teacher on a CPU: oneDNN's convolutions run channels-last (NHWC)
without the reorders they pay on PyTorch's default NCHW. Measured for resnet20's forward on 128 CIFAR images
(AVX512 EPYC, bf16 autocast, alone): channels-last 1.35x as fast at one thread (a study's workers), 1.07-1.21x
at two -- but which layout wins depends on the CPU kind, the precision and the network, so a short timed probe
(at the threads the process has when the teacher loads) decides the first time a machine, torch version,
network family and precision are seen, and the answer is cached beside the precision probe's. Networks without
convolutions keep the default layout, unprobed.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

LAYOUTS = {"channels_last": torch.channels_last, "contiguous": torch.contiguous_format}
PROBE_SPEEDUP = 1.05  # channels-last must beat the default layout by this much in the probe to be chosen
PROBE_BATCH = 128  # a training batch: at 64 images the layouts' times were within the noise


@dataclass(frozen=True)
class Layout:
    name: str  # channels_last or contiguous
    reason: str  # why, recorded in the run's summary

    @property
    def memory_format(self) -> torch.memory_format:
        return LAYOUTS[self.name]


class Frozen(nn.Module):
    """`network` frozen, in `layout`: calls return ordinary tensors (usable as loss targets) computed in
    inference mode."""

    def __init__(self, network: nn.Module, layout: Layout, input_size: tuple[int, int] | None = None) -> None:
        super().__init__()
        self.network = network.eval().requires_grad_(False).to(memory_format=layout.memory_format)
        self.layout = layout
        self.input_size = input_size  # (H, W) it was trained at, where not the data's: its input is resized

    def train(self, mode: bool = True) -> "Frozen":
        return super().train(False)  # dropout off, batch-norm statistics as trained, whatever the caller asks

    def own_view(self, images: torch.Tensor) -> torch.Tensor:
        """The images at the network's own resolution (bilinear, antialiased where it shrinks: timm's and
        torchvision's resize), in its memory layout; the student's pipeline is untouched."""
        if self.input_size is not None and tuple(images.shape[-2:]) != self.input_size:
            images = F.interpolate(images, size=self.input_size, mode="bilinear", align_corners=False,
                                   antialias=True)
        return images.contiguous(memory_format=self.layout.memory_format)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), torch.profiler.record_function("lowdata.frozen"):
            out = self.network(self.own_view(images))
        return out.clone()  # an inference tensor cannot be saved for a backward pass; a copy can

    def forward_intermediates(self, images: torch.Tensor, **kwargs) -> list[torch.Tensor]:
        with torch.inference_mode(), torch.profiler.record_function("lowdata.frozen"):
            maps = self.network.forward_intermediates(self.own_view(images), **kwargs)
        return [m.clone() for m in maps]


def freeze(network: nn.Module, image_shape: tuple[int, int, int], device: torch.device,
           autocast: Callable[[], object], cache: Path | None = None) -> Frozen:
    """`network` frozen on `device` in the layout `pick_layout` finds faster for it; a network that carries an
    `input_size` of its own (models/loading.py) is probed, and run, at that size."""
    network = network.to(device).eval().requires_grad_(False)
    size = getattr(network, "input_size", None)
    if size is not None:
        image_shape = (image_shape[0], *size)
    return Frozen(network, pick_layout(network, image_shape, device, autocast, cache), size)


def pick_layout(network: nn.Module, image_shape: tuple[int, int, int], device: torch.device,
                autocast: Callable[[], object], cache: Path | None = None) -> Layout:
    """Channels-last when the network has convolutions and a timed forward pass in it beats the default
    layout by PROBE_SPEEDUP; the answer is cached per machine, torch version, network family, precision and (on a
    CPU) the threads the process has when the teacher loads."""
    if not any(isinstance(m, nn.Conv2d) for m in network.modules()):
        return Layout("contiguous", "no convolutions: the default layout")
    from lowdata.device import machine_key
    from lowdata.io import cache_root, cached_measurement

    path = cache or cache_root() / "layout-probe.json"
    with autocast():
        precision = str(torch.get_autocast_dtype(device.type)) if torch.is_autocast_enabled(device.type) else "fp32"
    # on a CPU the threads too: channels-last measured 1.07x at 2 threads, 1.35x at 1 (2-core AVX512 EPYC)
    threads = "" if device.type == "cuda" else f"|{torch.get_num_threads()} threads"
    key = f"{machine_key(device)}|{type(network).__name__}|{precision}{threads}"
    speedup = cached_measurement(path, key, lambda: channels_last_speedup(network, image_shape, device, autocast))
    if speedup >= PROBE_SPEEDUP:
        return Layout("channels_last", f"a timed probe found channels-last {speedup:.2f}x as fast here")
    return Layout("contiguous", f"a timed probe found channels-last only {speedup:.2f}x as fast here")


def channels_last_speedup(network: nn.Module, image_shape: tuple[int, int, int], device: torch.device,
                          autocast: Callable[[], object], repeats: int = 5) -> float:
    """Default-layout time over channels-last time of the network's forward pass on PROBE_BATCH random images
    (interleaved, the fastest of `repeats` each, after a warm-up round: the fastest is the least disturbed by other
    work on the machine, and the answer is kept). Leaves the network in the default layout."""
    # its own generator: drawing from the global one would change the run's dropout after a first probe only
    generator = torch.Generator(device=device).manual_seed(0)
    images = torch.randn(PROBE_BATCH, *image_shape, device=device, generator=generator)
    times: dict[str, list[float]] = {name: [] for name in LAYOUTS}
    for _ in range(repeats + 1):
        for name, memory_format in LAYOUTS.items():
            network.to(memory_format=memory_format)
            batch = images.contiguous(memory_format=memory_format)
            with torch.inference_mode(), autocast():
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                started = time.perf_counter()
                network(batch)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                times[name].append(time.perf_counter() - started)
    network.to(memory_format=torch.contiguous_format)
    return min(times["contiguous"][1:]) / max(min(times["channels_last"][1:]), 1e-9)
