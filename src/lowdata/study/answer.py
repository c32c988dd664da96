"""The Answer: the report's conclusions in words — a warning when cells stay near chance, the measured data
hunger and remedies (study/verdict.py), which recipe to use at each budget and how sure that is, and where a ViT
recipe overtakes the CNN."""
from __future__ import annotations

from typing import Any

from lowdata.study.layout import Layout
from lowdata.study.noise import near_chance, sources, within_noise
from lowdata.study.spend import cost_lines, undertrained, unequal_compute
from lowdata.study.verdict import hunger, remedies


def on_tests(measured: dict[str, Any]) -> str:
    return f" on {int(measured['test_images']):,} test images" if measured.get("test_images") else ""


def conclusion(layout: Layout, fits: dict[str, Any]) -> list[str]:
    lines = []
    chance = 1 / layout.num_classes if layout.num_classes else None
    idle: list[str] = []
    if chance is not None:
        idle = [recipe for recipe, entry in fits["recipes"].items()
                if entry["measured"] and all(near_chance(m, chance) for m in entry["measured"])]
        if idle:
            lines.append(f"- **Warning**: {', '.join(idle)} stay{'s' if len(idle) == 1 else ''} within noise of chance "
                         f"({chance:.1%} for {layout.num_classes} classes) at every size: under-trained or broken, "
                         "not evidence about data hunger; give the cells more steps before reading this study.")
    lines += undertrained(fits) + hunger(layout, fits, idle) + remedies(layout, fits, idle)
    for n in layout.sizes:
        results = [(recipe, m) for recipe, entry in fits["recipes"].items() for m in entry["measured"] if m["labels"] == n]
        if len(results) < 2:
            continue
        results.sort(key=lambda item: item[1]["error_mean"])
        (best, first), (runner, second) = results[0], results[1]
        if chance is not None and near_chance(first, chance):
            lines.append(f"- With {n:,} labels no recipe is named: even the best ({best}, {1 - first['error_mean']:.1%}) "
                         f"is within noise of chance ({chance:.1%}).")
            continue
        gap = second["error_mean"] - first["error_mean"]
        both = f"{1 - first['error_mean']:.1%} vs {1 - second['error_mean']:.1%}{on_tests(first)}"
        close = within_noise(first, second)  # None: one seed and an unknown test set measure no noise
        if close is None:
            lines.append(f"- With {n:,} labels, use **{best}** (measured, one seed: no spread): it beats {runner} by "
                         f"{gap * 100:.1f} points ({both}).")
        elif close:
            lines.append(f"- With {n:,} labels no recipe is named: {best} and {runner} are level within "
                         f"{sources(first)} noise ({both}).")
        else:
            one = ", one seed: the seeds' spread unmeasured" if first["seeds"] < 2 else ""
            lines.append(f"- With {n:,} labels, use **{best}** (measured{one}): it beats {runner} beyond "
                         f"{sources(first)} noise ({both}).")
        lines += cost_lines(n, results)
    lines += unequal_compute(fits)
    for recipe, c in fits["crossovers"].items():
        lines.append(f"- Where {recipe} overtakes {layout.references.get('cnn', 'the CNN')} (read from the fits): "
                     f"{c['text']}.")
    seeds = len(layout.seeds)
    how = ("whole seed-curves resampled, their spread widened for the few seeds measured" if seeds > 1 else
           "curves simulated from the fit's residual variance (one seed)")
    lines.append(f"- How sure: {seeds} seed{'s' if seeds > 1 else ''} per size; intervals are 90 % intervals from "
                 f"{how}. Figures marked * read a fitted curve outside its measured sizes.")
    return lines
