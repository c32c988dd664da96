"""A run directory on disk, read in one place: what `lowdata train` and `lowdata pretrain` leave behind.

    RUN/config.yaml            resolved settings (for people; the checkpoint's copy is what code reads)
    RUN/metrics.jsonl          one line per epoch
    RUN/checkpoint/            model.safetensors, model_ema.safetensors (with EMA), state.safetensors, state.json
    RUN/.checkpoint.old/       the previous checkpoint, whole, if the process died between two renames
    RUN/summary.json           written last: the run is finished when it exists

Evaluation, distillation teachers, `--init`, studies and pretraining all read runs through this module;
`training/state.py` writes the checkpoint.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from lowdata.errors import UsageError

CHECKPOINT = "checkpoint"
OLD = ".checkpoint.old"
SUMMARY = "summary.json"
DAMAGED = "the checkpoint is damaged: start a new run with another --out (or restore the run folder)"


def checkpoint_dir(run_dir: Path) -> Path | None:
    """The newest whole checkpoint folder of a run, or None when it has none."""
    for name in (CHECKPOINT, OLD):
        if (run_dir / name / "state.json").is_file():
            return run_dir / name
    return None


def read_config(run_dir: Path) -> dict[str, Any]:
    found = checkpoint_dir(run_dir)
    if found is None:
        raise UsageError(f"no checkpoint in {run_dir}; give the --out folder of a lowdata training run")
    from lowdata.io import read_json_file

    state = read_json_file(found / "state.json", "checkpoint state", DAMAGED)
    if not isinstance(state, dict) or not isinstance(state.get("config"), dict):
        raise UsageError(f"checkpoint state {found / 'state.json'} holds no run settings; {DAMAGED}")
    return state["config"]


def is_finished(run_dir: Path) -> bool:
    """A run is finished when its summary is written and sound; a damaged one (truncated, empty, edited out of
    range) does not count, so the run is evaluated again from its checkpoint, or redone."""
    return (run_dir / SUMMARY).is_file() and summary_problem(run_dir) is None


def summary_problem(run_dir: Path) -> str | None:
    """What is wrong with a run's summary.json (None: nothing)."""
    import math

    try:
        summary = json.loads((run_dir / SUMMARY).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        return f"cannot be read ({err.__class__.__name__})"
    if not isinstance(summary, dict):
        return "is not a JSON object"
    epochs = summary.get("epochs")
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        return f"has no valid epochs ({epochs!r})"
    # a training run's test accuracy, or a pretraining run's k-NN monitor
    key = "test_acc" if "test_acc" in summary or "knn_acc" not in summary else "knn_acc"
    value = summary.get(key)
    if key == "knn_acc" and value is None:
        return None  # a pretraining run that never ran its monitor
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or not 0 <= value <= 1:
        return f"has an invalid {key} ({value!r}; an accuracy is a fraction between 0 and 1)"
    return None


def read_summary(run_dir: Path) -> dict[str, Any] | None:
    """The run's summary; None when there is none. A damaged one is an error naming the file."""
    path = run_dir / SUMMARY
    if not path.is_file():
        return None
    problem = summary_problem(run_dir)
    if problem:
        raise UsageError(f"{path} {problem}; delete it and resume the run (`--resume`) to evaluate it again")
    return json.loads(path.read_text())


def run_classes(run_dir: Path) -> list[str] | None:
    """The class names a lowdata run was trained on, from its summary; None for anything else."""
    summary = read_summary(run_dir) if run_dir.is_dir() else None
    classes = (summary or {}).get("classes")
    return [str(name) for name in classes] if isinstance(classes, list) else None


def read_run_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    """The weights a run is evaluated with: its EMA when it kept one, else the trained weights."""
    from lowdata.io import read_safetensors

    found = checkpoint_dir(run_dir)
    if found is None:
        raise UsageError(f"no checkpoint in {run_dir}; give the --out folder of a lowdata run")
    ema = found / "model_ema.safetensors"
    return read_safetensors(ema if ema.is_file() else found / "model.safetensors", "run weights", DAMAGED)


def read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


def timm_copy_problem(run_dir: Path, weights: dict[str, torch.Tensor]) -> str | None:
    """What is wrong with RUN/model/ (the timm copy of the evaluated weights) against `weights`, the run's
    evaluated weights as loaded: changed since lowdata wrote it, or stale (other weights). None when it is
    absent or agrees."""
    from lowdata.io import read_safetensors
    from lowdata.ledger import Ledger

    folder = run_dir / "model"
    if not folder.is_dir():
        return None
    if not Ledger(run_dir).proves("model"):
        return "changed since lowdata wrote it"
    try:
        copy = read_safetensors(folder / "model.safetensors", "the timm copy", DAMAGED)
    except UsageError:
        return "unreadable"
    if copy.keys() != weights.keys() or any(not torch.equal(copy[key], weights[key]) for key in weights):
        return "stale: its weights are not the checkpoint's"
    return None
