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
    from lowdata.runs.rounds import train as train_run

    return train_run(config, resume=resume, stop_after_epoch=stop_after_epoch, **named_data(settings))


def pretrain(config: PretrainConfig | None = None, *, resume: bool = False, stop_after_epoch: int | None = None,
             **settings: Any) -> dict[str, Any] | None:
    """Self-supervised pretraining (MAE) on every training image, labels unread; the same contract as `train`.
    Fine-tune the result with `train(..., init=OUT)`."""
    from lowdata.runs.pretrain import pretrain as pretrain_run

    return pretrain_run(config, resume=resume, stop_after_epoch=stop_after_epoch, **named_data(settings))


def run_study(out: str | Path, **options: Any) -> dict[str, Any] | None:
    """Run (or join, or resume) a data-hunger study in `out`; returns the fits once every cell is done. The
    options are `lowdata.study.study.run_study`'s (data, sizes, recipes, seeds, budget_steps, settings, ...)."""
    from lowdata.study.study import run_study as study

    return study(out, **named_data(options))


def evaluate_run(run: str | Path, data: str | None = None, device: str | None = None,
                 tta: bool | None = None) -> dict[str, Any]:
    """Top-1, top-5, per-class accuracy and the confusion matrix of a finished run's weights, on its own test
    split or on `data` (a named dataset's test split, or a labelled image folder as a whole); with test-time
    augmentation as the run was trained, or as `tta` says."""
    from lowdata.runs.evaluate import evaluate_run as evaluate

    return evaluate(run, data, device, tta)


evaluate = evaluate_run  # the CLI's name (`lowdata eval`), for the API's users


def predict(run: str | Path, images, top_k: int = 1, device: str | None = None) -> list[dict[str, Any]]:
    """A finished run's top-k classes and probabilities for image paths, a folder, or a uint8 (N, C, H, W)
    tensor, with the run's own preprocessing (nothing of the training data needed)."""
    from lowdata.runs.predict import predict as predict_images

    return predict_images(run, images, top_k, device)


def export(run: str | Path, format: str = "timm", out: str | Path | None = None) -> dict[str, Any]:
    """Write a finished run's model as `timm` (a folder `timm.create_model("local-dir:...", pretrained=True)`
    loads once `lowdata.models` is imported), `torchscript` or `onnx`, checked against the run's own outputs;
    returns {"format", "path", "max_abs_diff", "input"}."""
    from lowdata.runs.export import export_run

    return export_run(run, format, out)


def load_run(run: str | Path, device: str | None = None):
    """A finished run as a usable model: `.model` (eval mode), `.classes`, `.info` (channels, image size,
    mean/std) and `.logits(uint8 images)` with the run's own normalisation."""
    from lowdata.runs.load import load_run as load

    return load(run, device)


def create_model(name: str, num_classes: int, in_chans: int = 3, img_size: int | tuple[int, int] = 32,
                 **overrides: Any):
    """A lowdata preset (see `lowdata models`) or any timm model, sized to the data; `overrides` are timm's
    keyword names (depth=6, patch_size=2, ...)."""
    from lowdata.models import create_model as create

    size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
    return create(name, num_classes=num_classes, in_chans=in_chans, img_size=size, **overrides)


def quiet():
    """A context manager: inside it, runs print no epoch lines or progress bars and each kind of note once (as a
    study's cells do), e.g. `with lowdata.quiet(): lowdata.train(...)`."""
    from lowdata.console import quiet as quiet_console

    return quiet_console()


def named_data(settings: dict[str, Any]) -> dict[str, Any]:
    """`data` may be in memory: (images, labels), (images, labels, test_images, test_labels), torch Datasets;
    it is stored once in lowdata's cache and named `tensors:PATH` in the run's config (data/memory.py).
    `data_classes` names the classes of in-memory data."""
    data, classes = settings.get("data"), settings.pop("data_classes", None)
    if data is None or isinstance(data, (str, Path)):
        return {**settings, **({"data": str(data)} if data is not None else {})}
    from lowdata.data.memory import dataset_spec

    return {**settings, "data": dataset_spec(data, classes)}
