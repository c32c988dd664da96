"""The one training loop. It knows nothing of the method: the objective turns a batch into a loss.

Data are uint8 tensors in memory; each epoch walks a seeded permutation, augments the batch on the device,
normalises it and hands it to the objective. Optional parts (EMA, autocast) are chosen once, as objects.
"""
from __future__ import annotations

import json
import math
import sys
import time
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch import nn

from lowdata import stopping
from lowdata.augment import Policy
from lowdata.errors import UsageError
from lowdata.cores import CoreShare
from lowdata.data.sampling import epoch_order
from lowdata.training.distributed import SINGLE, Process
from lowdata.objectives.base import Objective
from lowdata.training.optim import build_optimizer, build_schedule
from lowdata.training.state import TrainingState, load_checkpoint, save_checkpoint


@dataclass
class LoopData:
    train_images: torch.Tensor  # uint8 (N, C, H, W), on the CPU
    train_labels: torch.Tensor  # class indices; a self-supervised objective ignores them


@dataclass
class LoopSettings:
    epochs: int
    batch_size: int
    lr: float
    min_lr: float
    weight_decay: float
    warmup_epochs: float
    clip_grad: float | None
    eval_every: int | None  # None: after the last epoch only
    repeated_aug: int = 1
    freeze_epochs: int = 0
    layer_decay: float | None = None
    betas: tuple[float, float] = (0.9, 0.999)
    checkpoint_minutes: float = 1.0  # at most this long between checkpoints (0 = every epoch); the last always
    compile: bool = False  # torch.compile the trained model's forward and backward


class NoEma(nn.Module):
    """Stands in for timm's ModelEmaV3 when EMA is off: evaluation then sees the trained model itself."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.module = model

    def update(self, model: nn.Module, step: int | None = None) -> None:
        pass


def fit(objective: Objective, data: LoopData, settings: LoopSettings, augment: Policy,
        evaluator: Callable[[nn.Module], dict[str, float]], device: torch.device, autocast: Callable[[], AbstractContextManager], ema: nn.Module,
        generators: dict[str, torch.Generator], run_dir: Path, config: dict[str, Any], resume: bool,
        stop_after_epoch: int | None = None, process: Process = SINGLE,
        scaler: torch.amp.GradScaler | None = None, *, cores: CoreShare) -> dict[str, Any] | None:
    """Train to `settings.epochs`. `augment` turns a uint8 batch and its labels into
    normalised images and targets (soft after mixing); `evaluator` maps the model to evaluate (the EMA when one
    is kept) to metrics, every `eval_every` epochs and after the last; a checkpoint is written when
    `checkpoint_minutes` have passed, at `stop_after_epoch` and after the last epoch. Returns the final metrics,
    or None when stopped early by `stop_after_epoch` (as a preemptible scheduler would). Under torchrun (`process`), `batch_size` is
    the global batch: each rank trains on its share of the epoch with batch_size / world_size images a step.
    `scaler` scales fp16 losses; the default (disabled) one passes everything through unchanged. `cores` is the
    caller's registration among the host's training processes (runs/skeleton.py opens it before the data load)."""
    from torch.utils.tensorboard import SummaryWriter
    from tqdm import tqdm

    model = objective.model
    scaler = scaler or torch.amp.GradScaler(device.type, enabled=False)
    n = len(data.train_images)
    share = math.ceil(n / process.world_size)  # images per rank and epoch
    batch_size = max(1, min(settings.batch_size, n) // process.world_size)
    # a lone image left over joins the batch before it: BatchNorm cannot train on one image of 1x1 features
    steps_per_epoch = max(1, math.ceil(share / batch_size) - (share % batch_size == 1))
    optimizer = build_optimizer(model, settings.lr, settings.weight_decay, settings.layer_decay, settings.betas)
    schedule = build_schedule(optimizer, settings.epochs * steps_per_epoch,
                              round(settings.warmup_epochs * steps_per_epoch), settings.min_lr)
    saved_ema = None if isinstance(ema, NoEma) else ema
    state = TrainingState(epoch=0, step=0, generators=generators,
                          extra={"train_seconds": 0.0, "images_seen": 0, "counts": {}})
    objective.use_batch_size(batch_size)
    fingerprint = data_fingerprint(data, objective.fingerprint_tensors())
    if resume:
        state = load_checkpoint(run_dir, model, optimizer, saved_ema, generators)
        if "grad_scaler" in state.extra:
            scaler.load_state_dict(state.extra["grad_scaler"])
        if state.extra.get("data_fingerprint", fingerprint) != fingerprint:
            raise UsageError(f"the training data differ from those {run_dir} was trained on so far ({len(data.train_images)} "
                             "images now; files added, removed or changed since its checkpoint); restore the data, "
                             "or start a new run with another --out")
    state.extra["data_fingerprint"] = fingerprint
    # a checkpoint a stop signal took inside an epoch: that epoch continues from its step
    first_step, partial = state.extra.pop("epoch_step", 0), state.extra.pop("epoch_partial", None)
    metrics_log = MetricsLog(run_dir, after_epoch=state.epoch) if process.is_main else None
    writer = SummaryWriter(str(run_dir / "tensorboard")) if process.is_main else None
    head_first = HeadFirst(model, settings.freeze_epochs)
    compiled = torch.compile if settings.compile else (lambda module: module)
    # threads chosen once per run and kept by its checkpoint: the count changes the floating-point sums
    state.extra["threads"] = cores.choose(state.extra.get("threads"))
    timings = {"eval_seconds": 0.0, "checkpoint_seconds": 0.0}  # this session's
    eval_every = settings.eval_every or settings.epochs
    # a checkpoint of a small model takes ~0.1 s, an epoch of a small budget less: not after every epoch
    checkpoint_clock = Clock(settings.checkpoint_minutes * 60)
    last: dict[str, Any] = {}
    if state.epoch >= settings.epochs:
        # resumed after the last checkpoint but before the run's summary (a kill, a full disk): the training is
        # complete, so the final metrics are evaluated again from the saved weights (evaluation is deterministic)
        with timed(timings, "eval_seconds"):
            last = {"epoch": state.epoch, "step": state.step, **state.extra.get("last_train", {}),
                    **evaluator(ema.module)}
    try:
        for epoch in range(state.epoch, settings.epochs):
            if head_first.update(epoch) or epoch == state.epoch:
                # DDP reduces the gradients of the tensors that train when it is built: build it again on a change
                # the forward pass goes through DDP (and the compiler); `model` is what is saved
                objective.model = compiled(process.wrap(model, device))
            model.train()
            hold_frozen_batch_norms(model)
            epoch_start = {name: g.get_state() for name, g in generators.items()}
            started, totals = time.perf_counter(), EpochTotals(device)
            order = epoch_order(n, generators["order"], settings.repeated_aug, process.rank, process.world_size)
            streams = epoch_streams(process, generators)
            if first_step:
                started -= continue_epoch(streams, state.streams, totals, partial)
            objective.use_streams(streams)
            augment_stream = streams["augment"]
            bar = tqdm(range(first_step, steps_per_epoch), desc=f"epoch {epoch + 1}/{settings.epochs}",
                       initial=first_step, total=steps_per_epoch, disable=None if process.is_main else True,
                       leave=False)
            first_step = 0
            for i in bar:
                index = order[i * batch_size:(i + 1) * batch_size if i < steps_per_epoch - 1 else share]
                labels = data.train_labels[index].to(device)
                images, targets = augment(data.train_images[index].to(device), labels, augment_stream)
                schedule.step_update(num_updates=state.step)
                out = optimizer_step(objective, model, images, targets, autocast, optimizer, scaler,
                                     settings.clip_grad)
                state.step += 1
                for key, value in out.counts.items():  # every rank counts alike
                    state.extra["counts"][key] = state.extra["counts"].get(key, 0) + value * process.world_size
                ema.update(model, step=state.step)
                totals.add(out, labels, len(index))
                if not bar.disable and (i % 10 == 0 or i == steps_per_epoch - 1):
                    seen = min((i + 1) * batch_size, share)
                    bar.set_postfix(loss=f"{totals.loss.item() / seen:.3f}", lr=f"{peak_lr(optimizer):.2e}",
                                    img_s=f"{seen / (time.perf_counter() - started):.0f}")
                if stopping.requested() and not process.distributed:  # DDP ranks agree at the epoch's end
                    if scaler.is_enabled():
                        state.extra["grad_scaler"] = scaler.state_dict()
                    save_checkpoint(run_dir, model, optimizer, saved_ema, inside_epoch(
                        state, epoch_start, streams, i + 1, totals.snapshot(time.perf_counter() - started)), config)
                    raise stopping.Stopped(stopping.requested(), f"checkpointed at step {i + 1} of "
                                           f"{steps_per_epoch} in epoch {epoch + 1}; continue with --resume")
            seconds = time.perf_counter() - started
            process.check_in_sync(model)
            state.epoch = epoch + 1
            state.extra["train_seconds"] += seconds
            state.extra["images_seen"] += n
            # loss and accuracy are this rank's (rank 0's under torchrun): a sample of the epoch
            last = {"epoch": state.epoch, "step": state.step, "lr": peak_lr(optimizer), **totals.means(share),
                    "epoch_seconds": seconds, "images_per_second": n / seconds}
            # the last epoch's training figures, for a summary written after a resume that only re-evaluates
            state.extra["last_train"] = {key: value for key, value in last.items() if key.startswith("train_")}
            if state.epoch % eval_every == 0 or state.epoch == settings.epochs:
                with timed(timings, "eval_seconds"):
                    last.update(evaluator(ema.module))
            if scaler.is_enabled():
                state.extra["grad_scaler"] = scaler.state_dict()
            signalled = process.largest(stopping.requested() or 0) if process.distributed else 0
            stopped = stop_after_epoch is not None and stop_after_epoch <= state.epoch < settings.epochs
            if process.is_main:
                metrics_log.append(last, writer)
                tqdm.write(epoch_line(last, settings.epochs), file=sys.stderr)  # kept, on a terminal or not
                if stopped or signalled or state.epoch == settings.epochs or checkpoint_clock.due():
                    with timed(timings, "checkpoint_seconds"):
                        save_checkpoint(run_dir, model, optimizer, saved_ema, state, config)
                    checkpoint_clock.reset()
            process.barrier()  # no rank reads the run directory (e.g. to resume) before rank 0 has written it
            if signalled and state.epoch < settings.epochs:
                raise stopping.Stopped(signalled, f"checkpointed after epoch {state.epoch}; continue with --resume")
            if stopped:
                return None
    finally:
        objective.model = model
        if writer is not None:
            writer.close()
    return {**last, **timings, "threads": cores.threads, "train_seconds": state.extra["train_seconds"],
            **state.extra["counts"],
            "images_per_second": state.extra["images_seen"] / max(state.extra["train_seconds"], 1e-9)}


def epoch_line(metrics: dict[str, Any], epochs: int) -> str:
    """One line per epoch, kept in logs (under nohup, in CI) as on a terminal."""
    shown = [f"{key} {metrics[key]:.4g}" for key in ("train_loss", "train_acc", "test_acc", "val_acc", "knn_acc")
             if isinstance(metrics.get(key), float)]
    return (f"lowdata: epoch {metrics['epoch']}/{epochs}: {', '.join(shown)}, "
            f"{metrics['images_per_second']:.0f} img/s")


def data_fingerprint(data: LoopData, more: list[torch.Tensor]) -> str:
    """A digest of exactly what the run trains on (images, labels, and what the objective reads besides them),
    kept in the checkpoint so that `--resume` on changed data is refused instead of silently training on
    something else."""
    import hashlib

    digest = hashlib.blake2b(digest_size=16)
    for tensor in [data.train_images, data.train_labels, *more]:
        digest.update(str((tuple(tensor.shape), str(tensor.dtype))).encode())
        digest.update(tensor.contiguous().numpy().tobytes())
    return digest.hexdigest()


def optimizer_step(objective: Objective, model: nn.Module, images: torch.Tensor, targets: torch.Tensor,
                   autocast: Callable[[], AbstractContextManager], optimizer: torch.optim.Optimizer,
                   scaler: torch.amp.GradScaler, clip_grad: float | None):
    """One update: the objective's loss under autocast, (scaled) backward, clipping, the optimiser's step."""
    with autocast():
        out = objective(images, targets)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(out.loss).backward()
    if clip_grad:
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
    scaler.step(optimizer)
    scaler.update()
    return out


class EpochTotals:
    """An epoch's training loss, accuracy against the unmixed labels and the objective's own figures, summed on
    the device: an .item() a step would wait for a GPU each step."""

    def __init__(self, device: torch.device) -> None:
        self.loss = torch.zeros((), device=device)
        self.correct = torch.zeros((), device=device, dtype=torch.long)
        self.logs: dict[str, torch.Tensor] = {}
        self.classified = False

    def add(self, out, labels: torch.Tensor, count: int) -> None:
        self.loss += out.loss.detach().float() * count
        for key, value in out.logs.items():
            self.logs[key] = self.logs.get(key, 0) + value.detach().float() * count
        if out.logits is not None:
            self.correct += (out.logits.argmax(dim=1) == labels).sum()
            self.classified = True

    def snapshot(self, seconds: float) -> dict[str, Any]:
        """The sums so far and the epoch's seconds, for a checkpoint taken inside the epoch."""
        return {"loss": self.loss.item(), "correct": self.correct.item(), "classified": self.classified,
                "logs": {key: value.item() for key, value in self.logs.items()}, "seconds": seconds}

    def restore(self, snapshot: dict[str, Any]) -> None:
        self.loss.fill_(snapshot["loss"])
        self.correct.fill_(snapshot["correct"])
        self.classified = snapshot["classified"]
        self.logs = {key: torch.tensor(value, device=self.loss.device) for key, value in snapshot["logs"].items()}

    def means(self, images: int) -> dict[str, float]:
        means = {"train_loss": self.loss.item() / images, **{k: v.item() / images for k, v in self.logs.items()}}
        if self.classified:
            means["train_acc"] = self.correct.item() / images
        return means


@contextmanager
def timed(totals: dict[str, float], key: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        totals[key] += time.perf_counter() - started


class Clock:
    """Says when `seconds` have passed since it was last reset."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.since = seconds, time.monotonic()

    def due(self) -> bool:
        return time.monotonic() - self.since >= self.seconds

    def reset(self) -> None:
        self.since = time.monotonic()


class HeadFirst:
    """Freeze-then-unfreeze fine-tuning: only the head trains for the first `epochs` epochs, then everything.
    The optimizer holds every tensor from the start; a frozen one gets no gradient, so AdamW leaves it alone."""

    def __init__(self, model: nn.Module, epochs: int) -> None:
        self.model, self.epochs, self.frozen = model, epochs, False

    def update(self, epoch: int) -> bool:
        """Set what trains in `epoch`; True when that changed."""
        from lowdata.models.weights import freeze_all_but_head

        freeze = epoch < self.epochs
        if freeze == self.frozen:
            return False
        if freeze:
            freeze_all_but_head(self.model)
        else:
            self.model.requires_grad_(True)
        self.frozen = freeze
        return True


def inside_epoch(state: TrainingState, epoch_start: dict[str, torch.Tensor], streams: dict[str, torch.Generator],
                 steps_done: int, partial: dict[str, Any]) -> TrainingState:
    """The state to checkpoint after `steps_done` steps of an epoch: the shared generators as they were at the
    epoch's start (a resume draws the same order and streams again), this epoch's streams as they are now."""
    def at(generator: torch.Generator, saved: torch.Tensor) -> torch.Generator:
        copy = torch.Generator(device=generator.device)
        copy.set_state(saved)
        return copy

    return TrainingState(epoch=state.epoch, step=state.step,
                         generators={name: at(g, epoch_start[name]) for name, g in state.generators.items()},
                         extra={**state.extra, "epoch_step": steps_done, "epoch_partial": partial},
                         streams={name: stream.get_state() for name, stream in streams.items()})


def continue_epoch(streams: dict[str, torch.Generator], saved: dict[str, torch.Tensor] | None, totals: EpochTotals,
                   partial: dict[str, Any]) -> float:
    """Put a resumed epoch back where its checkpoint left it; returns the seconds it had already trained."""
    for name, stream in streams.items():
        stream.set_state(saved[name])
    totals.restore(partial)
    return partial["seconds"]


def epoch_streams(process: Process, generators: dict[str, torch.Generator]) -> dict[str, torch.Generator]:
    """This epoch's stream of each generator for this rank, drawn from the shared, checkpointed state. "order"
    stays shared: every rank takes its own slice of the one permutation."""
    return {name: process.rank_generator(g) for name, g in generators.items() if name != "order"}


def hold_frozen_batch_norms(model: nn.Module) -> None:
    """Batch norms whose weights are frozen (linear probe, head-first epochs) keep their running statistics:
    in train mode those would drift to the new data while the weights stay fixed, shifting the features the
    head learns on. A norm without weights (affine=False) is left training."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            weights = list(module.parameters(recurse=False))
            if weights and not any(p.requires_grad for p in weights):
                module.eval()


def peak_lr(optimizer: torch.optim.Optimizer) -> float:
    """The schedule's current rate (with layer decay, the groups nearest the head have it unscaled)."""
    return max(group["lr"] for group in optimizer.param_groups)


class MetricsLog:
    """`metrics.jsonl` (the source of truth, one line per epoch) mirrored to TensorBoard. On resume, lines from
    epochs after the checkpoint are dropped, since those epochs are trained again."""

    def __init__(self, run_dir: Path, after_epoch: int) -> None:
        from lowdata.io import atomic_write_text

        self.path = run_dir / "metrics.jsonl"
        if self.path.exists():
            kept = [line for line in self.path.read_text().splitlines()
                    if line.strip() and json.loads(line)["epoch"] <= after_epoch]
            atomic_write_text(self.path, "".join(line + "\n" for line in kept))

    def append(self, record: dict[str, Any], writer) -> None:
        scalars = {key: value for key, value in record.items() if isinstance(value, (int, float))}
        with open(self.path, "a") as handle:  # a confusion matrix goes to the summary, not to every line
            handle.write(json.dumps(scalars, sort_keys=True) + "\n")
        for key, value in scalars.items():
            if key not in ("epoch", "step"):
                writer.add_scalar(key, value, record["epoch"])
        writer.flush()
