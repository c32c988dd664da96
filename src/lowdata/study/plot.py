"""The study's figures: the learning curves (measured accuracy per size with its spread over seeds, and the
fitted curves), and test accuracy against training cost at each label budget."""
from __future__ import annotations

import io
from typing import Any

import numpy as np

from lowdata.study.analysis import grouped
from lowdata.study.layout import Layout

SIGNATURE = "lowdata study report"  # curves.png's metadata, so a later report knows the file for its own


def plot_curves(layout: Layout, rows: list[dict[str, Any]], fits: dict[str, Any]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.5), dpi=110)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    shown: list[float] = []
    for index, recipe in enumerate(layout.families):
        sizes, errors = grouped(rows, recipe)
        if not len(sizes):
            continue
        colour = colours[index % len(colours)]
        accuracy = np.array([100 * (1 - e.mean()) for e in errors])
        shown += list(accuracy)
        spread = np.array([100 * e.std(ddof=1) if len(e) > 1 else 0.0 for e in errors])
        axis.plot(sizes, accuracy, "o-", color=colour, label=recipe)
        axis.fill_between(sizes, accuracy - spread, accuracy + spread, color=colour, alpha=0.2, linewidth=0)
        curve = fits["recipes"][recipe]["fit"]
        if curve:
            end = sizes[-1] * 10 if layout.train_images is None else min(sizes[-1] * 10, layout.train_images)
            for low, high, style in ((sizes[0], sizes[-1], "--"), (sizes[-1], end, ":")):
                if high > low:
                    grid = np.logspace(np.log10(low), np.log10(high), 50)
                    axis.plot(grid, 100 * (1 - (curve["a"] + curve["b"] * grid ** -curve["c"])), style,
                              color=colour, alpha=0.8)
    if layout.num_classes:
        axis.axhline(100 / layout.num_classes, color="grey", linestyle="-.", linewidth=1,
                     label=f"chance ({100 / layout.num_classes:.0f} %)")
    if shown:
        axis.set_ylim(*accuracy_limits(shown, 100 / layout.num_classes if layout.num_classes else None))
    axis.set_xscale("log")
    axis.set_xlabel("labelled training examples")
    axis.set_ylabel("test accuracy (%)")
    spread = "mean ± std over seeds" if len(layout.seeds) > 1 else "one seed"
    axis.set_title(f"{layout.title}: {spread}; fit dashed, extrapolated dotted", fontsize=10)
    axis.grid(True, which="both", alpha=0.3)
    axis.legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": SIGNATURE})
    plt.close(figure)
    return buffer.getvalue()


MIN_SPAN = 30.0  # percentage points: a narrower axis would draw a test set's noise as a curve's shape


def accuracy_limits(accuracies: list[float], chance: float | None) -> tuple[float, float]:
    """The curves' y-range in %: from below chance (or the lowest point) to above the highest point, at least
    MIN_SPAN tall, within 0-100."""
    low = min(accuracies + ([chance] if chance is not None else [])) - 5
    high = max(accuracies) + 5
    if high - low < MIN_SPAN:
        high = low + MIN_SPAN
    high = min(high, 100.0)
    return max(0.0, min(low, high - MIN_SPAN)), high


def plot_cost(layout: Layout, rows: list[dict[str, Any]]) -> bytes:
    """Test accuracy against training cost, one panel per label budget: a point per recipe (its seeds' mean)
    with the seeds' spread of both as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    sizes = [n for n in layout.sizes if any(r["labels"] == n and r.get("train_flops") for r in rows)]
    every = [float(r["train_flops"]) for r in rows if r.get("train_flops")]
    scale, unit = next(((s, u) for s, u in ((1e15, "PFLOP"), (1e12, "TFLOP"), (1e9, "GFLOP")) if max(every) >= s),
                       (1.0, "FLOP"))
    wide = max(every) > 10 * min(every)  # a log axis only where costs span more than 10x
    figure, axes = plt.subplots(1, max(len(sizes), 1), figsize=(2.6 * max(len(sizes), 1) + 1, 3.4), dpi=110,
                                sharey=True, squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for axis, n in zip(axes[0], sizes):
        for index, recipe in enumerate(layout.families):
            cells = [r for r in rows if r["recipe"] == recipe and r["labels"] == n and r.get("train_flops")]
            if not cells:
                continue
            flops = np.array([float(r["train_flops"]) / scale for r in cells])
            accuracy = np.array([100 * (1 - float(r["test_error"])) for r in cells])
            axis.errorbar(flops.mean(), accuracy.mean(), yerr=accuracy.std(ddof=1) if len(cells) > 1 else None,
                          xerr=flops.std(ddof=1) if len(cells) > 1 else None, fmt="o", capsize=3,
                          color=colours[index % len(colours)], label=recipe)
        if wide:
            axis.set_xscale("log")
        axis.set_title(f"{n:,} labels", fontsize=10)
        axis.set_xlabel(f"training {unit}")
        axis.margins(x=0.15)
        axis.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("test accuracy (%)")
    axes[0][-1].legend(fontsize=8)
    spread = "mean ± std over seeds" if len(layout.seeds) > 1 else "one seed"
    figure.suptitle(f"{layout.title}: accuracy against training cost ({spread})", fontsize=10)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": SIGNATURE})
    plt.close(figure)
    return buffer.getvalue()
