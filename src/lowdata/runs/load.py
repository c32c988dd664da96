"""A finished run as a usable model: its architecture with the weights it was evaluated with, and what feeds it
(channels, input size, the training split's normalisation, class names) — all read from the run directory, so
neither the training data nor its labels are needed."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from lowdata.errors import UsageError


@dataclass
class LoadedRun:
    model: nn.Module  # eval mode, on `device`
    info: Any  # data.datasets.DatasetInfo: classes, channels, image_size, mean, std
    config: Any  # config.TrainConfig, as the run saved it
    summary: dict[str, Any]
    run_dir: Path
    device: torch.device
    autocast: Callable[[], Any]
    normalize: nn.Module  # the run's training statistics, on `device`

    @property
    def classes(self) -> tuple[str, ...]:
        return self.info.classes

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Float logits of uint8 (N, C, H, W) images at the run's input size, with the run's normalisation."""
        with torch.no_grad(), self.autocast():
            return self.model(self.normalize(images.to(self.device))).float()


def load_run(run: str | Path, device: str | None = None, tta: bool | None = None) -> LoadedRun:
    """The run in `run` (a `lowdata train --out` folder), on `device` (default: the run's own setting), with
    test-time augmentation as the run evaluated itself, or as `tta` says."""
    from lowdata.augment import Normalize
    from lowdata.config import TrainConfig
    from lowdata.objectives import build_config as build
    from lowdata.data.datasets import DatasetInfo
    from lowdata.device import inference_autocast, pick_device
    from lowdata.models.loading import load_trained_model
    from lowdata.rundir import read_config, read_summary, timm_copy_problem

    run_dir = Path(run)
    summary = read_summary(run_dir) if run_dir.is_dir() else None
    if summary is None or "input" not in summary:
        raise UsageError(f"{run_dir} is not a finished lowdata training run with a recorded input (summary.json "
                         "with `input`); train it with this version of lowdata, or give its --out folder")
    spec = summary["input"]
    info = DatasetInfo(summary.get("dataset", "run"), tuple(summary["classes"]), spec["channels"],
                       tuple(spec["image_size"]), spec.get("hflip", True), tuple(spec["mean"]), tuple(spec["std"]),
                       spec.get("depth"))
    config = build(TrainConfig, read_config(run_dir))
    chosen = pick_device(device or config.device)
    autocast = inference_autocast(chosen)  # fp32 whatever the run trained in: predict, eval and exports agree
    model, _ = load_trained_model(run_dir, info.num_classes, info.channels, info.image_size, what="run")
    problem = timm_copy_problem(run_dir, model.state_dict())
    if problem:  # the checkpoint is what lowdata uses; the copy is what timm users load
        from lowdata import console

        console.say(f"run: {run_dir / 'model'} is {problem}; lowdata uses the checkpoint: move the folder away "
                    f"and write it again with `lowdata export --run {run_dir} --out {run_dir / 'model'}`",
                    kind="timm-copy")
    if config.tta if tta is None else tta:  # by default, predicted and evaluated as the run evaluated itself
        from lowdata.augment.tta import ViewAverage

        model = ViewAverage(model, flip=info.hflip)
    return LoadedRun(model.to(chosen).eval(), info, config, summary, run_dir, chosen, autocast,
                     Normalize(info).to(chosen))
