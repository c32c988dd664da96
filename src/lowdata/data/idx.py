"""Reader for the IDX format of (Fashion-)MNIST.

Hand-written because torchvision's reader only works inside its own `FashionMNIST/raw` layout and
uncompressed, while users (and Debian's package) have the gzipped files in a folder of their own.
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from lowdata.errors import UsageError

IDX_NAMES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
             "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}


def find_idx_files(folder: Path) -> dict[str, Path] | None:
    """The four IDX files in `folder` (gzipped or not), or None if any is missing."""
    found = {}
    for key, stem in IDX_NAMES.items():
        for candidate in (folder / stem, folder / f"{stem}.gz"):
            if candidate.is_file():
                found[key] = candidate
                break
        else:
            return None
    return found


def read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    # header: two zero bytes, a type code (0x08 = unsigned byte), the number of dimensions, then big-endian sizes
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise UsageError(f"{path} is not an unsigned-byte IDX file; re-download it")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise UsageError(f"{path} is truncated ({body.size} of {int(np.prod(shape))} values); re-download it")
    return body.reshape(shape).copy()
