"""The model registry, a leaf (as timm's `_registry.py`): preset files register into it, the factory reads it,
and neither imports the other."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import nn

from lowdata.registry import Registry


@dataclass(frozen=True)
class ModelSpec:
    build: Callable[..., nn.Module]  # (num_classes, in_chans, img_size, drop_path, **overrides) -> module
    family: str  # "cnn" or "transformer"
    summary: str
    drop_path: float = 0.0  # stochastic depth when the user sets none: DeiT's 0.1 for ViTs, 0 for small CNNs
    lr: float = 1e-3  # AdamW peak learning rate at batch 128 when the user sets none


MODELS: Registry[ModelSpec] = Registry("model")
