"""Named study presets: defaults that explicit flags override."""
from __future__ import annotations

from typing import Any

from lowdata.errors import UsageError

PRESETS: dict[str, dict[str, Any]] = {
    # the `make demo`: CNN vs ViT on the embedded digits, 4 sizes x 2 seeds, a few minutes on 2 CPU cores
    "quick": {"data": "digits", "sizes": [100, 200, 400, 800], "recipes": ["cnn", "vit"], "seeds": [0, 1],
              "budget_steps": 150, "settings": {"batch_size": 64}},
    # CIFAR-10 from 1,000 to 10,000 labels; about 8 hours on a 2-core CPU (ViT cells ~35 min, CNN cells ~5)
    "cifar10-cpu": {"data": "cifar10", "sizes": [1000, 2500, 5000, 10000], "recipes": ["cnn", "vit"],
                    "seeds": [0, 1, 2], "budget_steps": 3000, "settings": {}},
}


def preset(name: str | None) -> dict[str, Any]:
    if name is None:
        return {}
    if name not in PRESETS:
        raise UsageError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    return PRESETS[name]
