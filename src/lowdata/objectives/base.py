"""The contract between the training loop and a method.

`objective(images, labels) -> StepOutput`; `objective.model` is what is optimised, saved and evaluated. The
loop never asks which method it runs: a new method is a new file here that registers its builder in the one
registry, `@register_method(name, reads_labels=..., settings=SettingsClass)` on `builder(config, settings, model,
data, device, autocast) -> (objective, what the summary should say)`; `settings` is the method's frozen settings
dataclass (its section of the run's config, e.g. `distill.alpha`), resolved. `lowdata train` builds methods that
read labels (its `objective` setting), `lowdata pretrain --method NAME` those that do not (self-supervised;
`model` is then the encoder). Auxiliary terms (objectives/terms.py) ride on a method that gives `model_input`.
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
    # what the trained model read this step, for auxiliary terms (objectives/terms.py): the step's labelled images
    # first, then its pool images (a method that carries terms sets it; None: terms cannot ride on it)
    model_input: torch.Tensor | None = None


class Objective(nn.Module):
    model: nn.Module
    streams: tuple[str, ...] = ()  # the random streams the method draws from besides the loop's (MAE: "mask")
    carries_terms = False  # True where each StepOutput gives its `model_input`, so auxiliary terms can ride on it

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> StepOutput:  # pragma: no cover
        raise NotImplementedError

    def step(self, images: torch.Tensor, labels: torch.Tensor,
             backward: Callable[[torch.Tensor], None]) -> StepOutput:
        """One training step: its loss handed to `backward` (the loop's: scaled, outside autocast). By default the
        whole loss at once. A method whose loss has parts that share no graph (a pooled step's labelled and pool
        images, taken apart) may hand each part to `backward` in turn, so the first part's activations are freed
        before the next part is built; its StepOutput's `loss` is then the parts' detached sum."""
        out = self(images, labels)
        backward(out.loss)
        return out

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
        every image it reads (an auxiliary term adds its own, objectives/terms.py); a method with a teacher adds
        it, one with views of its own (DINO's crops, MAE's masks) says what it computes instead."""
        from lowdata.objectives.cost import TRAINED, network_part

        return [network_part("model", self.model, example, TRAINED)]

    def setup_name(self) -> str:
        """The step's kind, for compile=auto's measurements (runs/compiling.py): the method, and `pool` when it
        reads the pool."""
        return "+".join([type(self).__name__.lower()] + (["pool"] if getattr(self, "feed", None) else []))


@dataclass(frozen=True)
class MethodData:
    """What a builder may read of the run's data: the dataset (its description and test split, e.g. to report a
    teacher's accuracy) and the images of the unlabelled pool, if the run has one (never their labels)."""
    dataset: Any  # data.types.Dataset
    pool_images: torch.Tensor | None = None  # uint8 (P, C, H, W)
    # the frozen networks a method or term reads (a teacher, a guide) by source: (source, what, model name) ->
    # (network, its name); None: trained runs and weights files on disk (models/loading.py). A study's plan
    # gives untrained stand-ins of the linked recipes' models, to count what a step computes before they exist.
    network_loader: Callable[[str, str, str | None], tuple[nn.Module, str]] | None = None
    planning: bool = False  # built only to count its cost (runs/planning.py): nothing is evaluated

    def trained_network(self, source: str, what: str, model_name: str | None = None, file_size: int | None = None
                        ) -> tuple[nn.Module, str]:
        """The network a run directory or weights file at `source` holds, built for this data (at its own input
        size where it was trained at another: `file_size` for a weights file)."""
        if self.network_loader is not None:
            return self.network_loader(source, what, model_name)
        from lowdata.models.loading import load_trained_model

        info = self.info
        return load_trained_model(source, info.num_classes, info.channels, info.image_size, model_name=model_name,
                                  what=what, file_size=file_size)

    @property
    def info(self) -> Any:
        return self.dataset.info

    @property
    def test_images(self) -> torch.Tensor:
        return self.dataset.test_images

    @property
    def test_labels(self) -> torch.Tensor:
        return self.dataset.test_labels


# builder(config, settings, model, data: MethodData, device, autocast) -> (objective, what the summary should say)
ObjectiveBuilder = Callable[..., "tuple[Objective, dict[str, Any]]"]


@dataclass(frozen=True)
class NoSettings:
    """A method with no settings of its own."""


@dataclass(frozen=True)
class Method:
    build: ObjectiveBuilder
    reads_labels: bool  # False: self-supervised, for `lowdata pretrain`
    settings: type = NoSettings  # its frozen settings dataclass: its section of the run's config
    doc: str = ""  # one line for `lowdata methods`


OBJECTIVES: Registry[Method] = Registry("objective")


def register_method(name: str, reads_labels: bool = True, settings: type = NoSettings,
                    doc: str = "") -> Callable[[ObjectiveBuilder], ObjectiveBuilder]:
    def add(builder: ObjectiveBuilder) -> ObjectiveBuilder:
        OBJECTIVES.register(name)(Method(builder, reads_labels, settings, doc or first_line(builder.__doc__)))
        return builder

    return add


def first_line(text: str | None) -> str:
    return (text or "").strip().split("\n")[0]


def method_names(reads_labels: bool) -> list[str]:
    load_methods()
    return [name for name in OBJECTIVES.names() if OBJECTIVES.get(name).reads_labels == reads_labels]


def load_methods() -> None:
    """Import every module of this package: each registers its methods when imported, so a new method is a
    new file and nothing else."""
    import importlib
    import pkgutil

    import lowdata.objectives as package

    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")
