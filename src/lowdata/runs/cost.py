"""A run's training cost: each network's FLOPs per image (the method's CostParts, objectives/cost.py) times the
images it read, beside the wall seconds, the device and the CPU capability they were measured on."""
from __future__ import annotations

from typing import Any

import torch

from lowdata.objectives.cost import TRAINED, CostPart


def example_image(info, device: torch.device) -> torch.Tensor:
    """One image of the data's shape (the FLOP count does not depend on its pixels)."""
    return torch.zeros(1, info.channels, *info.image_size, device=device)


def training_cost(parts: list[CostPart], result: dict[str, Any], device: torch.device,
                  low_res: tuple[float, float] | None = None) -> dict[str, Any]:
    """The summary's cost fields, from the loop's result: `images_seen` labelled images (pretraining: all its
    images) over the run, `pool_images_read` pool images; `train_seconds` is already the summary's. `low_res`:
    (the share of the epochs the model trained at a lower resolution, its FLOPs there over full size's)."""
    seen_labelled, seen_pool = int(result["images_seen"]), int(result.get("pool_images_read", 0))
    seen = {"labelled": seen_labelled, "pool": seen_pool, "both": seen_labelled + seen_pool}
    model = next((part.flops for part in parts if part.name == "model"), 0)
    share, ratio = low_res or (0.0, 1.0)
    scale = {"model": 1 - share + share * ratio}  # a teacher reads every image at its own size throughout
    return {"train_flops": round(sum(part.flops * seen[part.reads] * scale.get(part.name, 1) for part in parts)),
            "model_flops": model // TRAINED,  # one forward pass of the trained model, as `lowdata models` says
            "flops_per_image": {part.name: part.flops for part in parts},  # passes included (3: trained)
            "images_seen": seen_labelled, "pool_images_seen": seen_pool,
            "cpu_capability": torch.backends.cpu.get_cpu_capability()}
