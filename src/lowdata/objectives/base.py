"""The contract between the training loop and a method.

`objective(images, labels) -> StepOutput`; `objective.model` is what is optimised, saved and evaluated. The
loop never asks which method it runs: a new method is a new file here.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from lowdata.registry import Registry


@dataclass
class StepOutput:
    loss: torch.Tensor
    logits: torch.Tensor | None = None
    # per-step figures as 0-d tensors (no device sync); the loop writes their epoch means to the metrics
    logs: dict[str, torch.Tensor] = field(default_factory=dict)


class Objective(nn.Module):
    model: nn.Module

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> StepOutput:  # pragma: no cover
        raise NotImplementedError

    def use_streams(self, streams: dict[str, torch.Generator]) -> None:
        """Take this epoch's random streams (this rank's, under torchrun), by the run's generator names; a
        method that draws its own randomness (MAE's masks) picks its stream here. Nothing by default."""

    def write_figures(self, run_dir, images: torch.Tensor, normalize: nn.Module) -> None:
        """Figures a method draws at the end of a run (MAE: reconstructions); none by default."""


OBJECTIVES: Registry[type] = Registry("objective")
