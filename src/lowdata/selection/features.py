"""The features selection reads: raw-pixel PCA (the floor), or a model's pooled pre-logit features — a lowdata run
(supervised, or a `lowdata pretrain` DINO / MAE encoder), a weights file, a timm name with --pretrained — and, for
the margin strategy, a trained run's class probabilities."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

PCA_DIMENSIONS = 50
BATCH = 256


def pixel_pca(images: torch.Tensor, seed: int, dimensions: int = PCA_DIMENSIONS) -> np.ndarray:
    """(N, C, H, W) uint8 images -> (N, d) principal components of their pixels (randomised SVD, seeded)."""
    from sklearn.decomposition import PCA

    pixels = images.reshape(len(images), -1).float().numpy() / 255.0
    d = min(dimensions, *pixels.shape)
    return PCA(n_components=d, svd_solver="randomized", random_state=seed).fit_transform(pixels).astype(np.float32)


def feature_model(source: str, info, model_name: str | None, pretrained: bool = False) -> tuple[nn.Module, list[str]]:
    """A model built for the data from `source` (what `--init` takes), for its features; and the load report."""
    from lowdata.models import create_model
    from lowdata.models.weights import load_init
    from lowdata.rundir import read_config
    from pathlib import Path

    if Path(source).is_dir():
        config = read_config(Path(source))
        model_name, args = str(config.get("model") or "resnet20"), dict(config.get("model_args") or {})
    else:
        model_name, args = model_name or source, {}
    model = create_model(model_name, num_classes=len(info.classes), in_chans=info.channels,
                         img_size=tuple(info.image_size), **args)
    report = load_init(model, source, pretrained)
    return model.eval(), report


@torch.no_grad()
def model_outputs(model: nn.Module, images: torch.Tensor, info, logits: bool = False) -> np.ndarray:
    """Pooled pre-logit features (timm's `forward_head(pre_logits=True)`) or, with `logits`, class
    probabilities, of the uint8 images, normalised as the data's training images are."""
    from lowdata.augment import Normalize

    normalize = Normalize(info)
    outputs = []
    for start in range(0, len(images), BATCH):
        x = normalize(images[start:start + BATCH])
        if logits:
            outputs.append(model(x).float().softmax(dim=1))
        else:
            outputs.append(model.forward_head(model.forward_features(x), pre_logits=True).float())
    return torch.cat(outputs).numpy()
