"""Loading weights that must fit a model exactly (a run's own checkpoint, a teacher's weights file), with one
line naming what does not fit instead of PyTorch's "Error(s) in loading state_dict for ResNet:" paragraph."""
from __future__ import annotations

import torch
from torch import nn

from lowdata.errors import UsageError

SHOWN = 2  # tensors named per kind of difference


def load_exactly(module: nn.Module, state: dict[str, torch.Tensor], where: str, fix: str) -> None:
    """`module.load_state_dict(state)`, or a UsageError naming the first tensors that differ and `fix`."""
    problem = mismatch(module.state_dict(), state)
    if problem:
        raise UsageError(f"the weights in {where} do not fit the model ({problem}); {fix}")
    module.load_state_dict(state)


def mismatch(own: dict[str, torch.Tensor], found: dict[str, torch.Tensor]) -> str | None:
    """What differs between the model's tensors and the file's: shapes first, then missing and extra names."""
    shaped = [f"{cut(key)} is {shape(found[key])} in the file, {shape(own[key])} in the model"
              for key in own if key in found and own[key].shape != found[key].shape]
    missing = [cut(key) for key in own if key not in found]
    extra = [cut(key) for key in found if key not in own]
    parts = []
    if shaped:
        parts.append(listed(shaped))
    if missing:
        parts.append(f"{len(missing)} missing from the file: {listed(missing)}")
    if extra:
        parts.append(f"{len(extra)} not in the model: {listed(extra)}")
    return "; ".join(parts) or None


def shape(tensor: torch.Tensor) -> str:
    return "x".join(str(size) for size in tensor.shape) or "a scalar"


def cut(key: str, limit: int = 60) -> str:
    return key if len(key) <= limit else key[:limit - 3] + "..."


def listed(items: list[str]) -> str:
    return ", ".join(items[:SHOWN]) + (f" and {len(items) - SHOWN} more" if len(items) > SHOWN else "")


def refuse_non_finite(module: nn.Module, where: str) -> None:
    """NaN or infinite weights (a diverged run) are refused in one line: they predict nothing."""
    bad = first_non_finite(module)
    if bad is not None:
        raise UsageError(f"the weights in {where} hold NaN or infinite values ({cut(bad)}): the run diverged; "
                         "train it again with a lower lr or with clip_grad")


def first_non_finite(module: nn.Module) -> str | None:
    """The name of the first floating-point tensor of `module` holding a NaN or an infinity, or None."""
    for key, value in module.state_dict().items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            return key
    return None
