"""The contract between the training loop and a method.

`objective(images, labels) -> StepOutput`; `objective.model` is what is optimised, saved and evaluated. The
loop never asks which method it runs: a new method is a new file here that registers its builder in the one
registry, `@register_method(name, reads_labels=...)` on `builder(config, model, dataset, device, autocast) ->
(objective, what the summary should say)`. `lowdata train` builds methods that read labels (its `objective`
setting), `lowdata pretrain --method NAME` those that do not (self-supervised; `model` is then the encoder).
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
    # whole numbers this step added on this rank (e.g. pool images read); the loop keeps their totals over the run
    counts: dict[str, int] = field(default_factory=dict)


class Objective(nn.Module):
    model: nn.Module
    streams: tuple[str, ...] = ()  # the random streams the method draws from besides the loop's (MAE: "mask")

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> StepOutput:  # pragma: no cover
        raise NotImplementedError

    def use_batch_size(self, batch_size: int) -> None:
        """The loop's images per step on this rank, told once before the first step (a method that adds its own
        images to each step, as the pool does, sizes its share by it). Nothing by default."""

    def trainable_extras(self) -> nn.Module | None:
        """Parts the method trains beside its model (feature guidance's projections): optimised and checkpointed
        with the run, never part of the exported model. None by default."""
        return None

    def kept_state(self) -> nn.Module | None:
        """What a checkpoint keeps of the method besides the model (state.safetensors, `objective.*`), restored
        on `--resume`: its trainable extras by default; a method with state of its own (an EMA teacher, a
        per-image learning status) returns a module holding that too."""
        return self.trainable_extras()

    def weights_average(self) -> nn.Module | None:
        """An average of the model's weights that the method reads itself (DINO's momentum teacher): the run
        hands it to the loop as its EMA, which updates it after every optimiser step, evaluates, checkpoints it
        and gives it to `--init`. None by default (the run's own `ema_decay` decides)."""
        return None

    def begin_epoch(self, epoch: int) -> None:
        """Told at the start of each epoch (0-based; again for an epoch a resume continues), for a method whose
        behaviour changes with the epoch (the EMA teacher taking over from a CNN). Nothing by default."""

    def fingerprint_tensors(self) -> list[torch.Tensor]:
        """Data the method trains on besides the labelled images (the pool's images), so that `--resume` on
        changed data is refused. None by default."""
        return []

    def use_streams(self, streams: dict[str, torch.Generator]) -> None:
        """Take this epoch's random streams (this rank's, under torchrun), by the run's generator names; a
        method that draws its own randomness (MAE's masks) picks its stream here. Nothing by default."""

    def write_figures(self, run_dir, images: torch.Tensor, normalize: nn.Module) -> None:
        """Figures a method draws at the end of a run (MAE: reconstructions); none by default."""

    def cost_parts(self, example: torch.Tensor) -> list:
        """What a step computes per image, for the run's training cost (runs/cost.py): objectives/cost.py's
        CostParts, given one example image (1, C, H, W). By default the trained model, forward and backward, on
        every image it reads, and a feature guide's forward pass on the images it guides; a method with a
        teacher adds it, one with views of its own (DINO's crops, MAE's masks) says what it computes instead."""
        from lowdata.objectives.cost import FORWARD, TRAINED, network_part

        parts = [network_part("model", self.model, example, TRAINED)]
        guidance = getattr(self, "guidance", None)
        if guidance is not None and guidance.active:
            parts.append(network_part("guide", guidance.guide, example, FORWARD, guidance.applies_to))
        return parts


@dataclass(frozen=True)
class MethodData:
    """What a builder may read of the run's data: the dataset (its description and test split, e.g. to report a
    teacher's accuracy) and the images of the unlabelled pool, if the run has one (never their labels)."""
    dataset: Any  # data.types.Dataset
    pool_images: torch.Tensor | None = None  # uint8 (P, C, H, W)

    @property
    def info(self) -> Any:
        return self.dataset.info

    @property
    def test_images(self) -> torch.Tensor:
        return self.dataset.test_images

    @property
    def test_labels(self) -> torch.Tensor:
        return self.dataset.test_labels


# builder(config, model, data: MethodData, device, autocast) -> (objective, what the summary should say)
ObjectiveBuilder = Callable[..., "tuple[Objective, dict[str, Any]]"]


@dataclass(frozen=True)
class Method:
    build: ObjectiveBuilder
    reads_labels: bool  # False: self-supervised, for `lowdata pretrain`
    settings: tuple[str, ...] = ()  # the keys of `method_args` it reads; any other is refused before it builds


OBJECTIVES: Registry[Method] = Registry("objective")


def register_method(name: str, reads_labels: bool = True,
                    settings: tuple[str, ...] = ()) -> Callable[[ObjectiveBuilder], ObjectiveBuilder]:
    def add(builder: ObjectiveBuilder) -> ObjectiveBuilder:
        OBJECTIVES.register(name)(Method(builder, reads_labels, tuple(settings)))
        return builder

    return add


def method_names(reads_labels: bool) -> list[str]:
    load_methods()
    return [name for name in OBJECTIVES.names() if OBJECTIVES.get(name).reads_labels == reads_labels]


def build_objective(name: str, config: Any, model: nn.Module, dataset: Any, device: torch.device,
                    autocast: Callable[[], Any], reads_labels: bool = True) -> tuple[Objective, dict[str, Any]]:
    """The registered method `name` of the wanted kind (a supervised method, or a pretraining one when
    `reads_labels` is False), built for this run."""
    from lowdata.errors import UsageError

    names = method_names(reads_labels)
    if name not in names:
        kind = Registry("objective" if reads_labels else "pretraining method")
        for known in names:
            kind.register(known)(None)
        raise UsageError(kind.unknown_message(name))
    method = OBJECTIVES.get(name)
    check_method_args(name, method.settings, getattr(config, "method_args", None) or {})
    return method.build(config, model, dataset, device, autocast)


def check_method_args(name: str, settings: tuple[str, ...], given: dict[str, Any]) -> None:
    """Unknown keys of `method_args` are refused (with a did-you-mean), never carried silently into the run."""
    import difflib

    from lowdata.errors import UsageError, shown

    for key in given:
        if key not in settings:
            close = difflib.get_close_matches(str(key), settings, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            offered = ", ".join(f"method_args.{known}" for known in settings) or "none"
            raise UsageError(f"method {name!r} has no setting {shown(key)}{hint}; its settings: {offered}")


def load_methods() -> None:
    """Import every module of this package: each registers its methods when imported, so a new method is a
    new file and nothing else."""
    import importlib
    import pkgutil

    import lowdata.objectives as package

    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")
