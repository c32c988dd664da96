"""Data a user already holds in memory (tensors, NumPy arrays, a torch Dataset), made into a dataset lowdata can
name: the images are written once to a safetensors file in lowdata's cache, keyed by their content, and the
run's config says `tensors:PATH` — so the run stays self-describing and `--resume` finds the same data.

    from lowdata import train
    train(data=(images, labels), labels=500, model="vit-tiny")             # uint8 (N, C, H, W) or (N, H, W[, C])
    train(data=(train_ds, test_ds), ...)                                   # torch Datasets of (image, label)
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Sequence

import torch

from lowdata.errors import UsageError

SOURCE = "tensors"


def dataset_spec(data: Any, classes: Sequence[str] | None = None, name: str = "memory", hflip: bool = True) -> str:
    """The `tensors:PATH` spec of in-memory data: (images, labels), (images, labels, test_images, test_labels),
    (train_dataset, test_dataset) or one torch Dataset. Without a test split, 20 % of each class is held out
    (seeded by `split_seed`, as for image folders)."""
    parts = list(data) if isinstance(data, (tuple, list)) else [data]
    if len(parts) in (1, 2) and all(is_torch_dataset(part) for part in parts):
        parts = [array for part in parts for array in from_torch_dataset(part)]
    if len(parts) not in (2, 4):
        raise UsageError("in-memory data is (images, labels), (images, labels, test_images, test_labels), "
                         f"(train_dataset, test_dataset) or one torch Dataset; got {len(parts)} parts")
    tensors = {}
    for split, (images, labels) in zip(("train", "test"), zip(parts[0::2], parts[1::2])):
        tensors[f"{split}_images"], tensors[f"{split}_labels"] = as_images(images), as_labels(labels, len(images))
    names = check_tensors(tensors, classes)
    meta = {"name": name, "classes": names, "hflip": hflip}
    digest = hashlib.sha256(json.dumps(meta, sort_keys=True).encode())
    for key in sorted(tensors):
        digest.update(key.encode())
        digest.update(tensors[key].numpy().data)  # the contiguous buffer itself, not a copy
    return f"{SOURCE}:{write_once(tensors, meta, digest.hexdigest()[:20])}"


def check_tensors(tensors: dict[str, torch.Tensor], classes: Sequence[str] | None) -> list[str]:
    """The rules image folders follow, before anything trains: images to learn from, two or more classes,
    every class with training images, no test class the training split lacks. Returns the class names."""
    from lowdata.data.imagefolder import HOLDOUT_FRACTION, stratified_holdout

    images, labels = tensors["train_images"], tensors["train_labels"]
    if len(images) == 0:
        raise UsageError("the in-memory training images are empty (0 images); pass the images to learn from")
    if 0 in images.shape[2:]:
        raise UsageError(f"in-memory images of shape {tuple(images.shape[1:])} hold no pixels; pass (N, C, H, W) "
                         "with H and W of at least 1")
    shapes = {tuple(t.shape[1:]) for key, t in tensors.items() if key.endswith("images")}
    if len(shapes) > 1:
        raise UsageError(f"train and test images differ in shape ({', '.join(map(str, sorted(shapes)))})")
    count = int(labels.max()) + 1
    names = [str(c) for c in classes] if classes is not None else [str(i) for i in range(count)]
    if len(names) < count:
        raise UsageError(f"labels go up to {count - 1}, but {len(names)} class names were given")
    if len(set(names)) != len(names):
        raise UsageError(f"class names repeat ({', '.join(names)}); give each class its own name")
    present = set(labels.unique().tolist())
    if len(present) < 2:
        raise UsageError(f"the in-memory labels hold {len(present)} class; a classifier needs at least 2")
    empty = [name for index, name in enumerate(names) if index not in present]
    if empty:
        raise UsageError(f"class{'es' if len(empty) > 1 else ''} {', '.join(empty[:5])}{' ...' if len(empty) > 5 else ''} "
                         f"{'have' if len(empty) > 1 else 'has'} no training images ({len(empty)} of {len(names)} "
                         "classes); number the labels 0..K-1 without gaps, or name only the classes present")
    if "test_labels" in tensors:
        unknown = sorted(set(tensors["test_labels"].unique().tolist()) - present)
        if unknown:
            raise UsageError(f"test labels {unknown[:5]} are classes the training split lacks; every test class "
                             "needs training images")
    else:
        train, test = stratified_holdout(labels, HOLDOUT_FRACTION, seed=0)
        if len(test) == 0 or len(train) == 0:
            raise UsageError(f"{len(images)} in-memory images are too few for a {HOLDOUT_FRACTION:.0%} test hold-out "
                             "per class; add images, or pass (images, labels, test_images, test_labels)")
    return names


def write_once(tensors: dict[str, torch.Tensor], meta: dict[str, Any], key: str) -> Path:
    from safetensors.torch import save_file

    from lowdata.io import atomic_path, cache_root

    path = cache_root() / "memory" / f"{meta['name']}-{key}.safetensors"
    if not path.is_file():
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata={"lowdata": json.dumps(meta)})
    return path


def load_tensors(path: str | None, options: dict):
    """The `tensors:PATH` source: a file dataset_spec wrote."""
    from safetensors.torch import safe_open

    from lowdata.data.types import Dataset, make_info
    from lowdata.data.imagefolder import stratified_holdout

    if path is None or not Path(path).is_file():
        raise UsageError(f"in-memory dataset file {path} is gone (lowdata's cache was cleared?); pass the data "
                         "to train() again")
    with safe_open(path, framework="pt") as handle:
        meta = json.loads(handle.metadata()["lowdata"])
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    images, labels = tensors["train_images"], tensors["train_labels"]
    if "test_images" in tensors:
        test_images, test_labels = tensors["test_images"], tensors["test_labels"]
    else:
        train, test = stratified_holdout(labels, test_fraction=0.2, seed=options["split_seed"])
        images, labels, test_images, test_labels = images[train], labels[train], images[test], labels[test]
    if options.get("image_size"):
        from torchvision.transforms.v2 import functional as F

        size = [options["image_size"]] * 2
        images, test_images = (F.resize(x, size, antialias=True) for x in (images, test_images))
    info = make_info(meta["name"], meta["classes"], images, hflip=meta["hflip"])
    return Dataset(info, images, labels, test_images, test_labels)


def as_images(images: Any) -> torch.Tensor:
    """uint8 (N, C, H, W) from a tensor or array in (N, C, H, W), (N, H, W, C) with C in 1, 3, or (N, H, W)."""
    x = torch.as_tensor(images)
    if x.dtype != torch.uint8:
        raise UsageError(f"in-memory images must be uint8 (0-255), got {x.dtype}; convert with "
                         "(images * 255).round().to(torch.uint8) if they are floats in 0-1")
    if x.ndim == 3:
        x = x.unsqueeze(1)
    elif x.ndim == 4 and x.shape[1] not in (1, 3) and x.shape[3] in (1, 3):
        x = x.permute(0, 3, 1, 2)
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise UsageError(f"in-memory images must be (N, C, H, W), (N, H, W, C) or (N, H, W) with 1 or 3 channels, "
                         f"got shape {tuple(x.shape)}")
    return x.contiguous()


def as_labels(labels: Any, count: int) -> torch.Tensor:
    y = torch.as_tensor(labels)
    if y.numel() == 0:  # an empty list reads as float: no labels, which check_tensors reports as such
        y = y.long().reshape(0)
    if y.ndim != 1 or len(y) != count or y.dtype.is_floating_point or (len(y) and int(y.min()) < 0):
        raise UsageError(f"labels must be {count} non-negative integer class indices, one per image; got "
                         f"{y.dtype} of shape {tuple(y.shape)}")
    return y.long().contiguous()


def is_torch_dataset(value: Any) -> bool:
    return isinstance(value, torch.utils.data.Dataset) and not isinstance(value, torch.Tensor)


def from_torch_dataset(dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """Every (image, label) of a map-style dataset, images as uint8 tensors (PIL images converted)."""
    from torchvision.transforms.v2 import functional as F

    images, labels = [], []
    for index in range(len(dataset)):
        image, label = dataset[index]
        tensor = F.pil_to_tensor(image) if not isinstance(image, torch.Tensor) else image
        images.append(tensor if tensor.dtype == torch.uint8 else (tensor * 255).round().clamp(0, 255).byte())
        labels.append(int(label))
    return torch.stack(images), torch.tensor(labels)
