"""The learning-curve figure: measured accuracy per size with its spread over seeds, and the fitted curves."""
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
    for index, recipe in enumerate(layout.families):
        sizes, errors = grouped(rows, recipe)
        if not len(sizes):
            continue
        colour = colours[index % len(colours)]
        accuracy = np.array([100 * (1 - e.mean()) for e in errors])
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
    axis.set_xscale("log")
    axis.set_xlabel("labelled training examples")
    axis.set_ylabel("test accuracy (%)")
    axis.set_title(f"{layout.title}: mean ± std over seeds; fit dashed, extrapolated dotted", fontsize=10)
    axis.grid(True, which="both", alpha=0.3)
    axis.legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": SIGNATURE})
    plt.close(figure)
    return buffer.getvalue()
