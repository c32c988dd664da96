"""Mixup and CutMix with a mixing weight and a box per image, switching between the two per batch (DeiT).

timm's `Mixup` draws from NumPy's global RNG and, per image, only in a Python loop; here the weights come from
the run's generator and the boxes are built as one mask. Targets are made by timm's `mixup_target` with a
per-image weight: rows of the soft targets sum to 1. Label smoothing stays in the objective.
"""
from __future__ import annotations

import numpy as np
import torch


class NoMixing:
    """The pass-through: hard labels stay hard."""

    def __call__(self, images: torch.Tensor, labels: torch.Tensor, generator: torch.Generator):
        return images, labels

    def __repr__(self) -> str:
        return "NoMixing()"


class MixupCutmix:
    def __init__(self, num_classes: int, mixup_alpha: float = 0.8, cutmix_alpha: float = 1.0,
                 switch_prob: float = 0.5, probability: float = 1.0) -> None:
        if mixup_alpha <= 0 and cutmix_alpha <= 0:
            raise ValueError("MixupCutmix needs mixup_alpha or cutmix_alpha above 0; use NoMixing otherwise")
        self.num_classes, self.mixup_alpha, self.cutmix_alpha = num_classes, mixup_alpha, cutmix_alpha
        self.switch_prob, self.probability = switch_prob, probability

    def __call__(self, images: torch.Tensor, labels: torch.Tensor, generator: torch.Generator):
        """Normalised images (N, C, H, W) and class indices (N,) -> mixed images and soft targets (N, classes).
        Each image is mixed with its mirror in the batch (image i with image N-1-i), as in timm."""
        from timm.data.mixup import mixup_target

        n, device = images.shape[0], images.device
        # NumPy's Beta sampler, seeded from the run's generator: reproducible, and no hand-written Beta
        rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=generator,
                                                      device=generator.device).item()))
        use_cutmix = self.mixup_alpha <= 0 or (self.cutmix_alpha > 0 and rng.random() < self.switch_prob)
        alpha = self.cutmix_alpha if use_cutmix else self.mixup_alpha
        lam = torch.from_numpy(rng.beta(alpha, alpha, size=n)).float().to(device)
        lam = torch.where(torch.from_numpy(rng.random(n) < self.probability).to(device), lam, torch.ones_like(lam))
        partner = images.flip(0)
        if use_cutmix:
            mask, lam = cutmix_boxes(images.shape, lam, rng)
            images = torch.where(mask.to(device), partner, images)
        else:
            images = images * lam.view(-1, 1, 1, 1) + partner * (1 - lam.view(-1, 1, 1, 1))
        return images, mixup_target(labels, self.num_classes, lam=lam[:, None])

    def __repr__(self) -> str:
        return (f"MixupCutmix(mixup_alpha={self.mixup_alpha}, cutmix_alpha={self.cutmix_alpha}, "
                f"switch_prob={self.switch_prob}, probability={self.probability})")


def cutmix_boxes(shape: torch.Size, lam: torch.Tensor, rng: np.random.Generator):
    """One box per image covering about 1 - lam of it (centre uniform, clipped at the border, as timm's
    `rand_bbox`); returns the (N, 1, H, W) mask of pasted pixels and lam corrected to the real area."""
    n, _, h, w = shape
    cut = np.sqrt(1.0 - lam.cpu().numpy())
    cut_h, cut_w = (h * cut).astype(int), (w * cut).astype(int)
    cy, cx = rng.integers(0, h, size=n), rng.integers(0, w, size=n)
    top, bottom = np.clip(cy - cut_h // 2, 0, h), np.clip(cy + cut_h // 2, 0, h)
    left, right = np.clip(cx - cut_w // 2, 0, w), np.clip(cx + cut_w // 2, 0, w)
    rows, cols = np.arange(h), np.arange(w)
    inside = (((rows[None, :] >= top[:, None]) & (rows[None, :] < bottom[:, None]))[:, :, None]
              & ((cols[None, :] >= left[:, None]) & (cols[None, :] < right[:, None]))[:, None, :])
    area = (bottom - top) * (right - left)
    corrected = torch.from_numpy(1.0 - area / (h * w)).float().to(lam.device)
    return torch.from_numpy(inside[:, None]), corrected
