"""AdamW with weight decay only on weight matrices, and a per-step cosine schedule with linear warm-up."""
from __future__ import annotations

import torch
from torch import nn


def build_optimizer(model: nn.Module, lr: float, weight_decay: float, layer_decay: float | None = None,
                    betas: tuple[float, float] = (0.9, 0.999)) -> torch.optim.Optimizer:
    """timm's AdamW groups: no decay for norms, biases (ndim <= 1) and the model's `no_weight_decay()` set
    (position embeddings, class token); frozen tensors left out. With `layer_decay`, timm's layer-wise
    learning-rate scales from the model's `group_matcher` (the head gets 1, each block below it one more
    factor); the schedule applies them through each group's `lr_scale`."""
    from timm.optim import create_optimizer_v2

    # PyTorch's fused AdamW (one kernel for every tensor) where the weights' device has it
    fused = all(p.device.type in ("cpu", "cuda") for p in model.parameters())
    return create_optimizer_v2(model, opt="adamw", lr=lr, weight_decay=weight_decay, filter_bias_and_bn=True,
                               layer_decay=layer_decay, betas=betas, fused=fused)


def build_schedule(optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int, min_lr: float):
    """timm's cosine schedule, stepped per update. It is a pure function of the step number, so resuming
    needs only the step, not the scheduler's state."""
    from timm.scheduler import CosineLRScheduler

    longest = total_steps // 5  # a short run still decays: warm-up takes at most a fifth of it
    if warmup_steps > longest:
        from lowdata import console

        console.say(f"warm-up shortened from {warmup_steps} to {longest} steps: the run has only {total_steps} "
                    "steps, and the learning rate should decay over most of them", kind="warm-up")
        warmup_steps = longest
    return CosineLRScheduler(optimizer, t_initial=max(total_steps - warmup_steps, 1), lr_min=min_lr,
                             warmup_t=warmup_steps, warmup_lr_init=min_lr, warmup_prefix=True, t_in_epochs=False)


MIN_STEPS = 4  # an epoch of fewer updates makes "30 epochs" 30 steps on a tiny budget
MIN_BATCH = 8  # BatchNorm's statistics need a few images


def budget_batch(batch_size: int, images: int) -> int:
    """The batch a run trains with: `batch_size`, halved while an epoch of `images` would have fewer than
    MIN_STEPS updates (100 labels at batch 128: one step an epoch; at 25: four), never below MIN_BATCH. Budgets of
    at least MIN_STEPS x batch_size images keep the setting."""
    batch = min(batch_size, images)
    while images < MIN_STEPS * batch and batch // 2 >= MIN_BATCH:
        batch //= 2
    return max(batch, 1)
