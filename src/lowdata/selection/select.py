"""`lowdata select`: rank a dataset's training images for labelling, and write the list a person labels from —
a CSV in labelling order, or Label Studio's tasks JSON."""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lowdata.errors import UsageError, shown

FORMATS = ("csv", "label-studio")


def select_images(data: str, n: int, out: str, strategy: str = "typiclust", features: str = "pca",
                  labels: int | None = None, seed: int = 0, model: str | None = None, pretrained: bool = False,
                  output_format: str = "csv", image_size: int | None = None, split_seed: int = 0) -> dict[str, Any]:
    """Choose `n` training images of `data` to label by `strategy` over `features` ("pca" or what `--init`
    takes); with `labels`, the seeded budget `train --labels` would take counts as labelled already (covered,
    never chosen). Writes `out`; returns what the command says."""
    from lowdata.data import load_dataset, select_budget
    from lowdata.data.datasets import training_paths
    from lowdata.selection.strategies import STRATEGIES

    if strategy not in (*STRATEGIES.names(), "margin"):
        raise UsageError(STRATEGIES.unknown_message(strategy, extra=", margin"))
    if output_format not in FORMATS:
        raise UsageError(f"--format {shown(output_format)} is unknown; choose csv or label-studio")
    if strategy == "margin" and features == "pca":
        raise UsageError("--strategy margin ranks by a trained run's uncertainty: give --features RUN (a run trained "
                         "on these classes)")
    dataset = load_dataset(data, image_size, split_seed)
    images, count = dataset.train_images, len(dataset.train_images)
    labelled = np.zeros(count, bool)
    if labels:
        budget = select_budget(dataset.train_labels, dataset.info.num_classes, seed, total=labels)
        labelled[budget.labelled.numpy()] = True
    if not 0 < n <= int((~labelled).sum()):
        raise UsageError(f"--n {n} is outside the {int((~labelled).sum()):,} images without labels; use 1 to that")
    generator = torch.Generator().manual_seed(seed)
    vectors, report = read_features(features, images, dataset.info, seed, model, pretrained, strategy == "margin")
    if strategy == "margin":
        from lowdata.selection.strategies import choose_margin

        choice = choose_margin(vectors, labelled, n)
    elif strategy == "probcover":
        choice = STRATEGIES.get(strategy)(vectors, labelled, n, generator, classes=dataset.info.num_classes)
    else:
        choice = STRATEGIES.get(strategy)(vectors, labelled, n, generator)
    paths = training_paths(data, split_seed)
    names = [str(paths[i]) if paths is not None else str(i) for i in choice.index]
    write_list(Path(out), names, choice.score, strategy, output_format)
    return {"selected": len(names), "strategy": strategy, "features": features, "feature_dims": int(vectors.shape[1]),
            "already_labelled": int(labelled.sum()), "candidates": count, "out": out, **choice.notes,
            "features_report": report, "first": names[:3]}


def read_features(features: str, images: torch.Tensor, info, seed: int, model: str | None, pretrained: bool,
                  probabilities: bool) -> tuple[np.ndarray, list[str]]:
    from lowdata.selection.features import feature_model, model_outputs, pixel_pca

    if features == "pca":
        return pixel_pca(images, seed), []
    network, report = feature_model(features, info, model, pretrained)
    return model_outputs(network, images, info, logits=probabilities), report


def write_list(path: Path, names: list[str], scores: np.ndarray, strategy: str, output_format: str) -> None:
    """The list in labelling order: a CSV (rank, image, score), or Label Studio tasks (its import format: a list
    of {"data": {"image": ...}}, with lowdata's rank and score under "meta")."""
    from lowdata.io import atomic_write_json, atomic_write_text

    if output_format == "label-studio":
        tasks = [{"data": {"image": name}, "meta": {"rank": rank, "score": float(score), "strategy": strategy}}
                 for rank, (name, score) in enumerate(zip(names, scores), start=1)]
        atomic_write_json(path, tasks)
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["rank", "image", f"{strategy}_score"])
    for rank, (name, score) in enumerate(zip(names, scores), start=1):
        writer.writerow([rank, name, f"{float(score):.6g}"])
    atomic_write_text(path, buffer.getvalue())


def said(summary: dict[str, Any]) -> str:
    extra = "".join(f", {key} {summary[key]}" for key in ("clusters", "delta", "coverage") if key in summary)
    return (f"chose {summary['selected']:,} of {summary['candidates']:,} images by {summary['strategy']} on "
            f"{summary['features']} features ({summary['feature_dims']} dimensions; "
            f"{summary['already_labelled']:,} labelled already{extra}): {summary['out']}")



