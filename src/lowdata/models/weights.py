"""Initialising a model from someone else's weights: the only place that edits state dicts.

Adaptations, each through timm's public functions where one exists and each reported in one line:
  - absolute position embeddings resampled to the model's patch grid (`resample_abs_pos_embed`), with the
    prefix rows (class, distillation token) kept, dropped or duplicated to match;
  - the patch-embedding kernel resampled when the patch size differs (`resample_patch_embed`, FlexiViT);
  - the first convolution's input channels adapted, RGB <-> grayscale (`adapt_input_conv`);
  - a new head where the classes differ: in number, or, for a lowdata run, in name (a 5-class head trained on
    digits 5-9 is no start for digits 0-4); a distillation token dropped or left new.
Everything else must match by name and shape; what does not is left as initialised and listed.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from lowdata.errors import UsageError
from lowdata.models.foreign_names import match_by_order, other_names

# prefixes under which other tools nest a backbone's state dict: a self-supervised run's encoder
# (objectives/mae.py), DDP's wrapper
NESTING_PREFIXES = ("encoder.", "module.")


def load_init(model: nn.Module, source: str | Path, pretrained: bool = False,
              classes: Sequence[str] | None = None) -> list[str]:
    """Load what fits from `source` into `model`; returns the report, one line per change.

    `classes` are the target's class names: a lowdata run that learned other classes gives no head.
    """
    from lowdata.models.sources import read_source
    from lowdata.rundir import run_classes

    state, report = read_source(str(source), pretrained)
    state, unnested = unnest(state)
    report += unnested
    own = model.state_dict()
    if other_names(state, own):  # another library's names for the same architecture
        state, matched = match_by_order(state, own, str(source), frozenset(head_keys(model)))
        report.append(matched)
    state, adapted = adapt(state, model)
    report += adapted
    learned = run_classes(Path(source))
    if classes is not None and learned is not None and list(learned) != list(classes):
        dropped = [key for key in head_keys(model) if key in state]
        for key in dropped:
            state.pop(key)
        if dropped:
            report.append(f"new head: the source learned other classes ({shorten(learned)}) than these "
                          f"({shorten(classes)})")
    usable = {key: value for key, value in state.items() if key in own and own[key].shape == value.shape}
    if not usable:
        raise UsageError(f"nothing in {source} fits the model's layers (no name with a matching shape); "
                         "initialise from a model of the same kind (a ViT from a ViT)")
    reshaped = sorted(key for key in state if key in own and key not in usable)
    unused = sorted(key for key in state if key not in own)
    new = sorted(key for key in own if key not in state)
    model.load_state_dict(usable, strict=False)
    report.insert(0, f"loaded {len(usable)} of {len(own)} tensors from {source}")
    if reshaped:
        report.append(f"kept new (shape differs from the source): {', '.join(reshaped)}")
    if new:
        report.append(f"new (not in the source): {', '.join(new)}")
    if unused:
        report.append(f"unused from the source: {', '.join(unused[:6])}{' ...' if len(unused) > 6 else ''}")
    return report


def shorten(names: Sequence[str], shown: int = 4) -> str:
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")


def unnest(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    for prefix in NESTING_PREFIXES:
        if any(key.startswith(prefix) for key in state):
            dropped = [key for key in state if not key.startswith(prefix)]
            state = {key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix)}
            if dropped:
                return state, [f"took the {prefix[:-1]} and dropped the rest ({len(dropped)} tensors, e.g. "
                               f"{dropped[0]})"]
            return state, []
    return state, []


def adapt(state: dict[str, torch.Tensor], model: nn.Module) -> tuple[dict[str, torch.Tensor], list[str]]:
    state = dict(state)
    own = model.state_dict()
    report: list[str] = []
    if "pos_embed" in state and "pos_embed" in own and hasattr(model, "patch_embed"):
        report += adapt_pos_embed(state, model)
    if "dist_token" in state and "dist_token" not in own:
        state.pop("dist_token")
        for key in ("head_dist.weight", "head_dist.bias"):
            state.pop(key, None)
        report.append("dropped the distillation token and its head (the model has none)")
    first = first_conv_key(own)
    if first and first in state:
        report += adapt_first_conv(state, own, first)
    heads = head_keys(model)
    changed = [key for key in heads if key in state and state[key].shape != own[key].shape]
    if changed:
        outputs = state[changed[0]].shape[0]
        for key in changed:
            state.pop(key)
        report.append(f"new head for {head_classes(model)} classes (the source's head had {outputs} outputs)")
    return state, report


def adapt_pos_embed(state: dict[str, torch.Tensor], model: nn.Module) -> list[str]:
    from timm.layers import resample_abs_pos_embed

    source, target = state["pos_embed"], model.state_dict()["pos_embed"]
    if source.shape == target.shape:
        return []
    grid = list(model.patch_embed.grid_size)
    prefix_target = target.shape[1] - grid[0] * grid[1]  # ConViT's class token, for one, has no position
    prefix_source = source_prefix_tokens(state, source.shape[1])
    old_side = int(round((source.shape[1] - prefix_source) ** 0.5))
    resampled = resample_abs_pos_embed(source.float(), new_size=grid, old_size=[old_side, old_side],
                                       num_prefix_tokens=prefix_source)
    prefix, patches = resampled[:, :prefix_source], resampled[:, prefix_source:]
    if prefix_target > prefix_source:  # a distillation token the source lacks: start it at the class token's
        start = prefix[:, :1] if prefix_source else patches.new_zeros(1, 1, patches.shape[-1])
        prefix = torch.cat([prefix, start.expand(-1, prefix_target - prefix_source, -1)], dim=1)
    prefix = prefix[:, :prefix_target]
    state["pos_embed"] = torch.cat([prefix, patches], dim=1).to(source.dtype)
    return [f"position embeddings resampled from a {old_side}x{old_side} grid to {grid[0]}x{grid[1]}"
            + (f", prefix tokens {prefix_source} -> {prefix_target}" if prefix_source != prefix_target else "")]


def source_prefix_tokens(state: dict[str, torch.Tensor], tokens: int) -> int:
    prefix = int("cls_token" in state) + int("dist_token" in state)
    if "reg_token" in state:
        prefix += state["reg_token"].shape[1]
    for rows in (prefix, 0):  # a ConViT's class token has no row
        side = int(round((tokens - rows) ** 0.5))
        if side * side == tokens - rows:
            return rows
    raise UsageError(f"the source's position embeddings ({tokens} tokens) are not a square grid after "
                     f"{prefix} prefix tokens; it is not a ViT with absolute position embeddings")


def first_conv_key(own: dict[str, torch.Tensor]) -> str | None:
    """The input layer: the first 4-D weight of the state dict (patch embedding or stem convolution)."""
    return next((key for key, value in own.items() if value.ndim == 4 and key.endswith("weight")), None)


def adapt_first_conv(state: dict[str, torch.Tensor], own: dict[str, torch.Tensor], key: str) -> list[str]:
    from timm.layers import resample_patch_embed
    from timm.models import adapt_input_conv

    weight, wanted = state[key], own[key]
    report = []
    if weight.shape[2:] != wanted.shape[2:] and key.startswith("patch_embed"):
        weight = resample_patch_embed(weight.float(), new_size=list(wanted.shape[2:])).to(weight.dtype)
        report.append(f"patch-embedding kernel resampled {tuple(state[key].shape[2:])} -> {tuple(wanted.shape[2:])}")
    if weight.shape[1] != wanted.shape[1]:
        weight = adapt_input_conv(wanted.shape[1], weight.float()).to(weight.dtype)
        report.append(f"{key} adapted from {state[key].shape[1]} to {wanted.shape[1]} input channels")
    state[key] = weight
    return report


def head_keys(model: nn.Module) -> list[str]:
    heads = model.get_classifier() if hasattr(model, "get_classifier") else ()
    heads = heads if isinstance(heads, tuple) else (heads,)
    ids = {id(p) for head in heads for p in head.parameters()}
    return [name for name, p in model.named_parameters() if id(p) in ids]


def head_classes(model: nn.Module) -> int | str:
    return getattr(model, "num_classes", "the")


def freeze_all_but_head(model: nn.Module) -> list[str]:
    """Linear probe (and the first phase of freeze-then-unfreeze): only the classifier head(s) train. Returns
    the names of the trainable tensors."""
    heads = model.get_classifier()
    heads = heads if isinstance(heads, tuple) else (heads,)
    model.requires_grad_(False)
    for head in heads:
        head.requires_grad_(True)
    return [name for name, p in model.named_parameters() if p.requires_grad]
