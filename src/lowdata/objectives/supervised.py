"""Cross-entropy with label smoothing; takes class indices or soft targets (rows summing to 1)."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from lowdata.objectives.base import Objective, StepOutput, register_method


class Supervised(Objective):
    def __init__(self, model: nn.Module, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.model = model
        self.label_smoothing = label_smoothing

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> StepOutput:
        logits = self.model(images)
        loss = F.cross_entropy(logits.float(), labels, label_smoothing=self.label_smoothing)
        return StepOutput(loss=loss, logits=logits)


@register_method("supervised")
def build_supervised(config, model: nn.Module, data, device, autocast) -> tuple[Objective, dict]:
    return Supervised(model, label_smoothing=config.label_smoothing), {}
