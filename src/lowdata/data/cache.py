"""On-disk cache of decoded datasets, keyed by the source's paths, sizes and modification times.

Stored as safetensors (memory-mapped, no pickle) with the DatasetInfo in its metadata; written atomically,
so an interrupted decode never leaves a half-written cache behind.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from lowdata.data import download
from lowdata.errors import UsageError

CACHE_VERSION = 3  # 2: images deeper than 8 bits are scaled, no longer clamped; 3: and the scaling is recorded
TENSORS = ("train_images", "train_labels", "test_images", "test_labels")


def fingerprint(root: Path, options: dict) -> str:
    """Hash of every file's relative path, size and mtime under `root`, plus the decode options."""
    digest = hashlib.sha256(json.dumps({"v": CACHE_VERSION, "root": str(root.resolve()), **options},
                                       sort_keys=True, default=str).encode())
    stack = [str(root)]
    while stack:
        folder = stack.pop()
        with os.scandir(folder) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                # linked folders are not followed, as the listing (Path.rglob) does not: no loops
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                else:
                    try:
                        stat = entry.stat()
                    except OSError:  # a symlink loop or a dangling link: the listing skips it (and says so)
                        stat = entry.stat(follow_symlinks=False)  # the link itself, so a repaired link counts
                    digest.update(f"{entry.path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:24]


def cached(root: Path, options: dict, decode: Callable):
    """Return the cached Dataset for `root` if its files are unchanged, else `decode()` and store it."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open, save_file

    from lowdata.data.types import Dataset, DatasetInfo
    from lowdata.io import atomic_path

    path = download.cache_root() / "datasets" / f"{options['name']}-{fingerprint(root, options)}.safetensors"
    if path.is_file():
        try:
            with safe_open(str(path), framework="pt") as handle:
                meta = json.loads(handle.metadata()["info"])
            tensors = load_file(str(path))
            info = DatasetInfo(**{k: tuple(v) if isinstance(v, list) else v for k, v in meta.items()})  # depth: a dict
            return Dataset(info, *(tensors[name] for name in TENSORS))
        except (SafetensorError, OSError, KeyError, ValueError, TypeError):
            pass  # an unreadable cache entry is rebuilt below
    dataset = decode()
    tensors = {name: getattr(dataset, name).contiguous() for name in TENSORS}
    try:
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata={"info": json.dumps(asdict(dataset.info))})
    except (OSError, UsageError, SafetensorError) as err:  # the cache only saves time: a full disk is no reason to stop
        print(f"lowdata: data: not cached ({err}); the images will be decoded again next time", file=sys.stderr)
    return dataset
