"""The features selection reads: raw-pixel PCA (the floor), or a model's pooled pre-logit features — a lowdata run
(supervised, or a `lowdata pretrain` DINO / MAE encoder), a weights file, a timm name with --pretrained — and, for
the margin strategy, a trained run's class probabilities."""
from __future__ import annotations

from contextlib import nullcontext
from typing import Callable

import numpy as np
import torch
from torch import nn

from lowdata.models.frozen import Frozen, Layout

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


class PreLogits(Frozen):
    """A frozen network, its classifier taken off, whose output is its pooled pre-logit features (timm's
    `forward_head(pre_logits=True)`), read at `input_size` where given (Frozen's own view: an ImageNet model
    reads 32-px images poorly — EfficientNet-Lite0 on CIFAR-10: k-NN accuracy of its features 12 % at 32 px,
    62 % at 128 px: benchmarks/selection_features.py)."""

    output_kind = "pre-logits"  # its cached outputs are kept apart from the same network's logits

    def __init__(self, network: nn.Module, input_size: tuple[int, int] | None = None) -> None:
        # the classifier goes (timm's reset_classifier(0)): the features do not read it, and a head drawn at
        # random for the data's classes would give each run its own cache key and its own pass over the pool
        network.reset_classifier(0)
        super().__init__(network, Layout("contiguous", "selection features"), input_size)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            view = self.own_view(images)
            return self.network.forward_head(self.network.forward_features(view), pre_logits=True).clone()


@torch.no_grad()
def model_outputs(model: nn.Module, images: torch.Tensor, info, logits: bool = False, size: int | None = None,
                  autocast: Callable[[], object] = nullcontext) -> np.ndarray:
    """Pooled pre-logit features or, with `logits`, class probabilities, of the uint8 images, normalised as the
    data's training images are; features read at `size` px high (the aspect kept) where given, under `autocast`
    (a run's precision; fp32 by default). Features come through the teacher-output cache, keyed by the weights
    less the classifier (PreLogits takes `model`'s off), the size and each image's bytes, as a teacher's outputs
    under its run's precision: a study's cells choose their budgets from one pass over the pool, not one each."""
    from lowdata.augment import Normalize
    from lowdata.objectives.teacher_cache import cached_teacher_logits

    normalize = Normalize(info)
    if not logits:
        height, width = images.shape[-2:]
        shape = None if size is None else (size, round(width * size / height))
        vectors, _ = cached_teacher_logits(PreLogits(model, shape), images, normalize, torch.device("cpu"),
                                           autocast, name="feature network")
        return vectors.numpy()
    return torch.cat([model(normalize(images[start:start + BATCH])).float().softmax(dim=1)
                      for start in range(0, len(images), BATCH)]).numpy()
