"""Initialising a model from someone else's weights: the only place that edits state dicts. Every change is
reported in one line, so a user sees what was loaded, what was left new and what was dropped."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from lowdata.errors import UsageError

# a self-supervised run saves its encoder inside the method's model under this prefix (objectives/pretrain.py)
ENCODER_PREFIX = "encoder."


def load_init(model: nn.Module, source: str | Path) -> list[str]:
    """Load what fits from `source` (a lowdata run directory, pretraining or training, or a weights file)
    into `model`; tensors whose shape differs (a head for other classes) stay as initialised."""
    state = read_source(Path(source))
    report: list[str] = []
    if any(key.startswith(ENCODER_PREFIX) for key in state):
        dropped = [key for key in state if not key.startswith(ENCODER_PREFIX)]
        state = {key[len(ENCODER_PREFIX):]: value for key, value in state.items() if key.startswith(ENCODER_PREFIX)}
        if dropped:
            report.append(f"dropped the pretraining method's own layers ({len(dropped)} tensors, e.g. {dropped[0]})")
    own = model.state_dict()
    usable = {key: value for key, value in state.items() if key in own and own[key].shape == value.shape}
    if not usable:
        raise UsageError(f"nothing in {source} fits model's layers (no key with a matching shape); "
                         "initialise from a run of the same architecture")
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


def read_source(path: Path) -> dict[str, torch.Tensor]:
    from lowdata.models.loading import WEIGHT_SUFFIXES, read_weights

    if path.is_dir():
        from safetensors.torch import load_file

        from lowdata.training.state import checkpoint_dir

        found = checkpoint_dir(path)
        if found is None:
            raise UsageError(f"no checkpoint in {path}; --init takes a lowdata run directory or a weights file")
        ema = found / "model_ema.safetensors"
        return load_file(str(ema if ema.is_file() else found / "model.safetensors"))
    if path.is_file() and path.suffix in WEIGHT_SUFFIXES:
        return read_weights(path)
    raise UsageError(f"--init {path} is neither a lowdata run directory nor a weights file "
                     f"({', '.join(WEIGHT_SUFFIXES)}); check the path")


def freeze_all_but_head(model: nn.Module) -> list[str]:
    """Linear probe: only the classifier head(s) train. Returns the names of the trainable tensors."""
    heads = model.get_classifier()
    heads = heads if isinstance(heads, tuple) else (heads,)
    model.requires_grad_(False)
    for head in heads:
        head.requires_grad_(True)
    return [name for name, p in model.named_parameters() if p.requires_grad]
