"""`create_model(name, ...)`: a registered preset, or any timm model, sized to the dataset.

Input channels, image size and the number of classes always come from the dataset; `overrides` are timm's
keyword names (`patch_size`, `depth`, `embed_dim`, ...) and win over a preset's defaults.
"""
from __future__ import annotations

from typing import Any

from torch import nn

from lowdata.errors import UsageError, shown
from lowdata.models.registry import MODELS, ModelSpec

__all__ = ["MODELS", "ModelSpec", "create_model"]


def create_model(name: str, num_classes: int, in_chans: int, img_size: tuple[int, int],
                 drop_path: float | None = None, distilled: bool = False, **overrides: Any) -> nn.Module:
    """`drop_path=None` keeps the model's own default stochastic depth. `distilled` adds DeiT's distillation
    token (ViT presets; timm's own `deit_*_distilled` names have it already)."""
    if distilled:
        if name not in MODELS or MODELS.get(name).family != "transformer":
            raise UsageError(f"a distillation token needs a ViT preset ({', '.join(transformer_presets())}), "
                             f"not {name!r}; timm's deit_*_distilled models have one built in")
        overrides = {**overrides, "distilled": True}
    import timm

    if name in MODELS:
        from lowdata.models.timm_names import timm_name

        # through timm's factory, so the model carries timm's pretrained_cfg and reconstruction arguments
        try:
            return timm.create_model(timm_name(name), num_classes=num_classes, in_chans=in_chans,
                                     img_size=tuple(img_size), drop_path_rate=drop_path, **overrides)
        except (TypeError, ValueError, RuntimeError, ZeroDivisionError) as err:  # e.g. depth=-1, embed_dim=0
            first = str(err).splitlines()[0] if str(err) else err.__class__.__name__
            raise UsageError(f"model {shown(name)} rejected its settings ({first}); check model_args") from None

    if not timm.is_model(name):
        raise UsageError(MODELS.unknown_message(name, extra=", or any timm model name (see `lowdata models --timm`)"))
    kwargs = {"num_classes": num_classes, "in_chans": in_chans, "img_size": img_size, **overrides}
    if drop_path is not None:
        kwargs["drop_path_rate"] = drop_path
    # timm's CNNs take no img_size (and a few models no drop_path_rate); timm has no public way to ask a model's
    # entry point which keywords it takes, so drop the ones it rejects, but never ones the user asked for
    for optional in ("img_size", "drop_path_rate"):
        try:
            return timm.create_model(name, pretrained=False, **kwargs)
        except TypeError as err:
            if optional not in str(err) or optional in overrides or optional not in kwargs:
                raise UsageError(f"model {shown(name)} rejected its settings: {err}; check model_args") from None
            kwargs.pop(optional)
    try:
        return timm.create_model(name, pretrained=False, **kwargs)
    except TypeError as err:
        raise UsageError(f"model {shown(name)} rejected its settings: {err}; check model_args") from None


def transformer_presets() -> list[str]:
    return [name for name in MODELS.names() if MODELS.get(name).family == "transformer"]


def default_lr(name: str) -> float:
    return MODELS.get(name).lr if name in MODELS else ModelSpec.lr


def default_drop_path(name: str) -> float:
    """A preset's stochastic depth; 0 for timm's models, which is timm's own default."""
    return MODELS.get(name).drop_path if name in MODELS else 0.0


def sized_model_args(name: str, model_args: dict[str, Any], img_size: tuple[int, int]) -> dict[str, Any]:
    """`model_args` with what keeps a preset's design token grid at `img_size` (its patch size or tokenizer
    depth), unless the user set the grid or the tokenizer; timm's own models and CNNs are left alone."""
    spec = MODELS.get(name) if name in MODELS else None
    if spec is None or spec.sized_args is None or {"patch_size", "tokenizer", "tokenizer_layers"} & set(model_args):
        return dict(model_args)
    return {**spec.sized_args(tuple(img_size)), **model_args}


def grid_note(name: str, given: dict[str, Any], sized: dict[str, Any], img_size: tuple[int, int]) -> str | None:
    """One line on the token grid a preset took for an image size other than its design's (32 px); None when
    it kept the design size or the user chose the grid."""
    from lowdata.models.vit import DESIGN_SIZE

    added = {key: value for key, value in sized.items() if key not in given}
    if not added or tuple(img_size) == (DESIGN_SIZE, DESIGN_SIZE):
        return None
    key, value = next(iter(added.items()))
    reduction = 2 ** value if key == "tokenizer_layers" else value
    what = f"{value} conv-pool stage{'s' if value > 1 else ''}" if key == "tokenizer_layers" else f"patch {value}"
    height, width = img_size
    return (f"model: {name} at {width}x{height} takes {what} (about a {-(-width // reduction)}x"
            f"{-(-height // reduction)} token grid, the nearest to its design's at {DESIGN_SIZE} px); model_args.{key}= "
            "chooses another")


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def forward_flops(model: nn.Module, in_chans: int, img_size: tuple[int, int]) -> int:
    """FLOPs of one image's forward pass (models/flops.py: matmuls, convolutions and attention; a multiply-add
    is two)."""
    import torch

    from lowdata.models.flops import flops_of

    return flops_of(lambda: model(torch.zeros(1, in_chans, *img_size)), model)


def _load_presets() -> None:
    from lowdata.models import cnn, vit  # noqa: F401  (registers the presets)
    from lowdata.models.timm_names import register_presets

    register_presets()


_load_presets()
