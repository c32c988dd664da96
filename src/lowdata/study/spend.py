"""What the cells spent, in the Answer's words: recipes whose larger cells were under-trained (said first, since
they make a curve about steps rather than data), and each budget's best and cheapest-within-noise recipes with
their training cost."""
from __future__ import annotations

import math
from typing import Any

UNDERFIT_POINTS = 0.10  # a size's training accuracy this far below the recipe's best size's: under-trained
COMPUTE_RATIO = 2.0  # cells of one budget whose compute differs more than this are said to
CHEAPER = 0.9  # a recipe is called cheaper when it cost under this share of another's (equal budgets differ a little)


def flops_text(flops: float) -> str:
    for scale, unit in ((1e15, "PFLOP"), (1e12, "TFLOP"), (1e9, "GFLOP")):
        if flops >= scale:
            return f"{flops / scale:.3g} {unit}"
    return f"{flops:.3g} FLOP"


def undertrained(fits: dict[str, Any]) -> list[str]:
    """One line per recipe with sizes whose mean training accuracy falls more than UNDERFIT_POINTS below its
    best size's: those cells did not fit their own labels, so the curve there measures the budget's steps."""
    lines = []
    for recipe, entry in fits["recipes"].items():
        fitted = [m for m in entry["measured"] if m.get("train_acc") is not None]
        if len(fitted) < 2:
            continue
        best = max(fitted, key=lambda m: m["train_acc"])
        low = [m for m in fitted if m["train_acc"] < best["train_acc"] - UNDERFIT_POINTS]
        if not low:
            continue
        where = ", ".join(f"{m['train_acc']:.1%} at {m['labels']:,}" for m in low)
        lines.append(f"- **Under-trained** (measured): {recipe} fits only {where} labels of its own training images, "
                     f"against {best['train_acc']:.1%} at {best['labels']:,}; its curve there shows too few "
                     "training steps, not data hunger. Give those cells more steps (--budget-steps), a fixed "
                     "--budget-epochs or equal compute (--budget-flops) before reading the lines below.")
    return lines


def within_noise(best: dict[str, Any], other: dict[str, Any]) -> bool | None:
    """Whether `other`'s mean error is within two seed spreads of `best`'s; None when a spread is unmeasured."""
    if min(best["seeds"], other["seeds"]) < 2:
        return None
    return other["error_mean"] - best["error_mean"] <= 2 * math.hypot(best["error_std"], other["error_std"])


def cost_lines(n: int, results: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """For one budget (`results` sorted best first): the cheapest recipe within noise of the best, with both
    costs, and a warning when the recipes' compute differs more than COMPUTE_RATIO-fold."""
    costed = [(recipe, m) for recipe, m in results if m.get("train_flops")]
    if len(costed) < 2 or costed[0][0] != results[0][0]:
        return []
    (best, first), lines = costed[0], []
    close = [(recipe, m) for recipe, m in costed[1:] if within_noise(first, m)]
    cheaper = [(recipe, m) for recipe, m in close if m["train_flops"] < CHEAPER * first["train_flops"]]
    if cheaper:
        recipe, m = min(cheaper, key=lambda item: item[1]["train_flops"])
        lines.append(f"  - Cheapest within noise of {best} at {n:,} labels: **{recipe}**, {1 - m['error_mean']:.1%} "
                     f"for {flops_text(m['train_flops'])} of training against {best}'s "
                     f"{flops_text(first['train_flops'])}.")
    elif any(within_noise(first, m) is None for _, m in costed[1:]):
        lines.append(f"  - {best} cost {flops_text(first['train_flops'])} of training; no recipe is called within "
                     "noise of it: one seed measures no spread.")
    else:
        lines.append(f"  - {best} cost {flops_text(first['train_flops'])} of training; no recipe within noise of "
                     "it cost less.")
    flops = {recipe: m["train_flops"] for recipe, m in costed}
    most, least = max(flops, key=flops.get), min(flops, key=flops.get)
    if flops[most] > COMPUTE_RATIO * flops[least]:
        lines.append(f"  - Unequal compute: {most}'s cells had {flops[most] / flops[least]:.1f}x {least}'s "
                     f"({flops_text(flops[most])} vs {flops_text(flops[least])}); compare at equal compute with "
                     "--budget-flops.")
    return lines
