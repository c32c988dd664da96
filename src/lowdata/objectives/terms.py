"""Auxiliary terms: label-free losses any method can carry (feature guidance, dense relative localisation, joint
masked modelling).

A term reads the trained model's features during the method's own forward pass (`capturing`, e.g. forward
hooks on its blocks) and the images the model read that step (`StepOutput.model_input`: the labelled images
first, then the pool's), and returns its weighted loss and its logs. `@register_term(name, settings=...)` on
`builder(settings, config, model, data: MethodData, device, autocast) -> Term`; a term is on when the run's
config has its section (`guidance: {guide: RUN}`). One wrapper, `WithTerms`, adds every term to a method's
step; the loop sees an Objective as ever and names no term.
"""
from __future__ import annotations

from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
from torch import nn

from lowdata.objectives.base import Objective, StepOutput
from lowdata.registry import Registry


class Term(nn.Module):
    reads_pool = False  # True where the term reads the step's pool images (a method then draws them for it)
    state_name = "term"  # its state's name in a checkpoint beside a method's own (guidance: "projections")
    setup_name = "term"  # its part of the step's kind, for compile=auto's measurements
    streams: tuple[str, ...] = ()  # its random streams (checkpointed with the run's, so a resume draws the same)

    def use_streams(self, streams: dict[str, torch.Generator]) -> None:
        """The epoch's generators of its `streams`."""

    def begin_epoch(self, epoch: int) -> None:
        """Before each epoch (a warm-up of its weight, say)."""

    @contextmanager
    def capturing(self) -> Iterator[None]:
        """Around the method's forward pass: what the term reads of the model's features. Nothing by default."""
        yield

    def loss(self, model_input: torch.Tensor, labelled: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The weighted term and its logs (0-d tensors) for the step whose model read `model_input`, the first
        `labelled` rows labelled images."""
        raise NotImplementedError  # pragma: no cover

    def trainable_extras(self) -> nn.Module | None:
        """Parts trained beside the model (guidance's projections), never exported. None by default."""
        return None

    def kept_state(self) -> nn.Module | None:
        """What a checkpoint keeps of the term: its trainable extras by default."""
        return self.trainable_extras()

    def cost_parts(self, example: torch.Tensor) -> list:
        """The networks the term runs per image (objectives/cost.py); none by default."""
        return []

    def summary(self) -> dict[str, Any]:
        """What the run's summary says of the term."""
        return {}


APPLIES_TO = ("labelled", "pool", "both")  # the step's images a term reads


def step_rows(images: str, labelled: int) -> slice:
    """The rows of a step's batch that `images` (labelled, pool or both) names: the first `labelled` are the
    labelled images, the rest the pool's."""
    return {"labelled": slice(0, labelled), "pool": slice(labelled, None), "both": slice(None)}[images]


class ImageTerm(Term):
    """A label-free term set by a section with `weight`, `images` (labelled, pool or both) and `warmup_epochs`
    (its weight rises linearly over them), drawing from the one random stream it names in `streams`."""

    def __init__(self, settings: Any) -> None:
        super().__init__()
        self.settings = settings
        self.generator: torch.Generator | None = None
        self.ramp = 1.0 if settings.warmup_epochs == 0 else 0.0

    @property
    def reads_pool(self) -> bool:
        return self.settings.images != "labelled"

    def use_streams(self, streams: dict[str, torch.Generator]) -> None:
        self.generator = streams[self.streams[0]]

    def begin_epoch(self, epoch: int) -> None:
        warmup = self.settings.warmup_epochs
        self.ramp = 1.0 if warmup == 0 else min(1.0, (epoch + 1) / warmup)

    def rows(self, batch: torch.Tensor, labelled: int) -> torch.Tensor:
        """The rows of the step's batch it reads (the first `labelled` are the labelled images)."""
        return batch[step_rows(self.settings.images, labelled)]

    def weighted(self, loss: torch.Tensor) -> torch.Tensor:
        return self.settings.weight * self.ramp * loss


def require_pool(name: str, settings: Any, data: Any) -> None:
    """One line when a term's section reads the pool and the run has none."""
    from lowdata.errors import UsageError, shown

    if settings.images != "labelled" and getattr(data, "pool_images", None) is None:
        raise UsageError(f"{name}.images={shown(settings.images)} reads the pool: give --pool all (or N), or set "
                         f"{name}.images=labelled")


@dataclass(frozen=True)
class TermEntry:
    build: Callable[..., Term]
    settings: type  # its frozen settings dataclass: its section of the run's config
    doc: str = ""


TERMS: Registry[TermEntry] = Registry("term")


def register_term(name: str, settings: type, doc: str = "") -> Callable[[Callable[..., Term]], Callable[..., Term]]:
    def add(builder: Callable[..., Term]) -> Callable[..., Term]:
        TERMS.register(name)(TermEntry(builder, settings, doc or (builder.__doc__ or "").strip().split("\n")[0]))
        return builder

    return add


class WithTerms(Objective):
    """A method and the terms it carries: the method's step, each term's loss added to it. Every hook of the
    contract goes to the method, and to the terms where they have a part in it."""

    carries_terms = True

    def __init__(self, objective: Objective, terms: list[Term]) -> None:
        super().__init__()
        self.objective, self.terms = objective, nn.ModuleList(terms)
        self.streams = tuple(objective.streams) + tuple(name for term in terms for name in term.streams)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "model":  # the loop swaps in its wrapped or compiled model: the method's forward reads it
            setattr(self.objective, "model", value)
        else:
            super().__setattr__(name, value)

    @property
    def model(self) -> nn.Module:
        return self.objective.model

    @property
    def feed(self) -> Any:
        return getattr(self.objective, "feed", None)

    @property
    def pool_teacher(self) -> str:
        return getattr(self.objective, "pool_teacher", "")

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> StepOutput:
        with ExitStack() as stack:
            for term in self.terms:
                stack.enter_context(term.capturing())
            out = self.objective(images, labels)
        for term in self.terms:
            loss, logs = term.loss(out.model_input, len(images))
            out.loss = out.loss + loss
            out.logs.update(logs)
        return out

    def use_batch_size(self, batch_size: int) -> None:
        self.objective.use_batch_size(batch_size)

    def use_streams(self, streams: dict[str, torch.Generator]) -> None:
        self.objective.use_streams({name: streams[name] for name in self.objective.streams})
        for term in self.terms:
            term.use_streams({name: streams[name] for name in term.streams})

    def begin_epoch(self, epoch: int) -> None:
        self.objective.begin_epoch(epoch)
        for term in self.terms:
            term.begin_epoch(epoch)

    def fingerprint_tensors(self) -> list[torch.Tensor]:
        return self.objective.fingerprint_tensors()

    def weights_average(self) -> nn.Module | None:
        return self.objective.weights_average()

    def write_figures(self, run_dir, images: torch.Tensor, normalize: nn.Module) -> None:
        self.objective.write_figures(run_dir, images, normalize)

    def trainable_extras(self) -> nn.Module | None:
        parts = [p for p in [self.objective.trainable_extras(), *(t.trainable_extras() for t in self.terms)]
                 if p is not None]
        return parts[0] if len(parts) == 1 else nn.ModuleList(parts) if parts else None

    def kept_state(self) -> nn.Module | None:
        """The method's state with each term's beside it under the term's name; a run whose method keeps nothing
        and whose one term keeps something keeps the term's alone (the names its checkpoints had before terms
        composed, so those runs resume)."""
        own = self.objective.kept_state()
        parts = {t.state_name: state for t in self.terms if (state := t.kept_state()) is not None}
        if not parts:
            return own
        if own is None and len(parts) == 1:
            return next(iter(parts.values()))
        kept = nn.Module()
        if own is not None:
            for name, child in own.named_children():
                kept.add_module(name, child)
            for name, buffer in own.named_buffers(recurse=False):
                kept.register_buffer(name, buffer)
        for name, state in parts.items():
            kept.add_module(name, state)
        return kept

    def cost_parts(self, example: torch.Tensor) -> list:
        return self.objective.cost_parts(example) + [p for t in self.terms for p in t.cost_parts(example)]

    def setup_name(self) -> str:
        return "+".join([self.objective.setup_name(), *(t.setup_name for t in self.terms)])


def carry_terms(objective: Objective, summary: dict[str, Any], config: Any, model: nn.Module, data: Any,
                device: torch.device, autocast: Callable[[], Any]) -> tuple[Objective, dict[str, Any]]:
    """`objective` carrying the terms whose sections `config` has (itself without any), and the summary with
    theirs. A method that reads the pool only for its terms (supervised) is refused a pool no term reads."""
    from lowdata.errors import UsageError

    terms = []
    for name in TERMS.names():
        if name in config.sections:
            entry = TERMS.get(name)
            terms.append(entry.build(entry.settings(**config.sections[name]), config, model, data, device, autocast))
    if getattr(objective, "pool_for_terms", False) and objective.feed is not None and \
            not any(term.reads_pool for term in terms):
        raise UsageError("the pool is taught by a teacher, or read by a term: give --teacher RUN_DIR and distill.mode="
                         "hard or soft with --pool, let the student's own average teach it with objective=ema-teacher, "
                         "or guide on it (--guide RUN with guidance.images=pool or both); pool images have no labels")
    if not terms:
        return objective, summary
    if not objective.carries_terms:
        raise UsageError(f"the terms {', '.join(config.sections.keys() & set(TERMS.names()))} ride on a method whose "
                         f"model reads the step's images (supervised, distill, ema-teacher), not "
                         f"{type(objective).__name__}")
    if getattr(objective, "split_backward", False):
        raise UsageError("auxiliary terms read the step's labelled and pool images in one pass: drop "
                         "distill.split_backward=true, or the terms")
    for term in terms:
        summary = {**summary, **term.summary()}
    return WithTerms(objective, terms), summary
