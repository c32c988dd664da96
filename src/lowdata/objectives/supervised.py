"""Cross-entropy with label smoothing; takes class indices or soft targets (rows summing to 1)."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from lowdata.objectives.base import Objective, StepOutput, register_method
from lowdata.objectives.guidance import NoGuidance, build_guidance, guidance_summary, with_guidance


class Supervised(Objective):
    def __init__(self, model: nn.Module, label_smoothing: float = 0.0, guidance: nn.Module | None = None) -> None:
        super().__init__()
        self.model = model
        self.label_smoothing = label_smoothing
        self.guidance = guidance or NoGuidance()  # feature guidance from a CNN (objectives/guidance.py), or none

    def trainable_extras(self) -> nn.Module | None:
        return self.guidance.projections if self.guidance.active else None

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> StepOutput:
        with self.guidance.capturing():
            logits = self.model(images)
        loss = F.cross_entropy(logits.float(), labels, label_smoothing=self.label_smoothing)
        return with_guidance(StepOutput(loss=loss, logits=logits), self.guidance.loss(images, len(images)))


@register_method("supervised")
def build_supervised(config, model: nn.Module, data, device, autocast) -> tuple[Objective, dict]:
    guidance = build_guidance(config, model, data.info, device, autocast) if getattr(config, "guide", None) else None
    return Supervised(model, config.label_smoothing, guidance), guidance_summary(guidance)
