"""`lowdata predict`: a finished run's model on new images, with the run's own preprocessing.

Everything comes from the run directory (architecture from its checkpoint's config; channels, input size,
normalisation and class names from its summary), so predicting needs neither the training data nor labels.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Sequence

import torch

from lowdata.errors import UsageError


def predict(run: str | Path, images: Sequence[str | Path] | str | Path | torch.Tensor, top_k: int = 1,
            device: str | None = None, batch_size: int = 256) -> list[dict[str, Any]]:
    """One entry per image: {"image", "classes": [top-k names], "probabilities": [...]}. `images` are image
    paths, a folder (every image under it, sorted), or a uint8 (N, C, H, W) tensor at the run's input size."""
    from lowdata.runs.load import load_run

    loaded = load_run(run, device)
    if top_k < 1:
        raise UsageError(f"--top-k must be at least 1, got {top_k}")
    names, batch = load_inputs(images, loaded.info)
    k = min(top_k, len(loaded.classes))
    results = []
    for start in range(0, len(batch), batch_size):
        values, indices = loaded.logits(batch[start:start + batch_size]).softmax(dim=1).topk(k, dim=1)
        for offset, (row_values, row_indices) in enumerate(zip(values.tolist(), indices.tolist())):
            results.append({"image": names[start + offset], "classes": [loaded.classes[i] for i in row_indices],
                            "probabilities": [round(v, 6) for v in row_values]})
    return results


def load_inputs(images, info) -> tuple[list[str], torch.Tensor]:
    """(names, uint8 (N, C, H, W)) shaped as the run's input: resized, grey <-> RGB as the model wants."""
    from lowdata.data.imagefolder import EXTENSIONS, skipped_note

    if isinstance(images, torch.Tensor):
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise UsageError(f"an image tensor must be uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
        return [str(i) for i in range(len(images))], torch.stack([fit_image(image, info) for image in images])
    paths = [Path(images)] if isinstance(images, (str, Path)) else [Path(p) for p in images]
    files, skipped = [], []
    for path in paths:
        if path.is_dir():
            named = sorted(p for p in path.rglob("*") if p.suffix.lower() in EXTENSIONS)
            files += [p for p in named if p.is_file()]
            skipped += [p for p in named if not p.is_file()]
        elif path.is_file():
            files.append(path)
        else:
            raise UsageError(f"{path} is neither an image nor a folder; check the path")
    if skipped:
        from lowdata import console

        console.say(skipped_note(skipped), kind="data-skipped")
    if not files:
        raise UsageError(f"no images ({', '.join(sorted(EXTENSIONS))}) among {', '.join(map(str, paths))}")
    return [str(f) for f in files], torch.stack([fit_image(image, info) for image in decode_each(files, info.depth)])


def decode_each(files: list[Path], depth: dict | None) -> list[torch.Tensor]:
    """uint8 images, deeper ones mapped to 8 bits as the run's training data was (`depth`), so an image's
    scores never depend on which other images share the call."""
    from lowdata.data.imagefolder import decode_one, to_eight_bits

    return to_eight_bits([decode_one(path, None) for path in files], depth)


def fit_image(image: torch.Tensor, info) -> torch.Tensor:
    from torchvision.transforms.v2 import functional as F

    channels, size = info.channels, tuple(info.image_size)
    if image.shape[0] != channels:
        if channels == 3 and image.shape[0] == 1:
            image = image.expand(3, -1, -1)
        elif channels == 1 and image.shape[0] == 3:
            image = F.rgb_to_grayscale(image)
        else:
            raise UsageError(f"an image with {image.shape[0]} channels cannot feed a model of {channels}")
    if tuple(image.shape[1:]) != size:
        image = F.resize(image, list(size), antialias=True)
    return image.contiguous()


def check_predictions_target(path: Path) -> None:
    """Before predicting: `path` is writable and is not a file lowdata did not write (an earlier predictions
    file may be replaced)."""
    import os

    from lowdata.io import check_writable
    from lowdata.ledger import Ledger

    if path.is_dir():
        raise UsageError(f"--out {path} is a folder; give a file such as {path / 'predictions.csv'}")
    if os.path.lexists(path) and not (Ledger(path.parent).proves(path.name) and is_predictions_file(path)):
        raise UsageError(f"--out {path} exists and is not a predictions file lowdata wrote (or it changed since); "
                         "nothing was written: give a new file name")
    check_writable(path, "--out")


def is_predictions_file(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8") as handle:
            head = handle.read(64)
    except (OSError, UnicodeDecodeError):
        return False
    return head.startswith("image,class,probability") or head.replace(" ", "").replace("\n", "").startswith(
        '[{"classes":') or head.strip() == "[]"


def write_predictions(results: list[dict[str, Any]], path: Path) -> None:
    """CSV or JSON, by the file's suffix."""
    from lowdata.io import atomic_write_json, atomic_write_text

    if path.suffix == ".json":
        atomic_write_json(path, results)
    else:
        atomic_write_text(path, predictions_csv(results))


def predictions_csv(results: list[dict[str, Any]]) -> str:
    """image, class, probability, then class_2, probability_2 ... for top-k."""
    k = max(len(r["classes"]) for r in results)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["image"] + [f"{name}{'' if i == 0 else f'_{i + 1}'}" for i in range(k)
                                 for name in ("class", "probability")])
    for r in results:
        writer.writerow([r["image"]] + [x for pair in zip(r["classes"], r["probabilities"]) for x in pair])
    return buffer.getvalue()
