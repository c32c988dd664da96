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
    return json.loads((found / "state.json").read_text())["config"]


def is_finished(run_dir: Path) -> bool:
    return (run_dir / SUMMARY).is_file()


def read_summary(run_dir: Path) -> dict[str, Any] | None:
    return read_json(run_dir / SUMMARY)


def run_classes(run_dir: Path) -> list[str] | None:
    """The class names a lowdata run was trained on, from its summary; None for anything else."""
    summary = read_summary(run_dir) if run_dir.is_dir() else None
    classes = (summary or {}).get("classes")
    return [str(name) for name in classes] if isinstance(classes, list) else None


def read_run_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    """The weights a run is evaluated with: its EMA when it kept one, else the trained weights."""
    from safetensors.torch import load_file

    found = checkpoint_dir(run_dir)
    if found is None:
        raise UsageError(f"no checkpoint in {run_dir}; give the --out folder of a lowdata run")
    ema = found / "model_ema.safetensors"
    return load_file(str(ema if ema.is_file() else found / "model.safetensors"))


def read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None
