"""Equal-compute studies: each cell's epochs from a training budget in FLOPs, its recipe's cost per labelled
image (what the cell's objective says it computes, runs/planning.py, the parts runs/cost.py records of a run)
and its labelled-set size."""
from __future__ import annotations

from typing import Any

from lowdata.config import TrainConfig
from lowdata.errors import UsageError

MIN_EPOCHS, MAX_EPOCHS = 1, 10_000  # the floor and ceiling a cell's epochs are held to, with a note


def cost_per_image(recipe, available: dict[str, Any], base: dict[str, Any], shape: tuple[int, int, int],
                   num_classes: int) -> float:
    """Training FLOPs per labelled image drawn: what the objective the cell builds says it computes
    (runs/planning.py), its teacher and guide the linked recipes' models."""
    from lowdata.runs.planning import cost_per_labelled_image
    from lowdata.study.recipes import LINK_SETTINGS

    linked = {LINK_SETTINGS.get(setting, setting): {**base, **available[name].settings}
              for setting, name in recipe.links().items() if setting != "init"}
    return cost_per_labelled_image({**base, **recipe.settings}, linked, shape, num_classes)


def epochs_for_flops(flops: float, size: int, per_image: float, config: TrainConfig) -> tuple[int, str | None]:
    """The epochs that spend about `flops` on `size` labelled images (less the validation part), held to
    [MIN_EPOCHS, MAX_EPOCHS]; and a note when a bound held them."""
    train_images = size - int(round(size * config.val_fraction))
    wanted = flops / (per_image * train_images * config.repeated_aug)
    epochs = min(MAX_EPOCHS, max(MIN_EPOCHS, round(wanted)))
    if wanted < MIN_EPOCHS:
        return epochs, (f"{wanted:.2g} epochs would spend the budget; held at {MIN_EPOCHS}, so this cell "
                        f"spends {epochs * per_image * train_images / flops:.1f}x the budget")
    if wanted > MAX_EPOCHS:
        return epochs, f"{wanted:,.0f} epochs would spend the budget; held at {MAX_EPOCHS:,}"
    return epochs, None


def check_budget_flops(flops: float | None) -> None:
    if flops is not None and not flops > 0:
        raise UsageError(f"--budget-flops must be a positive number of FLOPs (e.g. 2e15), got {flops}")
