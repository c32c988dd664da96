"""The one training loop. It knows nothing of the method: the objective turns a batch into a loss.

Each epoch walks a seeded permutation of uint8 images in memory, augments the batch on the device and hands it
to the objective. Optional parts (EMA, autocast) are objects chosen once; the run's place arrives as RunContext.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn
from torch.profiler import record_function

from lowdata import console, stopping
from lowdata.augment import Policy
from lowdata.config import LoopSettings
from lowdata.data.sampling import epoch_order
from lowdata.errors import UsageError
from lowdata.models.resolution import LowResolution
from lowdata.objectives.base import Objective
from lowdata.training.context import RunContext
from lowdata.training.distributed import Process
from lowdata.training.divergence import DivergenceGuard
from lowdata.training.ema import NoEma
from lowdata.training.finetune import HeadFirst, hold_frozen_batch_norms
from lowdata.training.optim import budget_batch, build_optimizer, build_schedule
from lowdata.training.records import Clock, EpochTotals, MetricsLog, epoch_line, timed
from lowdata.training.state import TrainingState, continue_epoch, inside_epoch, load_checkpoint, save_checkpoint

__all__ = ["LoopData", "LoopSettings", "NoEma", "fit", "epoch_streams"]


@dataclass
class LoopData:
    train_images: torch.Tensor  # uint8 (N, C, H, W), on the CPU
    train_labels: torch.Tensor  # class indices; a self-supervised objective ignores them


@dataclass
class Session:
    """One call of `fit` in progress: the model and its optimiser, the state a checkpoint keeps, the logs."""
    objective: Objective
    model: nn.Module  # what is optimised and saved (the objective may hold it wrapped, by DDP or the compiler)
    optimizer: torch.optim.Optimizer
    schedule: Any
    state: TrainingState
    share: int  # this rank's images per epoch
    batch_size: int  # this rank's images per step
    steps_per_epoch: int
    clock: Clock
    head_first: HeadFirst
    metrics_log: MetricsLog | None  # rank 0 only
    writer: Any  # training/trackers.py's Trackers (TensorBoard, and MLflow / W&B when asked), rank 0 only
    guard: DivergenceGuard | None = None  # a non-finite loss or weights: the run fails at once
    first_step: int = 0  # a resumed epoch continues from here
    partial: dict[str, Any] | None = None  # its sums so far
    timings: dict[str, float] = field(default_factory=lambda: {"eval_seconds": 0.0, "checkpoint_seconds": 0.0})


def fit(objective: Objective, data: LoopData, settings: LoopSettings, augment: Policy,
        evaluator: Callable[[nn.Module], dict[str, float]], ema: nn.Module, ctx: RunContext) -> dict[str, Any] | None:
    """Train to `settings.epochs`. `augment` turns a uint8 batch and its labels into normalised images and
    targets (soft after mixing); `evaluator` maps `ema.module` to metrics, every `eval_every` epochs and after
    the last; a checkpoint is written when `checkpoint_minutes` have passed, at `ctx.stop_after_epoch` (then
    None is returned) and after the last epoch. Under torchrun, `batch_size` is the global batch."""
    session = start_or_resume(objective, data, settings, ema, ctx)
    last: dict[str, Any] = {}
    if session.state.epoch >= settings.epochs:
        # resumed after the last checkpoint but before the run's summary (a kill, a full disk): the training is
        # complete, so the final metrics are evaluated again from the saved weights (evaluation is deterministic)
        with timed(session.timings, "eval_seconds"):
            last = {"epoch": session.state.epoch, "step": session.state.step,
                    **session.state.extra.get("last_train", {}), **evaluator(ema.module)}
    try:
        for epoch in range(session.state.epoch, settings.epochs):
            totals, seconds = one_epoch(session, data, settings, augment, ema, ctx, epoch)
            last, stopped = end_of_epoch(session, data, settings, evaluator, ema, ctx, totals, seconds)
            if stopped:
                return None
    finally:
        objective.model = session.model
        if session.writer is not None:
            session.writer.close()
    extra = session.state.extra
    return {**last, **session.timings, "threads": ctx.cores.threads, "train_seconds": extra["train_seconds"],
            "batch_size": session.batch_size * ctx.process.world_size, "steps_per_epoch": session.steps_per_epoch,
            **extra["counts"], "images_seen": extra["images_seen"],
            "images_per_second": extra["images_seen"] / max(extra["train_seconds"], 1e-9)}


def start_or_resume(objective: Objective, data: LoopData, settings: LoopSettings, ema: nn.Module,
                    ctx: RunContext) -> Session:
    """The optimiser, schedule and state of a new run, or those of the checkpoint in `ctx.run_dir`."""
    from lowdata.training.trackers import Trackers, parse_trackers

    model, process = objective.model, ctx.process
    n = len(data.train_images)
    share = math.ceil(n / process.world_size)  # images per rank and epoch
    batch_size, steps_per_epoch = epoch_steps(settings, n, process.world_size, say=not ctx.resume)
    optimizer = build_optimizer(model, settings.lr, settings.weight_decay, settings.layer_decay, settings.betas)
    if (extras := objective.trainable_extras()) is not None:  # trained beside the model, checkpointed with it
        optimizer.add_param_group({"params": list(extras.parameters())})
    schedule = build_schedule(optimizer, settings.epochs * steps_per_epoch,
                              round(settings.warmup_epochs * steps_per_epoch), settings.min_lr)
    state = TrainingState(epoch=0, step=0, generators=ctx.generators,
                          extra={"train_seconds": 0.0, "images_seen": 0, "counts": {}})
    objective.use_batch_size(batch_size)
    fingerprint = data_fingerprint(data, objective.fingerprint_tensors())
    if ctx.resume:
        state = load_checkpoint(ctx.run_dir, model, optimizer, ema.to_save, ctx.generators, objective.kept_state())
        if "grad_scaler" in state.extra:
            ctx.scaler.load_state_dict(state.extra["grad_scaler"])
        if state.extra.get("data_fingerprint", fingerprint) != fingerprint:
            raise UsageError(f"the training data differ from those {ctx.run_dir} was trained on so far ({n} "
                             "images now; files added, removed or changed since its checkpoint); restore the data, "
                             "or start a new run with another --out")
    state.extra["data_fingerprint"] = fingerprint
    # threads chosen once per run and kept by its checkpoint: the count changes the floating-point sums
    state.extra["threads"] = ctx.cores.choose(state.extra.get("threads"))
    return Session(objective, model, optimizer, schedule, state, share, batch_size, steps_per_epoch,
                   # a checkpoint of a small model takes ~0.1 s, an epoch of a small budget less: not every epoch
                   Clock(settings.checkpoint_minutes * 60), HeadFirst(model, settings.freeze_epochs),
                   MetricsLog(ctx.run_dir, after_epoch=state.epoch) if process.is_main else None,
                   Trackers(ctx.run_dir, parse_trackers(ctx.config.get("trackers")), ctx.config)
                   if process.is_main else None,
                   DivergenceGuard(ctx.run_dir, ctx.scaler.is_enabled(), settings.lr),
                   # a checkpoint a stop signal took inside an epoch: that epoch continues from its step
                   state.extra.pop("epoch_step", 0), state.extra.pop("epoch_partial", None))


def one_epoch(session: Session, data: LoopData, settings: LoopSettings, augment: Policy, ema: nn.Module,
              ctx: RunContext, epoch: int) -> tuple[EpochTotals, float]:
    """The epoch's steps; a stop signal checkpoints after the step it arrived in and raises stopping.Stopped."""
    from tqdm import tqdm

    s, model, state, process = session, session.model, session.state, ctx.process
    s.head_first.update(epoch)  # DDP, built again each epoch, reduces the gradients of what trains (head first)
    # the forward pass goes through DDP and the compiler (and, in a progressive schedule's first epochs, a resize
    # to a lower resolution: models/resolution.py); `model` is what is saved
    trained = LowResolution(model, settings.low_res_size) if epoch < settings.low_res_epochs else model
    wrapped = process.wrap(trained, ctx.device)
    s.objective.model = torch.compile(wrapped) if settings.compile else wrapped
    model.train()
    hold_frozen_batch_norms(model)
    epoch_start = {name: g.get_state() for name, g in ctx.generators.items()}
    started, totals = time.perf_counter(), EpochTotals(ctx.device)
    order = epoch_order(len(data.train_images), ctx.generators["order"], settings.repeated_aug, process.rank,
                        process.world_size)
    streams = epoch_streams(process, ctx.generators)
    if s.first_step:
        started -= continue_epoch(streams, state.streams, totals, s.partial)
    s.objective.use_streams(streams)
    s.objective.begin_epoch(epoch)
    bar = tqdm(range(s.first_step, s.steps_per_epoch), desc=f"epoch {epoch + 1}/{settings.epochs}",
               initial=s.first_step, total=s.steps_per_epoch, leave=False,
               disable=None if process.is_main and not console.is_quiet() else True)
    s.first_step = 0
    for i in bar:
        index = order[i * s.batch_size:(i + 1) * s.batch_size if i < s.steps_per_epoch - 1 else s.share]
        labels = data.train_labels[index].to(ctx.device)
        with record_function("lowdata.augment"):  # profiler labels (benchmarks/profile_steps.py), ~1 us without
            images, targets = augment(data.train_images[index].to(ctx.device), labels, streams["augment"])
        s.schedule.step_update(num_updates=state.step)
        with record_function("lowdata.step"):
            out = optimizer_step(s.objective, model, images, targets, ctx.autocast, s.optimizer, ctx.scaler,
                                 settings.clip_grad)
        s.guard.after_step(out.loss, state.step + 1, epoch)
        state.step += 1
        for key, value in out.counts.items():  # every rank counts alike
            state.extra["counts"][key] = state.extra["counts"].get(key, 0) + value * process.world_size
        ema.update(model, step=state.step)
        totals.add(out, labels, len(index))
        if not bar.disable and (i % 10 == 0 or i == s.steps_per_epoch - 1):
            seen = min((i + 1) * s.batch_size, s.share)
            bar.set_postfix(loss=f"{totals.loss.item() / seen:.3f}", lr=f"{peak_lr(s.optimizer):.2e}",
                            img_s=f"{seen / (time.perf_counter() - started):.0f}")
        if stopping.requested() and not process.distributed:  # DDP ranks agree at the epoch's end
            s.guard.before_checkpoint(model, state.step, epoch)
            if ctx.scaler.is_enabled():
                state.extra["grad_scaler"] = ctx.scaler.state_dict()
            save_checkpoint(ctx.run_dir, model, s.optimizer, ema.to_save, inside_epoch(
                state, epoch_start, streams, i + 1, totals.snapshot(time.perf_counter() - started)), ctx.config,
                s.objective.kept_state())
            raise stopping.Stopped(stopping.requested(), f"checkpointed at step {i + 1} of {s.steps_per_epoch} "
                                   f"in epoch {epoch + 1}; continue with --resume")
    return totals, time.perf_counter() - started


def end_of_epoch(session: Session, data: LoopData, settings: LoopSettings, evaluator: Callable, ema: nn.Module,
                 ctx: RunContext, totals: EpochTotals, seconds: float) -> tuple[dict[str, Any], bool]:
    """Evaluate, log and checkpoint as due; returns the epoch's metrics and whether the run stops here."""
    s, state, process = session, session.state, ctx.process
    s.guard.before_checkpoint(s.model, state.step, state.epoch + 1)  # nor evaluated, logged or summarised
    process.check_in_sync(s.model)
    state.epoch, state.extra["train_seconds"] = state.epoch + 1, state.extra["train_seconds"] + seconds
    state.extra["images_seen"] += len(data.train_images)
    # loss and accuracy are this rank's (rank 0's under torchrun): a sample of the epoch
    last = {"epoch": state.epoch, "step": state.step, "lr": peak_lr(s.optimizer), **totals.means(s.share),
            "epoch_seconds": seconds, "images_per_second": len(data.train_images) / seconds}
    # the last epoch's training figures, for a summary that a resume after the last epoch only re-evaluates
    state.extra["last_train"] = {key: value for key, value in last.items() if key.startswith("train_")}
    if state.epoch % (settings.eval_every or settings.epochs) == 0 or state.epoch == settings.epochs:
        with timed(s.timings, "eval_seconds"):
            last.update(evaluator(ema.module))
    if ctx.scaler.is_enabled():
        state.extra["grad_scaler"] = ctx.scaler.state_dict()
    signalled = process.largest(stopping.requested() or 0) if process.distributed else 0
    stopped = ctx.stop_after_epoch is not None and ctx.stop_after_epoch <= state.epoch < settings.epochs
    if process.is_main:
        s.metrics_log.append(last, s.writer)
        console.epoch(epoch_line(last, settings.epochs, state.extra["train_seconds"]))
        if stopped or signalled or state.epoch == settings.epochs or s.clock.due():
            with timed(s.timings, "checkpoint_seconds"):
                save_checkpoint(ctx.run_dir, s.model, s.optimizer, ema.to_save, state, ctx.config,
                                s.objective.kept_state())
            s.clock.reset()
    process.barrier()  # no rank reads the run directory (e.g. to resume) before rank 0 has written it
    if signalled and state.epoch < settings.epochs:
        raise stopping.Stopped(signalled, f"checkpointed after epoch {state.epoch}; continue with --resume")
    return last, stopped


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


def epoch_steps(settings: LoopSettings, n: int, world_size: int, say: bool) -> tuple[int, int]:
    """This rank's batch and the steps of an epoch of `n` images; the default batch shrinks on a tiny budget
    (optim.budget_batch), said in one line (`say`: not again on resume)."""
    chosen = budget_batch(settings.batch_size, n) if settings.adapt_batch else min(settings.batch_size, n)
    share, batch_size = math.ceil(n / world_size), max(1, chosen // world_size)
    # a lone image left over joins the batch before it: BatchNorm cannot train on one image of 1x1 features
    steps_per_epoch = max(1, math.ceil(share / batch_size) - (share % batch_size == 1))
    if chosen < min(settings.batch_size, n) and say:
        console.say(f"batch {chosen} instead of {settings.batch_size}: {n:,} training images make "
                    f"{math.ceil(n / settings.batch_size)} step(s) an epoch at {settings.batch_size}, "
                    f"{steps_per_epoch} at {chosen} ({settings.epochs} epoch(s): {settings.epochs * steps_per_epoch:,} "
                    f"steps); a batch_size other than the default {settings.batch_size} is kept as set", kind="batch")
    return batch_size, steps_per_epoch


def optimizer_step(objective: Objective, model: nn.Module, images: torch.Tensor, targets: torch.Tensor,
                   autocast: Callable, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
                   clip_grad: float | None):
    """One update: the objective's loss under autocast, (scaled) backward of each part the objective hands over
    (Objective.step), clipping, the optimiser's step."""
    def backward(loss: torch.Tensor) -> None:
        with torch.autocast(images.device.type, enabled=False), record_function("lowdata.backward"):
            scaler.scale(loss).backward()

    optimizer.zero_grad(set_to_none=True)
    with autocast(), record_function("lowdata.forward"):
        out = objective.step(images, targets, backward)
    with record_function("lowdata.optimizer"):
        if clip_grad:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
        scaler.step(optimizer)
        scaler.update()
    return out


def epoch_streams(process: Process, generators: dict[str, torch.Generator]) -> dict[str, torch.Generator]:
    """This epoch's stream of each generator for this rank, drawn from the shared, checkpointed state. "order"
    stays shared: every rank takes its own slice of the one permutation."""
    return {name: process.rank_generator(g) for name, g in generators.items() if name != "order"}


def peak_lr(optimizer: torch.optim.Optimizer) -> float:
    """The schedule's current rate (with layer decay, the groups nearest the head have it unscaled)."""
    return max(group["lr"] for group in optimizer.param_groups)
