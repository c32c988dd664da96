"""Cross-entropy with label smoothing; takes class indices or soft targets (rows summing to 1).

With the unlabelled pool and a term that reads it (feature guidance on pool images, objectives/terms.py), the
model also reads a strong view of the step's pool images, in the same forward pass as the labelled ones; the
label loss reads the labelled rows only.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from lowdata.objectives.base import Objective, StepOutput, register_method
from lowdata.objectives.pool import POOL_AUGMENT, PoolFeed, ReadsPool, pool_feed
from lowdata.sections import setting


@dataclass(frozen=True)
class SupervisedSettings:
    pool_augment: str = setting("strong", POOL_AUGMENT)


class Supervised(ReadsPool, Objective):
    carries_terms = True
    pool_for_terms = True  # it reads the pool only for the terms it carries
    pool_teacher = "no teacher: its terms alone read it"

    def __init__(self, model: nn.Module, label_smoothing: float = 0.0, feed: PoolFeed | None = None) -> None:
        super().__init__()
        self.model = model
        self.label_smoothing = label_smoothing
        self.feed, self.streams = feed, ("pool",) if feed is not None else ()

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> StepOutput:
        model_input, counts = images, {}
        if self.feed is not None:
            index = self.feed.pick(self.pool_per_step, self.pool_stream)
            with torch.autocast(images.device.type, enabled=False):  # the views at full precision, as the images
                model_input = torch.cat([images, self.feed.student_views(index, self.pool_stream, images.device)])
            counts = {"pool_images_read": len(index)}
        logits = self.model(model_input)
        if self.feed is not None:
            logits = logits[:len(images)]
        loss = F.cross_entropy(logits.float(), labels, label_smoothing=self.label_smoothing)
        return StepOutput(loss=loss, logits=logits, counts=counts, model_input=model_input)


@register_method("supervised", settings=SupervisedSettings)
def build_supervised(config, settings: SupervisedSettings, model: nn.Module, data, device, autocast
                     ) -> tuple[Objective, dict]:
    """Cross-entropy on the labels (label_smoothing)."""
    pool = getattr(data, "pool_images", None)  # read only for the terms it carries
    feed = pool_feed(settings.pool_augment, config.pool_ratio, data.info, pool, device) if pool is not None else None
    return Supervised(model, config.label_smoothing, feed), {}
