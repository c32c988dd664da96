"""Named study presets: defaults that explicit flags override."""
from __future__ import annotations

from typing import Any

from lowdata.errors import UsageError, shown

PRESETS: dict[str, dict[str, Any]] = {
    # the `make demo`: a CNN, a plain ViT and a CCT of the same size (0.2-0.3M parameters) on the embedded digits,
    # 4 sizes x 2 seeds, about 2 minutes on 2 CPU cores (two workers). 500 steps give the ViT ~38 epochs at 800
    # labels (over 90 % training accuracy: its curve is about data, not steps); no augmentation, since a one-pixel
    # shift of an 8x8 digit moves an eighth of it (the ViT's training accuracy at 800 labels and 24 epochs: 46 %
    # with the pad-and-crop, 85 % without)
    "quick": {"data": "digits", "sizes": [100, 200, 400, 800], "recipes": ["cnn", "vit-mini", "cct-2"],
              "references": ["cnn", "vit-mini"], "seeds": [0, 1], "budget_steps": 500,
              "settings": {"batch_size": 64, "augment": "none"}},
    # CIFAR-10 from 1,000 to 10,000 labels; about 8 hours on a 2-core CPU (ViT cells ~35 min, CNN cells ~5)
    "cifar10-cpu": {"data": "cifar10", "sizes": [1000, 2500, 5000, 10000], "recipes": ["cnn", "vit"],
                    "seeds": [0, 1, 2], "budget_steps": 3000, "settings": {}},
}


def preset(name: str | None) -> dict[str, Any]:
    if name is None:
        return {}
    if name not in PRESETS:
        raise UsageError(f"unknown preset {shown(name)}; choose one of: {', '.join(PRESETS)}")
    return PRESETS[name]
