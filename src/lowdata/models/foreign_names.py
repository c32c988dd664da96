"""Weights saved under another library's names for the same architecture, matched to the model by the order and
shape of their tensors.

A checkpoint of EfficientNet-Lite0 from EfficientNet-PyTorch names its 296 tensors `_conv_stem.weight`,
`_blocks.0._depthwise_conv.weight`, ..., `_fc.weight`; timm's `efficientnet_lite0` has the same 296 tensors, in
the same order, as `conv_stem.weight`, `blocks.0.0.conv_dw.weight`, ..., `classifier.weight`. No library maps
one naming onto the other in general (timm's own converters are per model family), so lowdata pairs the i-th
tensor of the file with the i-th of the model, and only when every pair has the same shape: a file that differs
anywhere is refused in one line naming the first tensor without a place, never loaded in part.
"""
from __future__ import annotations

import torch

from lowdata.errors import UsageError
from lowdata.models.strict import cut, shape


def other_names(found: dict[str, torch.Tensor], own: dict[str, torch.Tensor]) -> bool:
    """Whether the file names its tensors another way than the model: not one of its names is the model's."""
    return bool(found) and not set(found) & set(own)


def match_by_order(found: dict[str, torch.Tensor], own: dict[str, torch.Tensor], where: str,
                   any_shape: frozenset[str] = frozenset()) -> tuple[dict[str, torch.Tensor], str]:
    """`found`'s tensors under `own`'s names, paired in order, and the line that says so; a UsageError naming
    the first tensor that has no place of its exact shape. `any_shape`: the model's names that may pair with a
    tensor of another shape (a classifier for other classes, which `--init` replaces)."""
    if str(where).endswith(".safetensors"):
        raise UsageError(f"the weights in {where} name their tensors another way than the model, and a .safetensors "
                         "file keeps its tensors sorted by name, not in the order they were saved, so they cannot be "
                         "matched by order: give the file its library saved (.pth, .pt, .bin)")
    pairs = list(zip(found.items(), own.items()))
    for index, ((key, value), (name, target)) in enumerate(pairs):
        if value.shape != target.shape and not (name in any_shape and value.dim() == target.dim()):
            raise UsageError(f"the weights in {where} name their tensors another way than the model, and tensor "
                             f"{index + 1} ({cut(key)}, {shape(value)}) has no place: the model's tensor "
                             f"{index + 1} is {cut(name)}, {shape(target)}; give weights of the same architecture "
                             "(teacher_model= / --model names it)")
    if len(found) != len(own):
        first = (list(found)[len(own)] if len(found) > len(own) else list(own)[len(found)])
        side = "the file has more" if len(found) > len(own) else "the model has more"
        raise UsageError(f"the weights in {where} name their tensors another way than the model and hold "
                         f"{len(found)} tensors for the model's {len(own)} ({side}, from {cut(first)}); give "
                         "weights of the same architecture")
    renamed = {name: value for (_, value), (name, _) in pairs}
    first_key, first_name = next(iter(found)), next(iter(own))
    return renamed, (f"matched {len(renamed)} tensors by order and shape (the file's names are another "
                     f"library's: {cut(first_key)} -> {cut(first_name)}, ...)")
