"""Try every unit's settings before a study starts, so a typo in one recipe fails in seconds, before the plan
is saved, rather than hours later when its first cell comes up."""
from __future__ import annotations

import json
from typing import Any

from lowdata.data.datasets import Dataset, keep_classes
from lowdata.study.plan import Plan

PER_CELL = ("labels", "labels_per_class", "seed", "epochs", "eval_every")  # vary within a recipe; checked by the plan


def check_units(plan: Plan, dataset: Dataset) -> None:
    """Build each distinct unit's config, augmentation policy and model; raises the UsageError a run would."""
    from lowdata.augment import build_policy
    from lowdata.config import TrainConfig
    from lowdata.objectives import build_config as build
    from lowdata.models import create_model
    from lowdata.config import PretrainConfig

    seen: set[str] = set()
    for unit in [*plan.stages, *plan.cells]:
        pretraining = getattr(unit, "kind", "train") == "pretrain"
        settings = {key: value for key, value in unit.settings.items() if key not in PER_CELL}
        key = json.dumps([pretraining, settings], sort_keys=True, default=str)
        if key in seen:
            continue
        seen.add(key)
        config: Any = build(PretrainConfig if pretraining else TrainConfig, unit.settings)
        info = keep_classes(dataset, getattr(config, "classes", None)).info
        build_policy(config.augment, info, **config.augment_args)
        create_model(config.model, num_classes=info.num_classes, in_chans=info.channels, img_size=info.image_size,
                     **config.model_args)
