"""`lowdata eval`: a finished run's accuracy on its own test split or on other data, through `load_run` (the
run's architecture, weights, input and normalisation, as predict and export read them)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from lowdata.errors import UsageError


def evaluate_run(checkpoint: str | Path, data: str | None = None, device: str | None = None,
                 tta: bool | None = None) -> dict[str, Any]:
    """Test accuracy (top-1, top-5, per class, confusion) of a finished run's weights, on its own dataset's test
    split, or on `data`: a named dataset's test split, or an image folder as a whole (all its images; a folder
    you evaluate on is not split). Images are normalised with the run's own training statistics; test-time
    augmentation as the run had it, or as `tta` says."""
    from lowdata.config import TrainConfig
    from lowdata.objectives import build_config as build
    from lowdata.data import load_dataset
    from lowdata.metrics import evaluate, per_class_accuracy
    from lowdata.rundir import read_config
    from lowdata.runs.load import load_run

    run_dir = Path(checkpoint)
    build(TrainConfig, read_config(run_dir))  # a folder without a checkpoint is said as such, first
    loaded = load_run(run_dir, device, tta)
    config = loaded.config
    dataset = load_dataset(data or config.data, config.image_size, config.split_seed,
                           classes=None if data else config.classes)
    images, labels = dataset.test_images, dataset.test_labels
    if data is not None:
        images, labels = other_data(data, dataset, loaded.classes)
    result = evaluate(loaded.model, images, labels, loaded.normalize, loaded.device, loaded.autocast)
    return {"test_acc": result["acc"], "test_loss": result["loss"], "test_top5_acc": result.get("top5_acc"),
            "per_class_acc": per_class_accuracy(result["confusion"], loaded.classes), "confusion": result["confusion"],
            "test_images": len(images), "dataset": dataset.info.name, "model": config.model,
            "checkpoint": str(run_dir), "tta": loaded.config.tta if tta is None else tta}


def other_data(data: str, dataset, trained: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Images and labels (as the run's class indices) of data the run was not trained on: a folder whole."""
    from lowdata.data.datasets import parse_spec

    images, labels = dataset.test_images, dataset.test_labels
    if parse_spec(data)[0] == "folder":  # the whole folder: no hold-out of a folder you evaluate on
        images = torch.cat([dataset.train_images, dataset.test_images])
        labels = torch.cat([dataset.train_labels, dataset.test_labels])
    classes = dataset.info.classes
    if list(trained) != list(classes):
        if not set(classes) <= set(trained):
            raise UsageError(f"{data} has classes the run never learned ({', '.join(sorted(set(classes) - set(trained)))}); "
                             f"the run knows {', '.join(trained)}")
        labels = torch.tensor([list(trained).index(name) for name in classes])[labels]  # the run's class indices
    return images, labels
