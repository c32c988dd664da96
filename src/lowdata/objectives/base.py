"""The contract between the training loop and a method.

`objective(images, labels) -> StepOutput`; `objective.model` is what is optimised, saved and evaluated. The
loop never asks which method it runs: a new method is a new file here that registers a builder in
OBJECTIVES, `builder(config, model, dataset, device, autocast) -> (objective, what the summary should say)`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

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


ObjectiveBuilder = Callable[..., "tuple[Objective, dict[str, Any]]"]
OBJECTIVES: Registry[ObjectiveBuilder] = Registry("objective")


def build_objective(name: str, config: Any, model: nn.Module, dataset: Any, device: torch.device,
                    autocast: Callable[[], Any]) -> tuple[Objective, dict[str, Any]]:
    """The registered method `name`, built for this run."""
    load_methods()
    return OBJECTIVES.get(name)(config, model, dataset, device, autocast)


def load_methods() -> None:
    """Import every module of this package: each registers its methods when imported, so a new method is a
    new file and nothing else."""
    import importlib
    import pkgutil

    import lowdata.objectives as package

    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")
