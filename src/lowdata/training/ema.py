"""An exponential moving average of the weights, or its null object: evaluation reads `ema.module` either way,
and a checkpoint saves `ema.to_save` (None when there is no average to keep)."""
from __future__ import annotations

from timm.utils import ModelEmaV3
from torch import nn

from lowdata.errors import UsageError


class NoEma(nn.Module):
    """Stands in for the average when it is off: evaluation then sees the trained model itself."""

    to_save = None  # nothing of its own to checkpoint

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.module = model

    def update(self, model: nn.Module, step: int | None = None) -> None:
        pass


class KeptEma(ModelEmaV3):
    @property
    def to_save(self) -> nn.Module:
        return self


def build_ema(model: nn.Module, decay: float) -> nn.Module:
    """timm's ModelEmaV3 with warm-up (small-data runs are short, and a fixed 0.999 average over a few hundred
    steps is mostly init), or NoEma for decay 0."""
    if decay <= 0:
        return NoEma(model)
    if decay >= 1:
        raise UsageError(f"ema_decay must be below 1 (e.g. 0.999), got {decay}")
    return KeptEma(model, decay=decay, use_warmup=True)
