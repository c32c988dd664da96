"""Decode a folder of images into uint8 tensors, failing loudly on a file it cannot read.

Layouts: PATH/train/<class>/* with PATH/test/<class>/*, or PATH/<class>/* split by a seeded, stratified
hold-out. Every file is decoded up front: a bad file is reported by name before training starts, instead of
being silently replaced by its neighbour (timm) or raising mid-epoch (torchvision's ImageFolder).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from lowdata.errors import UsageError

EXTENSIONS = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff"}
HOLDOUT_FRACTION = 0.2


def looks_like_split_folder(root: Path) -> bool:
    return (root / "train").is_dir() and (root / "test").is_dir()


def load_image_folder(root: Path, image_size: int | None, split_seed: int):
    """Return ((train_images, train_labels, test_images, test_labels), classes, depth), `depth` saying how
    images deeper than 8 bits were mapped to 8 (see choose_depth; None when all are 8-bit)."""
    if not root.is_dir():
        raise UsageError(f"image folder {root} does not exist; check the path")
    if looks_like_split_folder(root):
        classes = class_names(root / "train")
        train_files, train_labels = list_images(root / "train", classes)
        test_files, test_labels = list_images(root / "test", classes, allow_missing_classes=True)
        files = train_files + test_files
        labels = torch.tensor(train_labels + test_labels, dtype=torch.long)
        images, depth = decode_with_depth(files, image_size)
        n = len(train_files)
        return (images[:n], labels[:n], images[n:], labels[n:]), classes, depth
    classes = class_names(root)
    files, label_list = list_images(root, classes)
    labels = torch.tensor(label_list, dtype=torch.long)
    train, test = stratified_holdout(labels, HOLDOUT_FRACTION, split_seed)
    if len(test) == 0 or len(train) == 0:
        raise UsageError(f"{root} has too few images ({len(files)}) for a {HOLDOUT_FRACTION:.0%} test hold-out per "
                         f"class; add images, or lay out {root}/train/<class> and {root}/test/<class> yourself")
    images, depth = decode_with_depth(files, image_size)
    return (images[train], labels[train], images[test], labels[test]), classes, depth


def class_names(folder: Path) -> list[str]:
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise UsageError(f"no class folders in {folder}; lay images out as {folder}/<class>/<image>")
    if len(classes) < 2:
        raise UsageError(f"{folder} has one class folder ({classes[0]}); a classifier needs at least 2 classes")
    return classes


def list_images(folder: Path, classes: list[str], allow_missing_classes: bool = False):
    files, labels, empty, skipped = [], [], [], []
    for index, name in enumerate(classes):
        class_dir = folder / name
        if not class_dir.is_dir():
            if allow_missing_classes:
                continue
            raise UsageError(f"class folder {class_dir} is missing; every split needs the same class folders")
        named = sorted(p for p in class_dir.rglob("*") if p.suffix.lower() in EXTENSIONS)
        found = [p for p in named if readable_file(p)]
        skipped += [p for p in named if p not in set(found)]
        if not found and not allow_missing_classes:
            empty.append(name)
        files += found
        labels += [index] * len(found)
    extra = sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name not in classes and not p.name.startswith("."))
    if extra:
        raise UsageError(f"{folder} has class folders {extra} that the training split lacks; make both splits match")
    if skipped:
        from lowdata import console

        console.say(skipped_note(skipped), kind="data-skipped")
    if not files:
        raise UsageError(f"no images ({', '.join(sorted(EXTENSIONS))}) under {folder}; check the path and layout")
    if empty:
        raise UsageError(f"class folder{'s' if len(empty) > 1 else ''} {', '.join(empty)} in {folder} "
                         f"{'hold' if len(empty) > 1 else 'holds'} no images "
                         f"({', '.join(sorted(EXTENSIONS))}); add images or remove the folder")
    return files, labels


def skipped_note(skipped: list[Path]) -> str:
    """The one rule for an entry with an image's name that is not a regular file (a FIFO, a device such as a link
    to /dev/zero, a dangling link), in `train`, `predict` and `data check` alike: skipped, said once."""
    one = len(skipped) == 1
    return (f"data: skipped {len(skipped)} {'entry' if one else 'entries'} with an image's name that "
            f"{'is not a regular file' if one else 'are not regular files'} (a FIFO, a device, a dangling or "
            f"looping link), e.g. {skipped[0]}")


def readable_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError as err:  # a symlink loop, a permission error
        raise UsageError(f"cannot read {path} ({err.strerror}); remove or repair the link or file") from None


def decode_all(files: list[Path], image_size: int | None) -> torch.Tensor:
    """Every file as uint8 (N, C, H, W). Images deeper than 8 bits are scaled to 8 bits by one linear map for the
    whole dataset (train and test together), so that relative intensities between images survive."""
    return decode_with_depth(files, image_size)[0]


def decode_with_depth(files: list[Path], image_size: int | None) -> tuple[torch.Tensor, dict | None]:
    """decode_all, and the depth mapping it chose (recorded by the run, so predict maps new images the same way)."""
    from tqdm import tqdm

    if image_size is None:
        image_size = mixed_sizes_side(files)
    decoded = [decode_one(path, image_size) for path in tqdm(files, desc="decoding images", disable=None,
                                                             leave=False, unit="img")]
    depth = choose_depth(decoded, files)
    images = to_eight_bits(decoded, depth)
    channels = max(image.shape[0] for image in images)
    images = [image.expand(channels, -1, -1) if image.shape[0] != channels else image for image in images]
    return torch.stack(images), depth


def mixed_sizes_side(files: list[Path]) -> int | None:
    """For images of mixed sizes (a real photo folder), the one side they are all resized to, said once; None
    when they share a size. Reads each file's header only (no pixels are decoded twice)."""
    from PIL import Image

    sizes = []
    for path in files:
        try:
            with Image.open(path) as pil:
                sizes.append((pil.height, pil.width))
        except (OSError, ValueError, Image.DecompressionBombError):
            continue  # decode_one names the file
    if len(set(sizes)) < 2:
        return None
    from lowdata import console

    side = common_side(sizes)
    console.say(f"data: images of {len(set(sizes))} sizes ({shown_sizes(set(sizes))}); each resized to {side}x{side} "
                f"(the median shorter side{', capped' if side == MAX_AUTO_SIDE else ''}); image_size=N chooses "
                "another", kind="mixed-sizes")
    return side


MAX_AUTO_SIDE = 224  # the largest side chosen for mixed sizes without image_size (a CPU's budget; ImageNet's size)


def common_side(sizes: list[tuple[int, int]]) -> int:
    """The side images of mixed sizes are resized to: the median of their shorter sides, at most MAX_AUTO_SIDE."""
    shorter = sorted(min(size) for size in sizes)
    return max(1, min(MAX_AUTO_SIDE, shorter[len(shorter) // 2]))


def shown_sizes(sizes, most: int = 3) -> str:
    """Sizes as W x H (as Pillow and image viewers say them), the first `most`."""
    listed = sorted(sizes)
    return ", ".join(f"{w}x{h}" for h, w in listed[:most]) + (f" and {len(listed) - most} more"
                                                              if len(listed) > most else "")


def resized(image: torch.Tensor, side: int) -> torch.Tensor:
    """The image squashed to side x side, as image_size=side does (decode_one)."""
    from torchvision.transforms.v2 import functional as F

    if tuple(image.shape[1:]) == (side, side):
        return image
    out = F.resize(image.float() if image.dtype == torch.int32 else image, [side, side], antialias=True)
    return out.round().to(torch.int32) if image.dtype == torch.int32 else out


# Pillow modes by what they hold; decode_one converts the rest to these
EIGHT_BIT = {"1": "L", "L": "L", "LA": "L", "La": "L", "P": "RGB", "PA": "RGB", "RGB": "RGB", "RGBA": "RGB",
             "RGBa": "RGB", "RGBX": "RGB", "CMYK": "RGB", "YCbCr": "RGB", "LAB": "RGB", "HSV": "RGB"}
INTEGER = ("I;16", "I;16L", "I;16B", "I;16N", "I")  # unsigned 16-bit, and Pillow's signed 32-bit
FLOAT = ("F",)


def decode_one(path: Path, image_size: int | None) -> torch.Tensor:
    """(C, H, W) with C = 1 (grey) or 3 (RGB): uint8 for 8-bit images (palettes expanded, alpha dropped),
    int32 or float32 for deeper ones (scaled later, for the dataset as a whole).

    Pillow rather than torchvision.io, whose image decoding is deprecated since torchvision 0.29.
    """
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as pil:
            if pil.mode in EIGHT_BIT:
                if pil.mode != EIGHT_BIT[pil.mode]:
                    pil = pil.convert(EIGHT_BIT[pil.mode])
                array = np.array(pil)
            elif pil.mode in INTEGER:
                array = np.array(pil).astype(np.int64)
            elif pil.mode in FLOAT:
                array = np.array(pil).astype(np.float32)
            else:
                raise UsageError(f"image {path} has Pillow mode {pil.mode}, which lowdata cannot convert "
                                 "faithfully; save it as 8- or 16-bit grey or RGB")
    except Image.DecompressionBombError:  # Pillow's guard against images that would exhaust memory
        raise UsageError(f"image {path} is larger than Pillow's limit of {2 * Image.MAX_IMAGE_PIXELS:,} pixels "
                         "(its guard against decompression bombs); shrink it or remove it") from None
    except (OSError, UnidentifiedImageError, ValueError) as err:
        raise UsageError(f"cannot decode image {path} ({err.__class__.__name__}); remove or replace the file") from None
    if array.dtype == np.int64:
        if array.min() < 0 or array.max() >= 2 ** 31:
            raise UsageError(f"image {path} holds values from {array.min()} to {array.max()}; lowdata reads "
                             "unsigned integer images up to 31 bits: rescale it to 0..65535 or 0..255")
        array = array.astype(np.int32)
    elif array.dtype == np.float32 and not np.isfinite(array).all():
        raise UsageError(f"image {path} holds NaN or infinite values; replace them or remove the file")
    image = torch.from_numpy(array)
    image = image.unsqueeze(0) if image.ndim == 2 else image.permute(2, 0, 1).contiguous()
    return image if image_size is None else resized(image, image_size)


def choose_depth(images: list[torch.Tensor], files: list[Path]) -> dict[str, Any] | None:
    """How images deeper than 8 bits map linearly to 0..255, chosen once for a dataset as a whole:
    {"integer_bits": B} for integer images (see integer_bits), {"float_range": [low, high]} for float images
    (see float_range). None when every image is 8-bit. The choice is printed once."""
    import sys

    integer = [image for image in images if image.dtype == torch.int32]
    floating = [image for image in images if image.dtype == torch.float32]
    depth: dict[str, Any] = {}
    if integer:
        depth["integer_bits"] = integer_bits(integer)
        print(f"lowdata: data: {len(integer)} integer images deeper than 8 bits (brightest pixel "
              f"{max(int(image.max()) for image in integer)}) scaled from their {depth['integer_bits']}-bit range "
              "to 8 bits", file=sys.stderr)
    if floating:
        depth["float_range"] = float_range(floating)
        if depth["float_range"] is None:
            first = next(i for i, image in enumerate(images) if image.dtype == torch.float32)
            raise UsageError(f"every floating-point image holds the single value {float(floating[0].min())} (e.g. "
                             f"{files[first]}); nothing to learn from")
        low, high = depth["float_range"]
        print(f"lowdata: data: {len(floating)} floating-point images scaled from [{low:g}, {high:g}] to 8 bits",
              file=sys.stderr)
    return depth or None


def integer_bits(images: list[torch.Tensor]) -> int:
    """The fewest bits (8, 10, 12, ..., 31) that hold the brightest pixel: 12-bit data in a 16-bit file uses all
    256 levels, not 16."""
    brightest = max(int(image.max()) for image in images)
    return next(b for b in (8, 10, 12, 14, 16, 20, 24, 31) if brightest < 2 ** b)


def float_range(images: list[torch.Tensor]) -> list[float] | None:
    """[0, 1] when the values lie there, else their smallest to largest value; None for a single value."""
    low, high = min(float(image.min()) for image in images), max(float(image.max()) for image in images)
    if low >= 0 and high <= 1:
        return [0.0, 1.0]
    return None if high == low else [low, high]


def to_eight_bits(images: list[torch.Tensor], depth: dict[str, Any] | None) -> list[torch.Tensor]:
    """uint8 images: 8-bit ones as they are, deeper ones mapped by `depth` (choose_depth), values beyond its
    range clipped. An image whose kind `depth` does not cover (a run trained on 8-bit data given a 16-bit
    image) is mapped by its own range, the same on every call."""
    out = []
    for image in images:
        if image.dtype == torch.uint8:
            out.append(image)
        elif image.dtype == torch.int32:
            bits = depth["integer_bits"] if depth and "integer_bits" in depth else integer_bits([image])
            out.append(eight_bits(image.double() * (255 / (2 ** bits - 1))))
        else:
            own = float_range([image]) or [0.0, 1.0]  # a constant image alone: read as lying in [0, 1]
            low, high = depth["float_range"] if depth and "float_range" in depth else own
            out.append(eight_bits((image.double() - low) * (255 / (high - low))))
    return out


def eight_bits(scaled: torch.Tensor) -> torch.Tensor:
    return scaled.round().clamp(0, 255).to(torch.uint8)


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


def training_files(root: Path, split_seed: int) -> list[Path]:
    """The training split's image files, in the order `load_image_folder` decodes them (row i of the training
    images is file i): what a list of images to label names."""
    if looks_like_split_folder(root):
        return list_images(root / "train", class_names(root / "train"))[0]
    files, labels = list_images(root, class_names(root))
    train, _ = stratified_holdout(torch.tensor(labels, dtype=torch.long), HOLDOUT_FRACTION, split_seed)
    return [files[i] for i in train.tolist()]


def unlabelled_files(root: Path) -> list[Path] | None:
    """The images of a folder of unlabelled images (no class folders: images directly in it, or in folders of
    folders a person made for other reasons are not told apart), sorted; None for a class-folder layout."""
    if not root.is_dir() or any(p.is_dir() and not p.name.startswith(".") for p in root.iterdir()):
        return None
    found = sorted(p for p in root.iterdir() if p.suffix.lower() in EXTENSIONS and readable_file(p))
    if not found:
        raise UsageError(f"no images ({', '.join(sorted(EXTENSIONS))}) in {root}; check the path")
    return found
