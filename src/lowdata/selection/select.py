"""`lowdata select`: rank a dataset's training images for labelling, and write the list a person labels from —
a CSV in labelling order, or Label Studio's tasks JSON."""
from __future__ import annotations

import csv
import io
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from lowdata.errors import UsageError, shown

FORMATS = ("csv", "label-studio")


def select_images(data: str, n: int, out: str, strategy: str = "typiclust", features: str = "pca",
                  labels: int | None = None, seed: int = 0, model: str | None = None, pretrained: bool = False,
                  output_format: str = "csv", image_size: int | None = None, split_seed: int = 0,
                  classes: int | None = None) -> dict[str, Any]:
    """Choose `n` training images of `data` to label by `strategy` over `features` ("pca" or what `--init`
    takes); with `labels`, the seeded budget `train --labels` would take counts as labelled already (covered,
    never chosen); `classes`: how many the images hold (ProbCover's pseudo-label clusters; default the
    dataset's, 10 for unlabelled images). Writes `out`; returns what the command says."""
    from lowdata.data import select_budget
    from lowdata.selection.strategies import STRATEGIES

    if strategy not in (*STRATEGIES.names(), "margin"):
        raise UsageError(STRATEGIES.unknown_message(strategy, extra=", margin"))
    if output_format not in FORMATS:
        raise UsageError(f"--format {shown(output_format)} is unknown; choose csv or label-studio")
    if strategy == "margin" and features == "pca":
        raise UsageError("--strategy margin ranks by a trained run's uncertainty: give --features RUN (a run trained "
                         "on these classes)")
    dataset, paths = candidates(data, image_size, split_seed)
    images, count = dataset.train_images, len(dataset.train_images)
    labelled = np.zeros(count, bool)
    if labels and dataset.info.name == "unlabelled":
        raise UsageError(f"{data} holds unlabelled images only: --labels counts a labelled budget; drop it")
    if labels:
        budget = select_budget(dataset.train_labels, dataset.info.num_classes, seed, total=labels)
        labelled[budget.labelled.numpy()] = True
    if not 0 < n <= int((~labelled).sum()):
        raise UsageError(f"--n {n} is outside the {int((~labelled).sum()):,} images without labels; use 1 to that")
    vectors, report = read_features(features, images, dataset.info, seed, model, pretrained, strategy == "margin")
    if strategy == "margin":
        from lowdata.selection.strategies import choose_margin

        choice = choose_margin(vectors, labelled, n)
    else:
        known = dataset.info.num_classes if dataset.info.name != "unlabelled" else 10
        choice = choose(strategy, vectors, labelled, n, seed, classes or known)
    names = [str(paths[i]) if paths is not None else str(i) for i in choice.index]
    write_list(Path(out), names, choice.score, strategy, output_format)
    return {"selected": len(names), "strategy": strategy, "features": features, "feature_dims": int(vectors.shape[1]),
            "already_labelled": int(labelled.sum()), "candidates": count, "out": out, **choice.notes,
            "features_report": report, "first": names[:3]}


def choose(strategy: str, vectors: np.ndarray, labelled: np.ndarray, n: int, seed: int, classes: int):
    """A registered strategy's choice of `n`, from a generator seeded by `seed` (ProbCover's pseudo-labels in
    `classes` clusters)."""
    from lowdata.selection.strategies import STRATEGIES

    extra = {"classes": classes} if strategy == "probcover" else {}
    return STRATEGIES.get(strategy)(vectors, labelled, n, torch.Generator().manual_seed(seed), **extra)


def candidates(data: str, image_size: int | None, split_seed: int):
    """The images to choose from (a dataset's training split, or a folder of unlabelled images: no class
    folders) and their files in the same order (None for a source without files)."""
    import os

    from lowdata.data import load_dataset
    from lowdata.data.datasets import training_paths
    from lowdata.data.imagefolder import decode_all, unlabelled_files
    from lowdata.data.types import Dataset, make_info

    root = Path(os.path.expanduser(data))
    files = unlabelled_files(root) if root.is_dir() else None
    folders = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")] if root.is_dir() else []
    if files is None and len(folders) == 1:  # one folder of images is not a class layout: its images, unlabelled
        files = unlabelled_files(folders[0])
    if files is None:
        return load_dataset(data, image_size, split_seed), training_paths(data, split_seed)
    images = decode_all(files, image_size)
    info = make_info("unlabelled", ("unlabelled",), images, hflip=True)
    empty = torch.zeros(0, dtype=torch.long)
    return Dataset(info, images, torch.zeros(len(images), dtype=torch.long), images[:0], empty), files


def read_features(features: str, images: torch.Tensor, info, seed: int, model: str | None, pretrained: bool,
                  probabilities: bool, size: int | None = None, autocast: Callable[[], object] = nullcontext
                  ) -> tuple[np.ndarray, list[str]]:
    from lowdata.selection.features import feature_model, model_outputs, pixel_pca

    if features == "pca":
        return pixel_pca(images, seed), []
    network, report = feature_model(features, info, model, pretrained)
    return model_outputs(network, images, info, logits=probabilities, size=size, autocast=autocast), report


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





def chosen_budget(dataset, count: int, strategy: str, features: str, seed: int, model: str | None = None,
                  size: int | None = None, autocast: Callable[[], object] = nullcontext):
    """The labelled budget of `count` training images chosen by `strategy` over `features` (labels unread until
    chosen; `model`: the architecture of a weights file; `size`: the side its model reads the images at, under the
    run's `autocast`), the rest the pool: what `train selection=...` trains on in place of a class-balanced random
    draw."""
    from lowdata.data import Budget
    from lowdata.selection.strategies import STRATEGIES

    if strategy not in STRATEGIES.names():
        raise UsageError(STRATEGIES.unknown_message(strategy))
    vectors, _ = read_features(features, dataset.train_images, dataset.info, seed, model, False, False, size,
                               autocast)
    chosen = choose(strategy, vectors, np.zeros(len(vectors), bool), count, seed, dataset.info.num_classes).index
    labelled = torch.as_tensor(np.sort(chosen), dtype=torch.long)
    rest = np.ones(len(vectors), bool)
    rest[chosen] = False
    return Budget(labelled, torch.zeros(0, dtype=torch.long), torch.as_tensor(np.flatnonzero(rest), dtype=torch.long))


def selection_note(config, info, labels: torch.Tensor) -> str:
    """The run's line on its chosen budget: strategy, features, the size they were read at, images per class."""
    classes = torch.bincount(labels, minlength=info.num_classes).tolist()
    read_at = f" read at {config.selection_size} px" if config.selection_size else ""
    if not config.selection_size and config.selection_features != "pca" and max(info.image_size) < 64 \
            and not Path(config.selection_features).is_dir():  # someone else's model, most likely seen at 224 px
        read_at = (f" read at {max(info.image_size)} px (an ImageNet model reads images this small poorly: "
                   "selection_size=128)")
    return (f"labelled images chosen by {config.selection} on {config.selection_features} features{read_at} "
            f"(per class: {min(classes)} to {max(classes)})")

