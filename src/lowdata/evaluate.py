"""Accuracy and loss of a classifier on a held-out split."""
from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F


@torch.inference_mode()
def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, normalize: nn.Module,
             device: torch.device, autocast: Callable[[], AbstractContextManager], batch_size: int = 512
             ) -> dict[str, float]:
    """Top-1 accuracy and mean cross-entropy over uint8 `images`."""
    was_training = model.training
    model.eval()
    correct, loss_sum = 0, 0.0
    for start in range(0, len(images), batch_size):
        x = normalize(images[start:start + batch_size].to(device))
        y = labels[start:start + batch_size].to(device)
        with autocast():
            logits = model(x)
        loss_sum += F.cross_entropy(logits.float(), y, reduction="sum").item()
        correct += (logits.argmax(dim=1) == y).sum().item()
    model.train(was_training)
    n = max(len(images), 1)
    return {"acc": correct / n, "loss": loss_sum / n}
