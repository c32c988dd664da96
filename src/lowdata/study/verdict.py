"""The Answer's two measured statements: the data hunger (the plain ViT against the CNN) and the remedies (each
ViT-family recipe against the plain ViT), read from the cells' mean accuracies, never from the fits."""
from __future__ import annotations

from typing import Any

from lowdata.study.layout import Layout


def accuracies(fits: dict[str, Any], recipe: str) -> dict[int, float]:
    """Mean test accuracy by labelled-set size, for the sizes the recipe finished."""
    entry = fits["recipes"].get(recipe)
    return {} if entry is None else {m["labels"]: 1 - m["error_mean"] for m in entry["measured"]}


def points(value: float) -> str:
    return f"{abs(value) * 100:.1f} point{'' if round(abs(value) * 100, 1) == 1 else 's'}"


def hunger(layout: Layout, fits: dict[str, Any], idle: list[str]) -> list[str]:
    """How far the plain ViT trails the CNN at the smallest and largest sizes both finished; nothing when either
    stayed near chance (`idle`: the Answer's warning says so instead)."""
    cnn, vit = layout.references.get("cnn"), layout.references.get("vit")
    if cnn in idle or vit in idle:
        return []
    cnn_acc, vit_acc = accuracies(fits, cnn), accuracies(fits, vit)
    shared = sorted(set(cnn_acc) & set(vit_acc))
    if not shared:
        return []
    gaps = {n: cnn_acc[n] - vit_acc[n] for n in shared}
    first, last = shared[0], shared[-1]
    if all(gap <= 0 for gap in gaps.values()):
        return [f"- **No data hunger measured**: the plain {vit} is at or above {cnn} at every size "
                f"({vit_acc[last]:.1%} vs {cnn_acc[last]:.1%} at {last:,} labels)."]
    trend = ""
    if len(shared) > 1:
        trend = ("; the gap narrows as labels grow" if gaps[last] < gaps[first] else
                 "; the gap does not narrow with more labels")
    return [f"- **Data hunger** (measured): the plain {vit} trails {cnn} by {points(gaps[first])} at {first:,} labels "
            f"({vit_acc[first]:.1%} vs {cnn_acc[first]:.1%})" +
            (f" and by {points(gaps[last])} at {last:,} ({vit_acc[last]:.1%} vs {cnn_acc[last]:.1%})"
             if last != first else "") + f"{trend}."]


def remedies(layout: Layout, fits: dict[str, Any], idle: list[str]) -> list[str]:
    """Each ViT-family recipe against the plain ViT, the largest mean gain first: where it beats it and by how much,
    and how much of the plain ViT's gap to the CNN it closes at the smallest size; none against a plain ViT that
    stayed near chance, and none for a recipe that did (`idle`)."""
    cnn, vit = layout.references.get("cnn"), layout.references.get("vit")
    if vit in idle:
        return []
    vit_acc, cnn_acc = accuracies(fits, vit), accuracies(fits, cnn)
    found = []
    for recipe, family in layout.families.items():
        own = accuracies(fits, recipe)
        shared = sorted(set(own) & set(vit_acc))
        if recipe == vit or family != "vit" or recipe in idle or not shared:
            continue
        gains = {n: own[n] - vit_acc[n] for n in shared}
        found.append((sum(gains.values()) / len(gains), recipe, gains))
    lines = []
    for _, recipe, gains in sorted(found, key=lambda item: -item[0]):
        sizes = sorted(gains)
        ahead = [n for n in sizes if gains[n] > 0]
        where = ("at every size" if len(ahead) == len(sizes) else "at no size" if not ahead else
                 "at " + ", ".join(f"{n:,}" for n in ahead) + " labels only")
        figures = ", ".join(f"{'+' if gains[n] >= 0 else '−'}{points(gains[n])} at {n:,}" for n in sizes)
        closed = ""
        first = sizes[0]
        if first in cnn_acc and cnn_acc[first] > vit_acc[first]:
            share = gains[first] / (cnn_acc[first] - vit_acc[first])
            closed = f"; at {first:,} labels it closes {share:.0%} of {vit}'s gap to {cnn}"
        verb = "beats" if ahead else "does not beat"
        lines.append(f"- **Remedy {recipe}** (measured): {verb} the plain {vit} {where} ({figures}){closed}.")
    return lines
