"""The order in which one epoch visits the labelled images, with DeiT's repeated augmentation as an option.

Repeated augmentation (Hoffer et al. 2020; DeiT's `RASampler`): each drawn image appears `repeats` times in a
row, so one batch holds several differently augmented views of it, and an epoch keeps its length by drawing
n / repeats distinct images. Written here rather than taken from DeiT or timm because theirs are
`DistributedSampler`s over a Dataset, while the loop indexes in-memory tensors with its own generator.
"""
from __future__ import annotations

import math

import torch


def epoch_order(n: int, generator: torch.Generator, repeats: int = 1, rank: int = 0,
                world_size: int = 1) -> torch.Tensor:
    """Indices into the n labelled images for this process's share of one epoch.

    With `world_size` processes (DDP), every rank draws the same permutation from an identically seeded
    generator and takes every world_size-th index, so the copies of one image land on different ranks, as in
    DeiT. Each rank gets ceil(n / world_size) indices; the list wraps around where n does not divide.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be 1 or more, got {repeats}")
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is outside a world of {world_size}")
    per_rank = math.ceil(n / world_size)
    total = per_rank * world_size
    order = torch.randperm(n, generator=generator)
    if repeats > 1:
        order = order[:math.ceil(total / repeats)].repeat_interleave(repeats)
    if len(order) < total:  # tiny budgets: wrap around so every rank gets a full share
        order = order.repeat(math.ceil(total / len(order)))
    return order[:total][rank::world_size]
