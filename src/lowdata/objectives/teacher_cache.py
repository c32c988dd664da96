"""Cached teacher outputs: a frozen teacher's logits on the fixed view (normalised, unaugmented) of each pool
image, computed once and kept in lowdata's cache folder, so that a pooled step reads them instead of running the
teacher (`distill.teacher_cache=true`).

The cache is one safetensors file per teacher, named by the SHA-256 of the teacher's weights, its input size and
the data's normalisation: rows of logits keyed by the SHA-256 of each image's bytes, so that every seed, budget and
student over the same images shares the rows already computed and adds the ones it lacks. A teacher whose weights
changed has another fingerprint, so its runs never read the old rows (the file also names its fingerprint inside);
a file at that path that lowdata's ledger does not prove it wrote is never replaced.

What the cache gives up: the live pooled step shows the teacher a weak view (a crop and a flip) of each drawn
pool image, a new one every time it is drawn; the cache shows it one fixed view, forever. Consistent, patient
views matter to distillation (Beyer et al. 2022, "Knowledge distillation: A good teacher is patient and
consistent"): the cache trades that for a step without the teacher's forward pass. The labelled images keep the
live teacher, which sees the student's own augmented (and mixed) input.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

import torch
from torch import nn

BATCH = 256


def teacher_fingerprint(teacher: nn.Module, mean: torch.Tensor, std: torch.Tensor) -> str:
    """SHA-256 of the teacher's weights (names, shapes, bytes), its input size, what it outputs where not logits
    (`output_kind`) and the normalisation."""
    digest = hashlib.sha256()
    for name, value in teacher.state_dict().items():
        digest.update(name.encode())
        digest.update(str(tuple(value.shape)).encode())
        digest.update(value.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes()
                      if value.numel() else b"")
    digest.update(str(getattr(teacher, "input_size", None)).encode())
    if getattr(teacher, "output_kind", "logits") != "logits":  # e.g. a network's features, apart from its logits
        digest.update(teacher.output_kind.encode())
    digest.update(mean.cpu().numpy().tobytes() + std.cpu().numpy().tobytes())
    return digest.hexdigest()


def image_keys(images: torch.Tensor) -> list[str]:
    """SHA-256 of each uint8 image's bytes (with its shape): the row key of its teacher outputs."""
    return [hashlib.sha256(str(tuple(image.shape)).encode() + image.contiguous().numpy().tobytes()).hexdigest()
            for image in images]


def file_metadata(path: Path) -> dict[str, str] | None:
    """A safetensors file's metadata; None when the file is missing or not a safetensors file."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            return handle.metadata() or {}
    except (OSError, SafetensorError):
        return None


def read_rows(path: Path, fingerprint: str) -> dict[str, torch.Tensor]:
    """The rows of the cache file at `path` for the teacher `fingerprint` (none from another teacher's file)."""
    from safetensors.torch import load_file

    meta = file_metadata(path)
    if not meta or meta.get("teacher") != fingerprint:
        return {}
    keys, logits = meta.get("images", "").split(","), load_file(str(path)).get("logits")
    return dict(zip(keys, logits)) if logits is not None and len(keys) == len(logits) else {}


def write_rows(path: Path, fingerprint: str, rows: dict[str, torch.Tensor]) -> bool:
    """The rows to `path` through io.atomic_path, as the decode cache is written (a file there that lowdata's
    ledger does not prove it wrote is left alone): whether they were saved."""
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    from lowdata.errors import UsageError
    from lowdata.io import atomic_path

    try:
        with atomic_path(path) as tmp:
            save_file({"logits": torch.stack(list(rows.values())).contiguous()}, str(tmp),
                      metadata={"teacher": fingerprint, "images": ",".join(rows)})
        return True
    except (OSError, UsageError, SafetensorError):  # the cache only saves time
        return False


def cached_teacher_logits(teacher: nn.Module, images: torch.Tensor, normalize: nn.Module, device: torch.device,
                          autocast: Callable[[], object], root: Path | None = None, name: str = "teacher"
                          ) -> tuple[torch.Tensor, dict[str, object]]:
    """The teacher's float32 logits (P, K) for the uint8 `images` (P, C, H, W), read from the cache where it has
    them and computed (and added to it) where not; and what the summary says of it. `name` says whose outputs
    they are in the progress line (selection reads a feature network's outputs through the same cache)."""
    from tqdm import tqdm

    from lowdata import console
    from lowdata.io import cache_root

    fingerprint = teacher_fingerprint(teacher, normalize.mean, normalize.std)
    path = (root or cache_root()) / "teacher-outputs" / f"{fingerprint[:40]}.safetensors"
    rows = read_rows(path, fingerprint)
    keys = image_keys(images)
    missing = [i for i, key in enumerate(keys) if key not in rows]
    if missing:  # a frozen teacher's pass over a whole pool takes minutes on a CPU: said, with a bar
        console.say(f"{name} cache: computing the {name}'s outputs on {len(missing):,} images once "
                    f"({len(keys) - len(missing):,} read from {path.parent})", kind="teacher-cache")
    batches = range(0, len(missing), BATCH)
    for start in tqdm(batches, desc=f"{name} outputs", unit="batch", disable=True if console.is_quiet() else None):
        index = torch.tensor(missing[start:start + BATCH])
        with autocast():
            logits = teacher(normalize(images[index].to(device))).float().cpu()
        rows.update({keys[i]: row for i, row in zip(index.tolist(), logits)})
    saved = write_rows(path, fingerprint, rows) if missing else True
    logits = torch.stack([rows[key] for key in keys]).to(device)
    return logits, {"teacher_cache": str(path), "teacher_cache_computed": len(missing),
                    "teacher_cache_read": len(keys) - len(missing), "teacher_cache_saved": saved}
