"""Equal-compute studies: each cell's epochs from a training budget in FLOPs, its recipe's cost per labelled
image (estimated from the models as `lowdata models` counts them, the way runs/cost.py records what a run did)
and its labelled-set size."""
from __future__ import annotations

from typing import Any

from lowdata.config import TrainConfig, build
from lowdata.errors import UsageError

MIN_EPOCHS, MAX_EPOCHS = 1, 10_000  # the floor and ceiling a cell's epochs are held to, with a note


def model_forward_flops(settings: dict[str, Any], shape: tuple[int, int, int], num_classes: int) -> int:
    """One image's forward FLOPs of the model `settings` name, built as a run on this data builds it."""
    from lowdata.models import create_model, sized_model_args
    from lowdata.models.factory import forward_flops

    config = build(TrainConfig, settings)
    channels, size = shape[0], (shape[1], shape[2])
    model = create_model(config.model, num_classes=num_classes, in_chans=channels, img_size=size,
                         drop_path=0.0, distilled=config.dist_token, **sized_model_args(config.model,
                                                                                       config.model_args, size))
    return forward_flops(model, channels, size)


def cost_per_image(recipe, available: dict[str, Any], base: dict[str, Any], shape: tuple[int, int, int],
                   num_classes: int) -> float:
    """Training FLOPs per labelled image drawn: the model forward and backward (3 passes) on it and on the pool
    images drawn beside it, a teacher's forward pass on both, a guide's on the images it guides, and the
    student's moving average on the pool images when it teaches them."""
    settings = {**base, **recipe.settings}
    config = build(TrainConfig, settings)
    pool = config.pool_ratio if config.pool is not None else 0.0
    model = model_forward_flops(settings, shape, num_classes)
    cost = 3 * model * (1 + pool)
    if recipe.teacher:
        cost += model_forward_flops({**base, **available[recipe.teacher].settings}, shape, num_classes) * (1 + pool)
    if config.pool_teacher == "ema" and pool:
        cost += model * pool
    if recipe.guide:
        reads = {"labelled": 1.0, "pool": pool, "both": 1 + pool}[config.guide_on]
        cost += model_forward_flops({**base, **available[recipe.guide].settings}, shape, num_classes) * reads
    return cost


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
