"""The model registry, a leaf (as timm's `_registry.py`): preset files register into it, the factory reads it,
and neither imports the other."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from torch import nn

from lowdata.registry import Registry


@dataclass(frozen=True)
class ModelSpec:
    build: Callable[..., nn.Module]  # (num_classes, in_chans, img_size, drop_path, **overrides) -> module
    family: str  # "cnn" or "transformer"
    summary: str
    drop_path: float = 0.0  # stochastic depth when the user sets none: DeiT's 0.1 for ViTs, 0 for small CNNs
    lr: float = 1e-3  # AdamW peak learning rate at batch 128 when the user sets none
    # the model_args that give an input of another size the token grid the preset has at its design size
    # (ViT family: patch size or tokenizer depth); None for models whose features do not depend on it
    sized_args: Callable[[tuple[int, int]], dict[str, Any]] | None = None


MODELS: Registry[ModelSpec] = Registry("model")
