"""Dataset sources, each decoded once into uint8 tensors (N, C, H, W) with integer labels and class names.

A dataset is named `NAME[:PATH]` (`digits`, `fashion-mnist:/data/fmnist`, `cifar10:~/cifar`) or is a path to
an image folder. File-based sources go through the decode cache, so a second load is fast.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Callable

import torch

from lowdata.data import cache, download
from lowdata.data.imagefolder import load_image_folder, looks_like_split_folder, stratified_holdout
from lowdata.data.types import Dataset, DatasetInfo, channel_stats, make_info
from lowdata.errors import UsageError, shown
from lowdata.registry import Registry

__all__ = ["DATASETS", "Dataset", "DatasetInfo", "channel_stats", "load_dataset", "make_info"]


# A source takes (path or None, options) and returns a Dataset.
Source = Callable[[str | None, dict], Dataset]
DATASETS: Registry[Source] = Registry("dataset")

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def load_dataset(spec: str, image_size: int | None = None, split_seed: int = 0, classes: str | None = None
                 ) -> Dataset:
    """Load `NAME[:PATH]` or an image-folder path; with `classes`, only those (see keep_classes)."""
    name, path = parse_spec(spec)
    return keep_classes(DATASETS.get(name)(path, {"image_size": image_size, "split_seed": split_seed}), classes)


def parse_spec(spec: str) -> tuple[str, str | None]:
    name, sep, path = spec.partition(":")
    if sep and name in DATASETS:
        return name, os.path.expanduser(path) or None
    if spec in DATASETS:
        return spec, None
    if os.path.isdir(os.path.expanduser(spec)):
        return "folder", os.path.expanduser(spec)
    if os.sep in spec or spec.startswith("."):
        what = "is a file, not a folder" if os.path.exists(os.path.expanduser(spec)) else "does not exist"
        raise UsageError(f"dataset path {shown(spec)} {what}; give a folder of images (PATH/<class>/* or "
                         "PATH/train/<class>/* and PATH/test/<class>/*)")
    raise UsageError(DATASETS.unknown_message(spec, extra=", or a path to an image folder"))


@DATASETS.register("digits")
def load_digits(path: str | None, options: dict) -> Dataset:
    """scikit-learn's 8x8 digits (embedded, no download), split 80/20 by a seeded, stratified hold-out."""
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    # the 17 grey levels 0..16 stretched to 0..255
    images = torch.from_numpy(bunch.images * (255 / 16)).round().to(torch.uint8).unsqueeze(1)
    labels = torch.from_numpy(bunch.target).long()
    train, test = stratified_holdout(labels, test_fraction=0.2, seed=options["split_seed"])
    info = make_info("digits", [str(d) for d in range(10)], images[train], hflip=False)
    return Dataset(info, images[train], labels[train], images[test], labels[test])


@DATASETS.register("tensors")
def load_in_memory(path: str | None, options: dict) -> Dataset:
    """Data handed to the Python API as tensors or a torch Dataset (see data/memory.py)."""
    from lowdata.data.memory import load_tensors

    return load_tensors(path, options)


@DATASETS.register("folder")
def load_folder(path: str | None, options: dict) -> Dataset:
    if path is None:
        raise UsageError("dataset 'folder' needs a path: folder:PATH, or give the path itself")
    return cached_folder(Path(path), Path(path).name or "folder", options)


def cached_folder(root: Path, name: str, options: dict, hflip: bool = True) -> Dataset:
    def decode() -> Dataset:
        arrays, classes, depth = load_image_folder(root, options["image_size"], options["split_seed"])
        return Dataset(make_info(name, classes, arrays[0], hflip, depth), *arrays)

    return cache.cached(root, {"kind": "folder", "name": name, **options}, decode)


def load_cifar(name: str, path: str | None, options: dict) -> Dataset:
    from torchvision import datasets as tvd

    source = tvd.CIFAR10 if name == "cifar10" else tvd.CIFAR100
    if path is not None and looks_like_split_folder(Path(path)):
        return cached_folder(Path(path), name, options)
    if path is None:
        root = download.download_root()
        if not (root / source.base_folder).is_dir():
            download.require_network(source.url, f"{name}:DIR with a downloaded copy (torchvision's format or "
                                                 "an image folder with train/ and test/)")
    else:
        root = Path(path)
        if root.name == source.base_folder:  # the user pointed inside torchvision's folder
            root = root.parent
        if not (root / source.base_folder).is_dir():
            raise UsageError(f"{path} holds neither {source.base_folder}/ (torchvision's format) nor train/ and "
                             f"test/ image folders; point {name}:DIR at one of them")

    def decode() -> Dataset:
        try:
            parts = [source(str(root), train=split, download=path is None) for split in (True, False)]
        except RuntimeError as err:  # torchvision's checksum test failed
            raise UsageError(f"{root / source.base_folder} is incomplete or corrupted ({err}); download it again "
                             "or point at an image folder with train/ and test/") from None
        images = [torch.from_numpy(p.data).permute(0, 3, 1, 2).contiguous() for p in parts]
        labels = [torch.tensor(p.targets, dtype=torch.long) for p in parts]
        info = make_info(name, parts[0].classes, images[0], hflip=True)
        return Dataset(info, images[0], labels[0], images[1], labels[1])

    return cache.cached(root / source.base_folder, {"kind": "torchvision", "name": name, **options}, decode)


DATASETS.register("cifar10")(lambda path, options: load_cifar("cifar10", path, options))
DATASETS.register("cifar100")(lambda path, options: load_cifar("cifar100", path, options))


@DATASETS.register("fashion-mnist")
def load_fashion_mnist(path: str | None, options: dict) -> Dataset:
    """IDX files from PATH, else from Debian's `dataset-fashion-mnist`, else torchvision's download."""
    from lowdata.data.idx import find_idx_files, read_idx

    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot"]
    candidates = [Path(path)] if path else [DEBIAN_FASHION_MNIST, download.download_root() / "FashionMNIST" / "raw"]
    for folder in candidates:
        files = find_idx_files(folder)
        if files is not None:
            break
    else:
        if path:
            raise UsageError(f"no Fashion-MNIST IDX files (train-images-idx3-ubyte[.gz], ...) in {path}; "
                             "point fashion-mnist:DIR at the folder holding them")
        from torchvision.datasets import FashionMNIST

        how = "`apt-get install dataset-fashion-mnist`, or pass fashion-mnist:DIR with the IDX files"
        download.require_network(FashionMNIST.mirrors[0], how)
        FashionMNIST(str(download.download_root()), download=True)
        folder = download.download_root() / "FashionMNIST" / "raw"
        files = find_idx_files(folder)

    def decode() -> Dataset:
        images = {split: torch.from_numpy(read_idx(files[f"{split}_images"])).unsqueeze(1) for split in ("train", "test")}
        labels = {split: torch.from_numpy(read_idx(files[f"{split}_labels"])).long() for split in ("train", "test")}
        info = make_info("fashion-mnist", classes, images["train"], hflip=True)
        return Dataset(info, images["train"], labels["train"], images["test"], labels["test"])

    return cache.cached(folder, {"kind": "idx", "name": "fashion-mnist", **options}, decode)


def keep_classes(dataset: Dataset, names: str | None) -> Dataset:
    """Only the named classes (comma-separated), relabelled 0..k-1 in the order given; train and test alike.
    The normalisation statistics stay the full dataset's, so two class subsets of one dataset (a transfer
    source and target) are normalised the same way."""
    if not names:
        return dataset
    wanted = [name.strip() for name in names.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in dataset.info.classes]
    if unknown or len(set(wanted)) != len(wanted) or len(wanted) < 2:
        raise UsageError(f"classes={shown(names)} must name two or more distinct classes of {dataset.info.name}"
                         f"{f' (unknown: {unknown})' if unknown else ''}; its classes: {', '.join(dataset.info.classes)}")
    old = torch.tensor([dataset.info.classes.index(name) for name in wanted])
    mapping = torch.full((len(dataset.info.classes),), -1, dtype=torch.long)
    mapping[old] = torch.arange(len(wanted))

    def part(images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        keep = mapping[labels] >= 0
        return images[keep], mapping[labels[keep]]

    info = dataclasses.replace(dataset.info, classes=tuple(wanted))
    return Dataset(info, *part(dataset.train_images, dataset.train_labels), *part(dataset.test_images, dataset.test_labels))


def training_paths(spec: str, split_seed: int = 0) -> list[Path] | None:
    """The files behind a dataset's training images, in their order, for an image-folder source (a folder, or
    cifar10:DIR holding train/ and test/); None for a source without files (digits, torchvision's arrays)."""
    from lowdata.data.imagefolder import training_files

    name, path = parse_spec(spec)
    if path is None or not (name == "folder" or looks_like_split_folder(Path(path))):
        return None
    return training_files(Path(path), split_seed)
