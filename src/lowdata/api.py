"""The Python API: what the CLI calls, and what a notebook calls with the same settings.

    from lowdata import train
    summary = train(data="cifar10:~/data/cifar10", labels=1000, model="vit-tiny", epochs=60, out="runs/vit")

Entry points only; each lives in the layer it belongs to (runs/, study/), and nothing below imports this file.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from lowdata.config import PretrainConfig, TrainConfig


def train(config: TrainConfig | None = None, *, resume: bool = False, stop_after_epoch: int | None = None,
          **settings: Any) -> dict[str, Any] | None:
    """Train and evaluate one model; returns the run's summary (also written to `OUT/summary.json`).

    `settings` are TrainConfig fields and override `config`. With `resume=True` the run in `out` continues
    from its last checkpoint under its saved config. `stop_after_epoch` ends the run early (returns None)
    after that epoch's checkpoint, as a preemptible scheduler would.
    """
    from lowdata.runs.train import train as train_run

    return train_run(config, resume=resume, stop_after_epoch=stop_after_epoch, **settings)


def pretrain(config: PretrainConfig | None = None, *, resume: bool = False, stop_after_epoch: int | None = None,
             **settings: Any) -> dict[str, Any] | None:
    """Self-supervised pretraining (MAE) on every training image, labels unread; the same contract as `train`.
    Fine-tune the result with `train(..., init=OUT)`."""
    from lowdata.runs.pretrain import pretrain as pretrain_run

    return pretrain_run(config, resume=resume, stop_after_epoch=stop_after_epoch, **settings)


def run_study(out: str | Path, **options: Any) -> dict[str, Any] | None:
    """Run (or join, or resume) a data-hunger study in `out`; returns the fits once every cell is done. The
    options are `lowdata.study.study.run_study`'s (data, sizes, recipes, seeds, budget_steps, settings, ...)."""
    from lowdata.study.study import run_study as study

    return study(out, **options)


def evaluate_run(checkpoint: str | Path, data: str | None = None) -> dict[str, Any]:
    """Test accuracy of a finished run's weights, on its own dataset's test split or on `data`'s."""
    from lowdata.runs.train import evaluate_run as evaluate

    return evaluate(checkpoint, data)


def predict(run: str | Path, images, top_k: int = 1) -> list[dict[str, Any]]:
    """A finished run's top-k classes and probabilities for image paths, a folder, or a uint8 (N, C, H, W)
    tensor, with the run's own preprocessing (nothing of the training data needed)."""
    from lowdata.runs.predict import predict as predict_images

    return predict_images(run, images, top_k)
