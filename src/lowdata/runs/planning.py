"""What a run would compute per labelled image, before it exists: the objective the run would build, built
without its data (a stand-in of the data's shape, untrained stand-ins of the networks it would read), asked for
its `cost_parts`. The one cost model: a study's equal-compute plan (study/compute.py) and a finished run's
training cost (runs/cost.py) read the same parts."""
from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import torch

from lowdata.config import TrainConfig


def cost_per_labelled_image(settings: dict[str, Any], linked: dict[str, dict[str, Any]],
                            shape: tuple[int, int, int], num_classes: int) -> float:
    """Training FLOPs per labelled image drawn of a run with `settings` on images of `shape` (C, H, W): each
    network's FLOPs (passes included) times the images it reads per labelled one (a pool image per `pool_ratio`).
    `linked`: the setting a linked run fills (teacher, guidance.guide) -> that run's settings."""
    from lowdata.config import given_values
    from lowdata.data.types import Dataset, DatasetInfo
    from lowdata.models.factory import create_model
    from lowdata.objectives import MethodData, build_config, build_objective
    from lowdata.runs.cost import example_image
    from lowdata.runs.train import build_model, resolved

    placeholders = {setting: f"<{setting}>" for setting in linked}  # a link's run, named for the loader below
    filled = given_values(overrides=placeholders)
    config = build_config(TrainConfig, {**settings, **{k: {**settings.get(k, {}), **v} if isinstance(v, dict) else v
                                                       for k, v in filled.items()}})
    channels, size = shape[0], (shape[1], shape[2])
    info = DatasetInfo("plan", tuple(str(i) for i in range(num_classes)), channels, size, True, (0.5,) * channels,
                       (0.25,) * channels)
    config = resolved(config, size)
    cpu = torch.device("cpu")
    model = build_model(config, info)

    def stand_in(source: str, what: str, model_name: str | None) -> tuple[torch.nn.Module, str]:
        linked_config = build_config(TrainConfig, linked[source.strip("<>")])
        from lowdata.models import sized_model_args

        network = create_model(linked_config.model, num_classes=num_classes, in_chans=channels, img_size=size,
                               drop_path=0.0, **sized_model_args(linked_config.model, linked_config.model_args, size))
        return network, linked_config.model

    one = torch.zeros(1, channels, *size, dtype=torch.uint8)
    dataset = Dataset(info, one, torch.zeros(1, dtype=torch.long), one, torch.zeros(1, dtype=torch.long))
    data = MethodData(dataset, one if config.pool is not None else None, stand_in, planning=True)
    objective, _ = build_objective(config.objective, config, model, data, cpu, nullcontext)
    pool = config.pool_ratio if config.pool is not None else 0.0
    per_read = {"labelled": 1.0, "pool": pool, "both": 1.0 + pool}
    return float(sum(part.flops * per_read[part.reads] for part in objective.cost_parts(example_image(info, cpu))))
