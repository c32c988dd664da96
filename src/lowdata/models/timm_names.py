"""lowdata's presets as timm models, so that timm (and tools built on it) can rebuild any run's model.

Every preset is registered in timm's model registry under `lowdata_<preset>` (`cct-2/3x2` -> `lowdata_cct_2_3x2`)
when `lowdata.models` is imported, and lowdata builds its presets through `timm.create_model` too: a model then
carries timm's `pretrained_cfg` and its reconstruction arguments, which is what `timm`'s own `config.json`
writer reads (models/export.py). After `import lowdata.models`:

    timm.create_model("lowdata_resnet20", num_classes=10, in_chans=3, img_size=32)
    timm.create_model("local-dir:RUN/model", pretrained=True)   # a finished run's weights and preprocessing
"""
from __future__ import annotations

import re
from functools import partial
from typing import Any

from torch import nn

PREFIX = "lowdata_"

# timm's register_model reads the pretrained config of an entry point from its module's `default_cfgs`
default_cfgs: dict[str, dict[str, Any]] = {}


def timm_name(preset: str) -> str:
    """The timm registry name of a lowdata preset."""
    return PREFIX + re.sub(r"[^0-9a-zA-Z]+", "_", preset).strip("_")


def build_preset(preset: str, num_classes: int = 10, in_chans: int = 3, img_size: Any = 32,
                 drop_path_rate: float | None = None, **overrides: Any) -> nn.Module:
    """The preset's module, with timm's keyword names (what timm's factory passes an entry point)."""
    from lowdata.models.registry import MODELS

    spec = MODELS.get(preset)
    size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
    return spec.build(num_classes=num_classes, in_chans=in_chans, img_size=size,
                      drop_path=spec.drop_path if drop_path_rate is None else drop_path_rate, **overrides)


def register_presets() -> None:
    """Register every lowdata preset with timm (idempotent: a preset already registered is left as it is)."""
    import timm
    from timm.models import build_model_with_cfg, register_model

    from lowdata.models.registry import MODELS

    for preset in MODELS.names():
        name = timm_name(preset)
        if timm.is_model(name):
            continue
        transformer = MODELS.get(preset).family == "transformer"
        # the CIFAR defaults; a run's own size, channels and normalisation go into its exported config.json
        default_cfgs[name] = {"input_size": (3, 32, 32), "num_classes": 10, "crop_pct": 1.0, "crop_mode": "squash",
                              "interpolation": "bilinear", "fixed_input_size": transformer,
                              "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5),
                              "classifier": "head" if transformer else "fc", "first_conv": None}

        def entry(pretrained: bool = False, _preset: str = preset, _name: str = name, **kwargs: Any) -> nn.Module:
            return build_model_with_cfg(partial(build_preset, _preset), _name, pretrained, **kwargs)

        entry.__name__ = entry.__qualname__ = name
        entry.__module__ = __name__
        register_model(entry)
