"""The random streams of a run: one seeded torch.Generator per purpose, so that the same seed gives the same
subset order, the same augmentations and the same masks, and each stream can be checkpointed on its own."""
from __future__ import annotations

import hashlib

import torch


def stream_seed(seed: int, stream: str) -> int:
    """Independent, reproducible seeds for each random stream of one run."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{stream}".encode()).digest()[:8], "little") & (2**63 - 1)


def make_generators(seed: int, device: torch.device, names: tuple[str, ...]) -> dict[str, torch.Generator]:
    """`order` indexes data held on the CPU and lives there; every other stream draws on `device`."""
    return {name: torch.Generator(device="cpu" if name == "order" else device).manual_seed(stream_seed(seed, name))
            for name in names}
