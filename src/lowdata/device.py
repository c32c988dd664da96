"""What this machine runs well: the device and the autocast precision, chosen by what the hardware does.

The precision is the trap: on a CPU with AVX-512 BF16 (or AMX, or Arm's BF16 extension) bf16 autocast ran
matrix work 2-4x faster than fp32 here, while on an AVX2-only CPU it is emulated and ran 10-85x *slower*
(1024^2 matmul 0.2 vs 17 GFLOP/s; ResNet-20 step 3.3 vs 37 img/s). `precision: auto` therefore picks bf16 on
a CPU only where the instruction set has it, asks a short timed probe where the flags cannot tell (and
caches the answer), and on a GPU picks bf16 where it is supported, else fp16 with a gradient scaler.
"""
from __future__ import annotations

import platform
import statistics
import time
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

import torch

from lowdata.errors import UsageError, shown

PRECISIONS = ("auto", "bf16", "fp16", "fp32")
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # x86 /proc/cpuinfo flags
PROBE_SPEEDUP = 1.2  # bf16 must beat fp32 by this much in the probe to be chosen


@dataclass(frozen=True)
class Precision:
    name: str  # bf16, fp16 or fp32
    reason: str  # why it was picked, recorded with the run

    def autocast(self, device: torch.device) -> Callable[[], object]:
        """A factory of autocast contexts (a no-op one for fp32); weights stay fp32 under all three."""
        if self.name == "fp32":
            return nullcontext
        dtype = torch.bfloat16 if self.name == "bf16" else torch.float16
        return partial(torch.autocast, device_type=device.type, dtype=dtype)

    def fused_attention(self, device: torch.device) -> bool:
        """Whether attention should use PyTorch's fused scaled-dot-product kernel. On a CPU under bf16 autocast
        its backward took 44 ms per vit-tiny block at batch 128 against ~9 ms for the explicit softmax(QK^T)V
        (the whole step 1.7x faster without it); in fp32 the two ran alike; GPUs have flash kernels."""
        return device.type != "cpu" or self.name == "fp32"

    def grad_scaler(self, device: torch.device) -> torch.amp.GradScaler:
        """fp16's gradients underflow without loss scaling; for bf16 and fp32 the scaler is a pass-through."""
        return torch.amp.GradScaler(device.type, enabled=self.name == "fp16")


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"unknown device {shown(name)}; use auto, cpu or cuda[:N]") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError("device cuda was asked for but no GPU is visible; use device=cpu or device=auto")
    return device


def pick_precision(asked: str, device: torch.device) -> Precision:
    """`asked` is one of PRECISIONS; `auto` decides from the device (see the module's docstring)."""
    if asked not in PRECISIONS:
        raise UsageError(f"unknown precision {shown(asked)}; use {', '.join(PRECISIONS)}")
    if asked != "auto":
        if asked == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise UsageError("this GPU has no bf16 support; use precision=fp16 or precision=auto")
        return Precision(asked, "asked for")
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return Precision("bf16", f"{torch.cuda.get_device_name(device)} supports bf16")
        return Precision("fp16", f"{torch.cuda.get_device_name(device)} has no bf16: fp16 with loss scaling")
    if device.type == "cpu":
        native = cpu_native_bf16()
        if native is True:
            return Precision("bf16", "the CPU has native bf16 instructions")
        if native is False:
            return Precision("fp32", "the CPU has no native bf16 instructions (bf16 would be emulated)")
        return probed_cpu_precision()
    return Precision("fp32", f"autocast on {device.type} is not measured; fp32 is the safe choice")


def inference_autocast(device: torch.device):
    """The precision every evaluation and prediction runs in, whatever a run trained in: fp32, so that a run's
    summary, `lowdata eval`, predict, a teacher's reported accuracy and every export give the same numbers (bf16
    autocast moved probabilities by up to 0.004 and flipped 1 top-1 in 250 against the ONNX file)."""
    return pick_precision("fp32", device).autocast(device)


def cpu_native_bf16(cpuinfo: str | None = None) -> bool | None:
    """True or False when the CPU's feature flags say; None when they cannot (no /proc/cpuinfo, e.g. macOS)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return None
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key == "flags":  # x86
            return any(flag in value.split() for flag in NATIVE_BF16_FLAGS)
        if key == "features":  # Arm (Linux): the BF16 extension
            return "bf16" in value.split()
    return None


def machine_key(device: torch.device) -> str:
    """What a measurement here holds for (the probes' and the compile rates' cache keys): the GPU's name, or the
    CPU's architecture, name and capability; and torch's version."""
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else (
        f"{platform.machine()}|{platform.processor()}|{torch.backends.cpu.get_cpu_capability()}")
    return f"{where}|{torch.__version__}"


def probed_cpu_precision(cache: Path | None = None) -> Precision:
    """bf16 when a timed matmul under bf16 autocast beats fp32 by PROBE_SPEEDUP; the answer is cached per CPU
    and torch version, so the probe (about a second) runs once per machine."""
    from lowdata.io import cache_root, cached_measurement

    key = machine_key(torch.device("cpu"))
    speedup = cached_measurement(cache or cache_root() / "precision-probe.json", key, bf16_speedup)
    if speedup >= PROBE_SPEEDUP:
        return Precision("bf16", f"a timed probe found bf16 {speedup:.1f}x as fast as fp32 on this CPU")
    return Precision("fp32", f"a timed probe found bf16 only {speedup:.2f}x as fast as fp32 on this CPU")


def bf16_speedup(size: int = 256, rows: int = 512, repeats: int = 3) -> float:
    """fp32 time over bf16-autocast time of a linear layer the size of a small ViT's, interleaved, medians.
    Small on purpose: where bf16 is emulated one bf16 product takes about 0.3 s."""
    x, w = torch.randn(rows, size), torch.randn(size, size)
    times: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for _ in range(repeats + 1):  # the first round warms up the kernels and is dropped below
        for name in times:
            context = torch.autocast("cpu", dtype=torch.bfloat16) if name == "bf16" else nullcontext()
            with context:
                started = time.perf_counter()
                x @ w
                times[name].append(time.perf_counter() - started)
    return statistics.median(times["fp32"][1:]) / max(statistics.median(times["bf16"][1:]), 1e-9)
