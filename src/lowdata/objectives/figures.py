"""Small figure helpers shared by objectives that draw what they learnt."""
from __future__ import annotations

from pathlib import Path

import torch


def image_rows(path: Path, rows: dict[str, torch.Tensor]) -> None:
    """One labelled row per entry of [0, 255]-valued (N, C, H, W) images, written atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lowdata.io import atomic_path

    n = min(len(v) for v in rows.values())
    figure, axes = plt.subplots(len(rows), n, figsize=(1.2 * n, 1.3 * len(rows)), squeeze=False)
    for r, (name, images) in enumerate(rows.items()):
        for c in range(n):
            picture = images[c].float().clamp(0, 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
            gray = picture.shape[2] == 1
            axes[r][c].imshow(picture[..., 0] if gray else picture, cmap="gray" if gray else None, vmin=0,
                              vmax=255, interpolation="nearest")
            axes[r][c].axis("off")
        axes[r][0].set_title(name, fontsize=8, loc="left")
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    plt.close(figure)
