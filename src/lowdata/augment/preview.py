"""`lowdata augment-preview`: a grid of what the model sees under a policy, with the (mixed) labels."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from lowdata.augment.policies import build_policy


def write_preview(data: str, policy_name: str, out: str | Path, images: int = 8, views: int = 3, seed: int = 0,
                  image_size: int | None = None, augment_args: dict[str, Any] | None = None) -> dict[str, Any]:
    """Top row: `images` training images as stored; each further row: one augmented view of each, after the
    whole policy (erasing and mixing included), mapped back to pixels. Titles give the target's two largest
    classes and their weights."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lowdata.streams import stream_seed
    from lowdata.data import load_dataset
    from lowdata.io import atomic_path

    if images < 2 or views < 1:
        from lowdata.errors import UsageError

        raise UsageError("augment-preview needs --images 2 or more and --views 1 or more")
    from lowdata.ledger import Ledger

    if Path(out).exists() and not (Ledger(Path(out).parent).proves(Path(out).name) and is_preview(Path(out))):
        from lowdata.errors import UsageError

        raise UsageError(f"--out {out} exists and is not a preview lowdata wrote (or it changed since); nothing was "
                         "written: give a new file name")
    dataset = load_dataset(data, image_size)
    info = dataset.info
    policy = build_policy(policy_name, info, **(augment_args or {}))
    picks = torch.randperm(len(dataset.train_images), generator=torch.Generator().manual_seed(seed))[:images]
    originals, labels = dataset.train_images[picks], dataset.train_labels[picks]
    generator = torch.Generator().manual_seed(stream_seed(seed, "augment"))
    rows = [(originals.float(), torch.nn.functional.one_hot(labels, info.num_classes).float())]
    for _ in range(views):
        augmented, targets = policy(originals, labels, generator)
        if targets.ndim == 1:
            targets = torch.nn.functional.one_hot(targets, info.num_classes).float()
        rows.append((policy.normalize.inverse(augmented), targets))

    figure, axes = plt.subplots(len(rows), images, figsize=(1.4 * images, 1.6 * len(rows)), squeeze=False)
    for r, (pixels, targets) in enumerate(rows):
        for c in range(images):
            ax = axes[r][c]
            picture = pixels[c].clamp(0, 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
            ax.imshow(picture[..., 0] if info.channels == 1 else picture, cmap="gray" if info.channels == 1 else None,
                      vmin=0, vmax=255, interpolation="nearest")
            ax.set_title(label_text(targets[c], info.classes), fontsize=7)
            ax.axis("off")
    figure.suptitle(f"{info.name}: stored (top) and {views} views under {policy.describe()}", fontsize=7, wrap=True)
    figure.tight_layout()
    with atomic_path(out) as tmp:
        figure.savefig(tmp, format="png", dpi=110, metadata={"Software": SIGNATURE})
    plt.close(figure)
    return {"out": str(out), "policy": policy.describe(), "notes": policy.notes, "images": images, "views": views}


SIGNATURE = "lowdata augment-preview"  # in the PNG's metadata: a later preview replaces a preview, nothing else


def is_preview(path: Path) -> bool:
    """Whether the PNG is of the kind a preview writes (the ledger proves who wrote it)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.info.get("Software") == SIGNATURE
    except (OSError, ValueError):
        return False


def label_text(target: torch.Tensor, classes: tuple[str, ...]) -> str:
    weights, indices = target.topk(min(2, len(classes)))
    parts = [f"{classes[i]} {w:.2f}" for w, i in zip(weights.tolist(), indices.tolist()) if w > 0.005]
    return parts[0].rsplit(" ", 1)[0] if len(parts) == 1 and weights[0] > 0.995 else "\n".join(parts)
