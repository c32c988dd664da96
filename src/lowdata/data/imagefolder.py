"""Decode a folder of images into uint8 tensors, failing loudly on a file it cannot read.

Layouts: PATH/train/<class>/* with PATH/test/<class>/*, or PATH/<class>/* split by a seeded, stratified
hold-out. Every file is decoded up front: a bad file is reported by name before training starts, instead of
being silently replaced by its neighbour (timm) or raising mid-epoch (torchvision's ImageFolder).
"""
from __future__ import annotations

from pathlib import Path

import torch

from lowdata.errors import UsageError

EXTENSIONS = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff"}
HOLDOUT_FRACTION = 0.2


def looks_like_split_folder(root: Path) -> bool:
    return (root / "train").is_dir() and (root / "test").is_dir()


def load_image_folder(root: Path, image_size: int | None, split_seed: int):
    """Return ((train_images, train_labels, test_images, test_labels), classes)."""
    if not root.is_dir():
        raise UsageError(f"image folder {root} does not exist; check the path")
    if looks_like_split_folder(root):
        classes = class_names(root / "train")
        train_files, train_labels = list_images(root / "train", classes)
        test_files, test_labels = list_images(root / "test", classes, allow_missing_classes=True)
        files = train_files + test_files
        labels = torch.tensor(train_labels + test_labels, dtype=torch.long)
        images = decode_all(files, image_size)
        n = len(train_files)
        return (images[:n], labels[:n], images[n:], labels[n:]), classes
    classes = class_names(root)
    files, label_list = list_images(root, classes)
    labels = torch.tensor(label_list, dtype=torch.long)
    images = decode_all(files, image_size)
    train, test = stratified_holdout(labels, HOLDOUT_FRACTION, split_seed)
    return (images[train], labels[train], images[test], labels[test]), classes


def class_names(folder: Path) -> list[str]:
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise UsageError(f"no class folders in {folder}; lay images out as {folder}/<class>/<image>")
    return classes


def list_images(folder: Path, classes: list[str], allow_missing_classes: bool = False):
    files, labels = [], []
    for index, name in enumerate(classes):
        class_dir = folder / name
        if not class_dir.is_dir():
            if allow_missing_classes:
                continue
            raise UsageError(f"class folder {class_dir} is missing; every split needs the same class folders")
        found = sorted(p for p in class_dir.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file())
        files += found
        labels += [index] * len(found)
    extra = sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name not in classes and not p.name.startswith("."))
    if extra:
        raise UsageError(f"{folder} has class folders {extra} that the training split lacks; make both splits match")
    if not files:
        raise UsageError(f"no images ({', '.join(sorted(EXTENSIONS))}) under {folder}; check the path and layout")
    return files, labels


def decode_all(files: list[Path], image_size: int | None) -> torch.Tensor:
    from tqdm import tqdm

    images = [decode_one(path, image_size) for path in tqdm(files, desc="decoding images", disable=None,
                                                               leave=False, unit="img")]
    channels = max(image.shape[0] for image in images)
    images = [image.expand(channels, -1, -1) if image.shape[0] != channels else image for image in images]
    sizes = {tuple(image.shape[1:]) for image in images}
    if len(sizes) > 1:
        examples = ", ".join(f"{h}x{w}" for h, w in sorted(sizes)[:3])
        raise UsageError(f"images have different sizes ({examples}, ...); set image_size=N to resize them all to NxN")
    return torch.stack(images)


def decode_one(path: Path, image_size: int | None) -> torch.Tensor:
    """uint8 (C, H, W) with C = 1 (grey) or 3 (RGB); palettes expanded, alpha dropped.

    Pillow rather than torchvision.io, whose image decoding is deprecated since torchvision 0.29.
    """
    import numpy as np
    from PIL import Image, UnidentifiedImageError
    from torchvision.transforms.v2 import functional as F

    try:
        with Image.open(path) as pil:
            if pil.mode not in ("L", "RGB"):
                pil = pil.convert("L" if pil.mode in ("1", "LA", "I", "I;16", "F") else "RGB")
            array = np.array(pil)
    except (OSError, UnidentifiedImageError, ValueError) as err:
        raise UsageError(f"cannot decode image {path} ({err.__class__.__name__}); remove or replace the file") from None
    image = torch.from_numpy(array)
    image = image.unsqueeze(0) if image.ndim == 2 else image.permute(2, 0, 1).contiguous()
    if image_size is not None and tuple(image.shape[1:]) != (image_size, image_size):
        image = F.resize(image, [image_size, image_size], antialias=True)
    return image


def stratified_holdout(labels: torch.Tensor, test_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (train, test): the same fraction of every class held out, chosen by `seed`."""
    generator = torch.Generator().manual_seed(seed)
    train, test = [], []
    for cls in torch.unique(labels).tolist():
        members = torch.nonzero(labels == cls).flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        n_test = int(round(len(members) * test_fraction))
        test.append(members[:n_test])
        train.append(members[n_test:])
    return torch.cat(train).sort().values, torch.cat(test).sort().values
