"""A run's training cost: each network's FLOPs per image (the method's CostParts, objectives/cost.py) times the
images it read, beside the wall seconds, the device and the CPU capability they were measured on."""
from __future__ import annotations

from typing import Any

import torch

from lowdata.objectives.cost import TRAINED, CostPart


def example_image(info, device: torch.device) -> torch.Tensor:
    """One image of the data's shape (the FLOP count does not depend on its pixels)."""
    return torch.zeros(1, info.channels, *info.image_size, device=device)


def training_cost(parts: list[CostPart], result: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """The summary's cost fields, from the loop's result: `images_seen` labelled images (pretraining: all its
    images) over the run, `pool_images_read` pool images; `train_seconds` is already the summary's."""
    seen_labelled, seen_pool = int(result["images_seen"]), int(result.get("pool_images_read", 0))
    seen = {"labelled": seen_labelled, "pool": seen_pool, "both": seen_labelled + seen_pool}
    model = next((part.flops for part in parts if part.name == "model"), 0)
    return {"train_flops": sum(part.flops * seen[part.reads] for part in parts),
            "model_flops": model // TRAINED,  # one forward pass of the trained model, as `lowdata models` says
            "flops_per_image": {part.name: part.flops for part in parts},  # passes included (3: trained)
            "images_seen": seen_labelled, "pool_images_seen": seen_pool,
            "cpu_capability": torch.backends.cpu.get_cpu_capability()}
