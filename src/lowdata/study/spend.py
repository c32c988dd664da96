"""What the cells spent, in the Answer's words: recipes whose larger cells were under-trained (said first, since
they make a curve about steps rather than data), and each budget's best and cheapest-within-noise recipes with
their training cost."""
from __future__ import annotations

from typing import Any

from lowdata.study.noise import within_noise

UNDERFIT_POINTS = 0.10  # a size's training accuracy this far below the recipe's best size's: under-trained,
UNDERFIT_FLOOR = 0.60  # and so is one below this: the cells fit less than what small labelled sets allow
COMPUTE_RATIO = 2.0  # cells of one budget whose compute differs more than this are said to
CHEAPER = 0.9  # a recipe is called cheaper when it cost under this share of another's (equal budgets differ a little)


def flops_text(flops: float) -> str:
    for scale, unit in ((1e15, "PFLOP"), (1e12, "TFLOP"), (1e9, "GFLOP")):
        if flops >= scale:
            return f"{flops / scale:.3g} {unit}"
    return f"{flops:.3g} FLOP"


def undertrained(fits: dict[str, Any]) -> list[str]:
    """One line naming each recipe's sizes whose mean training accuracy falls more than UNDERFIT_POINTS below its
    best size's, or below UNDERFIT_FLOOR: those cells did not fit their own labels, so the curve there measures
    the budget's steps, not the data."""
    parts = []
    for recipe, entry in fits["recipes"].items():
        fitted = [m for m in entry["measured"] if m.get("train_acc") is not None]
        if not fitted:
            continue
        best = max(fitted, key=lambda m: m["train_acc"])
        low = [m for m in fitted
               if m["train_acc"] < best["train_acc"] - UNDERFIT_POINTS or m["train_acc"] < UNDERFIT_FLOOR]
        if low:
            against = f" ({best['train_acc']:.1%} at {best['labels']:,})" if best not in low else ""
            where = ", ".join(f"{m['train_acc']:.1%} at {m['labels']:,}" for m in low)
            parts.append(f"{recipe} {where} labels{against}")
    if not parts:
        return []
    return [f"- **Under-trained** (measured): cells that fit only part of their own training images — "
            f"{'; '.join(parts)}; their curves there show too few training steps, not data hunger. Give those cells "
            "more steps (--budget-steps), a fixed --budget-epochs or equal compute (--budget-flops) before reading "
            "the lines below."]


def cost_lines(n: int, results: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """For one budget (`results` sorted best first): the cheapest recipe within noise of the best, with both
    costs (under-bullets of that budget's line)."""
    costed = [(recipe, m) for recipe, m in results if m.get("train_flops")]
    if len(costed) < 2 or costed[0][0] != results[0][0]:
        return []
    best, first = costed[0]
    close = [(recipe, m) for recipe, m in costed[1:] if within_noise(first, m)]
    cheaper = [(recipe, m) for recipe, m in close if m["train_flops"] < CHEAPER * first["train_flops"]]
    if cheaper:
        recipe, m = min(cheaper, key=lambda item: item[1]["train_flops"])
        return [f"    - Cheapest within noise of {best} at {n:,} labels: **{recipe}**, {1 - m['error_mean']:.1%} "
                f"for {flops_text(m['train_flops'])} of training against {best}'s {flops_text(first['train_flops'])}."]
    if any(within_noise(first, m) is None for _, m in costed[1:]):
        return [f"    - {best} cost {flops_text(first['train_flops'])} of training; no recipe is called within "
                "noise of it: one seed measures no spread."]
    return [f"    - {best} cost {flops_text(first['train_flops'])} of training; no recipe within noise of it cost less."]


def unequal_compute(fits: dict[str, Any]) -> list[str]:
    """One line when, at some budgets, one recipe's cells had more than COMPUTE_RATIO times another's compute."""
    ratios = {}
    for n in sorted({m["labels"] for entry in fits["recipes"].values() for m in entry["measured"]}):
        flops = {recipe: m["train_flops"] for recipe, entry in fits["recipes"].items() for m in entry["measured"]
                 if m["labels"] == n and m.get("train_flops")}
        if len(flops) > 1:
            most, least = max(flops, key=flops.get), min(flops, key=flops.get)
            if flops[most] > COMPUTE_RATIO * flops[least]:
                ratios[n] = (most, least, flops[most] / flops[least])
    if not ratios:
        return []
    said = []
    for most, least in sorted({(most, least) for most, least, _ in ratios.values()}):
        low, high = (f(r for m, l, r in ratios.values() if (m, l) == (most, least)) for f in (min, max))
        span = f"{low:.1f}x" if f"{low:.1f}" == f"{high:.1f}" else f"{low:.1f}-{high:.1f}x"
        said.append(f"{most}'s cells had {span} {least}'s")
    said = "; ".join(said)
    return [f"- **Unequal compute** (measured) at {', '.join(f'{n:,}' for n in ratios)} labels: {said}; the "
            "comparison above is at unequal cost: compare at equal compute with --budget-flops."]
