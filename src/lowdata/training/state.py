"""Atomic checkpoints: safetensors for every tensor (weights, optimiser moments, RNG states), JSON for the rest.

`RUN/checkpoint/` holds `model.safetensors` (the trained model's weights alone, loadable into timm),
`model_ema.safetensors` when an EMA of weights is kept (what evaluation uses), `state.safetensors` and
`state.json`. A new checkpoint is written into a temporary folder and swapped in with
renames; if the process dies between the two renames, `RUN/.checkpoint.old` is still whole and is used.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lowdata.errors import UsageError
from lowdata.io import follow_umask, fsync_dir, make_temp_dir, storage_full
from lowdata.ledger import Ledger
from lowdata.rundir import CHECKPOINT, OLD, checkpoint_dir



@dataclass
class TrainingState:
    """Everything besides the model that a resumed run needs to continue bit for bit."""
    epoch: int  # epochs finished
    step: int
    generators: dict[str, torch.Generator]
    extra: dict[str, Any]  # JSON-able bookkeeping (train_seconds, images_seen, ...)
    # a checkpoint taken inside an epoch (on a stop signal): the epoch's streams as they stood at that step;
    # `generators` then hold their state at the epoch's start, so the epoch's order is drawn again identically
    streams: dict[str, torch.Tensor] | None = None


def save_checkpoint(run_dir: Path, model: nn.Module, optimizer: torch.optim.Optimizer, ema: nn.Module | None,
                    state: TrainingState, config: dict[str, Any], kept: nn.Module | None = None) -> None:
    """`kept`: what the method keeps besides the model (`Objective.kept_state`: trained extras, an EMA teacher,
    per-image statistics), in state.safetensors as `objective.*`."""
    from safetensors.torch import save_file

    ledger = Ledger(run_dir)
    remove_stale_temps(run_dir)
    ledger.refuse_unproven([CHECKPOINT, OLD], "cannot checkpoint: the run folder")  # replaced and removed below
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(run_dir, TEMP_PREFIX)
    ledger.add_folder(tmp.name)  # until its own ledger lists its files, the parent's entry proves it
    try:
        save_file(contiguous(model.state_dict()), str(tmp / "model.safetensors"))
        tensors, optimizer_json = split_optimizer_state(optimizer.state_dict())
        if ema is not None:
            save_file(contiguous(ema.module.state_dict()), str(tmp / "model_ema.safetensors"))
        tensors.update({f"rng.{name}": g.get_state() for name, g in state.generators.items()})
        tensors["rng.torch"] = torch.get_rng_state()
        tensors.update({f"stream.{name}": value for name, value in (state.streams or {}).items()})
        if kept is not None:
            tensors.update({f"objective.{key}": value for key, value in contiguous(kept.state_dict()).items()})
        save_file(tensors, str(tmp / "state.safetensors"))
        meta = {"epoch": state.epoch, "step": state.step, "optimizer": optimizer_json, "extra": state.extra,
                "config": config}
        (tmp / "state.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
        for file in tmp.iterdir():
            follow_umask(file)
            with open(file, "rb") as handle:
                os.fsync(handle.fileno())
        Ledger(tmp).record_files()
        current, old = run_dir / CHECKPOINT, run_dir / OLD
        shutil.rmtree(old, ignore_errors=True)
        if current.exists():
            os.rename(current, old)
        os.rename(tmp, current)
        fsync_dir(run_dir)
        shutil.rmtree(old, ignore_errors=True)
    except Exception as err:  # safetensors reports a full disk as a SafetensorError, not an OSError
        reason = storage_full(err)
        if reason:
            raise UsageError(f"{reason} while writing a checkpoint in {run_dir}; the previous checkpoint is "
                             "kept: free space (or raise the limit), then continue with --resume") from None
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        ledger.forget(tmp.name)


TEMP_PREFIX = ".checkpoint.tmp-"


def remove_stale_temps(run_dir: Path) -> None:
    """Half-written checkpoint folders a killed process left behind (one process writes a run's checkpoints,
    so any found before a save or a resume is stale); only those the run's ledger lists as its own."""
    ledger = Ledger(run_dir)
    for stale in run_dir.glob(f"{TEMP_PREFIX}*"):
        if stale.name in ledger.entries()["folders"]:
            shutil.rmtree(stale, ignore_errors=True)
            ledger.forget(stale.name)


def load_checkpoint(run_dir: Path, model: nn.Module, optimizer: torch.optim.Optimizer, ema: nn.Module | None,
                    generators: dict[str, torch.Generator], kept: nn.Module | None = None) -> TrainingState:
    from lowdata.io import read_json_file, read_safetensors
    from lowdata.models.strict import load_exactly
    from lowdata.rundir import DAMAGED

    remove_stale_temps(run_dir)
    found = checkpoint_dir(run_dir)
    if found is None:
        raise UsageError(f"nothing to resume in {run_dir}: it has no checkpoint; drop --resume to start afresh")
    meta = read_json_file(found / "state.json", "checkpoint state", DAMAGED)
    tensors = read_safetensors(found / "state.safetensors", "checkpoint state", DAMAGED)
    try:
        load_exactly(model, read_safetensors(found / "model.safetensors", "checkpoint weights", DAMAGED),
                     f"{found / 'model.safetensors'}", DAMAGED)
        optimizer.load_state_dict(join_optimizer_state(meta["optimizer"], tensors))
        if ema is not None:
            load_exactly(ema.module, read_safetensors(found / "model_ema.safetensors", "checkpoint EMA", DAMAGED),
                         f"{found / 'model_ema.safetensors'}", DAMAGED)
        if kept is not None:
            kept.load_state_dict({key.removeprefix("objective."): value for key, value in tensors.items()
                                  if key.startswith("objective.")})
        for name, generator in generators.items():
            generator.set_state(tensors[f"rng.{name}"])
        torch.set_rng_state(tensors["rng.torch"])
        streams = {key.removeprefix("stream."): value for key, value in tensors.items() if key.startswith("stream.")}
        extra = meta["extra"]
        counts = extra.setdefault("counts", {})
        if "pool_images_read" in extra:  # a checkpoint from before objectives kept their own counts
            counts["pool_images_read"] = extra.pop("pool_images_read")
        return TrainingState(epoch=meta["epoch"], step=meta["step"], generators=generators, extra=extra,
                             streams=streams or None)
    except (KeyError, TypeError, ValueError, RuntimeError) as err:  # parsed, but not what this run saved
        detail = str(err).splitlines()[0][:100] if str(err) else err.__class__.__name__
        raise UsageError(f"the checkpoint in {found} does not fit this run ({detail}); {DAMAGED}") from None


def contiguous(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().contiguous() for k, v in state.items()}


def split_optimizer_state(state_dict: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """Optimizer state_dict -> (tensors for safetensors, the JSON-able rest)."""
    tensors, per_param = {}, {}
    for index, entries in state_dict["state"].items():
        per_param[str(index)] = {}
        for key, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"optimizer.{index}.{key}"] = value.detach().contiguous()
            else:
                per_param[str(index)][key] = value
    return tensors, {"state": per_param, "param_groups": state_dict["param_groups"]}


def join_optimizer_state(saved: dict, tensors: dict[str, torch.Tensor]) -> dict:
    state: dict[int, dict[str, Any]] = {int(i): dict(entries) for i, entries in saved["state"].items()}
    for name, value in tensors.items():
        if name.startswith("optimizer."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value
    return {"state": state, "param_groups": saved["param_groups"]}


# A checkpoint taken inside an epoch (a stop signal), and the epoch continued from it
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


def continue_epoch(streams: dict[str, torch.Generator], saved: dict[str, torch.Tensor] | None, totals,
                   partial: dict[str, Any]) -> float:
    """Put a resumed epoch back where its checkpoint left it; returns the seconds it had already trained."""
    for name, stream in streams.items():
        stream.set_state(saved[name])
    totals.restore(partial)
    return partial["seconds"]
