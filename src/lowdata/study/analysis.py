"""The study's analysis: each recipe's learning curve fitted to its measurements, with bootstrap intervals, the
crossovers where a ViT recipe overtakes the CNN reference, and the effective data multipliers against the plain
ViT. Numbers only; study/answer.py says what they mean and study/render.py lays them out."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from lowdata.study import fit
from lowdata.study.layout import Layout
from lowdata.study.plan import Plan


def measurements(rows: list[dict[str, Any]], recipe: str) -> tuple[np.ndarray, np.ndarray]:
    """A recipe's finished sizes and its (seeds, sizes) error matrix, NaN where a seed has no result."""
    mine = [r for r in rows if r["recipe"] == recipe]
    sizes = sorted({r["labels"] for r in mine})
    seeds = sorted({r.get("seed", 0) for r in mine})
    seed_row, size_column = {s: i for i, s in enumerate(seeds)}, {n: j for j, n in enumerate(sizes)}
    matrix = np.full((max(len(seeds), 1), len(sizes)), np.nan)
    for r in mine:
        matrix[seed_row[r.get("seed", 0)], size_column[r["labels"]]] = r["test_error"]
    return np.array(sizes, dtype=float), matrix


def grouped(rows: list[dict[str, Any]], recipe: str) -> tuple[np.ndarray, list[np.ndarray]]:
    sizes, matrix = measurements(rows, recipe)
    return sizes, per_size(matrix)


def per_size(matrix: np.ndarray) -> list[np.ndarray]:
    """Each size's measured errors (its column without the seeds that have none)."""
    return [column[~np.isnan(column)] for column in matrix.T]


MEANS = ("train_flops", "train_seconds", "train_acc")  # per size, over the seeds that recorded them


def cell_means(rows: list[dict[str, Any]], recipe: str, labels: int) -> dict[str, float | None]:
    """Each size's mean training cost (FLOPs, seconds) and training accuracy, and its test set's size; None where
    no cell recorded one (a study from before costs were recorded, a CSV without the column)."""
    means = {}
    for key in MEANS:
        values = [float(row[key]) for row in rows if row["recipe"] == recipe and int(row["labels"]) == labels
                  and row.get(key) not in (None, "")]
        means[key] = round(sum(values) / len(values), 6) if values else None
    counts = [int(row["test_images"]) for row in rows if row["recipe"] == recipe and int(row["labels"]) == labels
              and row.get("test_images") not in (None, "")]
    means["test_images"] = min(counts) if counts else None  # the test set's size: its binomial noise (study/noise.py)
    return means


def fit_all(layout: Layout | Plan, rows: list[dict[str, Any]], prior: float = fit.PRIOR_STRENGTH) -> dict[str, Any]:
    if isinstance(layout, Plan):
        layout = Layout.from_plan(layout)
    curves, boots = {}, {}
    result: dict[str, Any] = {"exponent_prior": {"centre": fit.PRIOR_CENTRE, "strength": prior},
                              "recipes": {}, "crossovers": {}, "multipliers": {}, "against_baseline": {}}
    measured_range: dict[str, tuple[float, float]] = {}  # finished sizes of each fitted recipe
    for recipe in layout.families:
        sizes, matrix = measurements(rows, recipe)
        errors = per_size(matrix)
        measured = [{"labels": int(n), "error_mean": round(float(e.mean()), 6),
                     "error_std": round(float(e.std(ddof=1)) if len(e) > 1 else 0.0, 6), "seeds": len(e),
                     **cell_means(rows, recipe, int(n))}
                    for n, e in zip(sizes, errors)]
        entry: dict[str, Any] = {"family": layout.family(recipe), "measured": measured}
        if len(sizes) >= 3:
            fitted = fit.fit_learning_curve(sizes, matrix, prior=prior, seed=0)
            curve = curves[recipe] = fitted.curve
            boots[recipe] = fitted.replicates
            top = float(sizes[-1])
            entry["fit"] = {"a": r6(curve.a), "b": r6(curve.b), "c": r6(curve.c),
                            "a_interval": spread(fitted.replicates, lambda b: b.a),
                            "c_interval": spread(fitted.replicates, lambda b: b.c),
                            "at_bound": fitted.at_bound,
                            "variance": {"v0": r6(fitted.variance[0]), "v1": r6(fitted.variance[1]),
                                         "from": fitted.variance_source},
                            "interval_method": fitted.interval_method, "interval_note": fitted.note}
            entry["predicted"] = {f"{k}x": {"labels": int(k * top), "error": r6(float(curve.error(k * top))),
                                            "interval": spread(fitted.replicates, lambda b: float(b.error(k * top))),
                                            "extrapolated": True}  # past the largest measured size
                                  for k in (2, 10)}
            measured_range[recipe] = (float(sizes[0]), top)
        else:
            entry["fit"] = None
            entry["no_fit_reason"] = (f"{len(sizes)} finished size{'s' if len(sizes) != 1 else ''}: a curve needs "
                                      "at least 3; add sizes or let the remaining cells finish")
        result["recipes"][recipe] = entry
    cnn, vit = layout.references.get("cnn"), layout.references.get("vit")
    result["references"] = dict(layout.references)
    if cnn in curves:
        for recipe, curve in curves.items():
            if layout.family(recipe) == "vit":  # measured where both curves were measured
                lowest = max(measured_range[recipe][0], measured_range[cnn][0])
                highest = min(measured_range[recipe][1], measured_range[cnn][1])
                result["crossovers"][recipe] = describe_crossover(curve, curves[cnn], boots[recipe],
                                                                  boots[cnn], lowest, highest)
    if vit in curves:
        for recipe, curve in curves.items():
            if recipe != vit:  # the multiplier reads the baseline's curve: measured within its finished sizes
                result["multipliers"][recipe] = [
                    describe_multiplier(curve, curves[vit], boots[recipe], boots[vit], n, measured_range[vit],
                                        own=measured_range[recipe])
                    for n in layout.sizes]
    for recipe, base in (layout.baselines or {}).items():  # the selection axis: R+S read on R's curve
        if recipe in curves and base in curves:
            result["against_baseline"][recipe] = {"baseline": base, "multipliers": [
                describe_multiplier(curves[recipe], curves[base], boots[recipe], boots[base], n, measured_range[base],
                                    own=measured_range[recipe]) for n in layout.sizes]}
    return result


def spread(replicates: list[fit.Curve] | None, value) -> list[float | None] | None:
    """The 90 % interval of `value` over the bootstrap curves; None when the fit could not estimate one."""
    return None if replicates is None else r6(fit.interval([value(b) for b in replicates]))


def describe_crossover(challenger, reference, challenger_boots, reference_boots, lowest, highest) -> dict[str, Any]:
    n = fit.crossover(challenger, reference)
    samples = ([] if challenger_boots is None or reference_boots is None else
               [fit.crossover(c, r) for c, r in zip(challenger_boots, reference_boots)])
    finite = [s for s in samples if s is not None]
    if n is None:
        text = "never under the fit: its fitted accuracy stays below the CNN's up to 10^9 labels"
    elif n <= lowest:
        text = "below the measured range: it is already better at the smallest size"
    elif n <= highest:
        text = f"at about {n:,.0f} labels, inside the measured range"
    else:
        text = f"beyond the measured range, extrapolated to about {n:,.0f} labels"
    return {"labels": None if n is None else round(n), "text": text,
            "interval": r6(fit.interval(finite)) if finite else None,
            "share_never": round(1 - len(finite) / len(samples), 3) if samples else None}


def describe_multiplier(remedy, baseline, remedy_boots, baseline_boots, n, measured: tuple[float, float],
                        own: tuple[float, float] | None = None) -> dict[str, Any]:
    """How many times `n` labels the baseline needs to match the remedy at `n`; extrapolated when those labels
    lie outside the baseline's measured sizes at either end, or `n` outside the remedy's own (`own`)."""
    value = fit.multiplier(remedy, baseline, n)
    lowest, highest = measured
    outside_own = own is not None and not own[0] <= n <= own[1]
    described = {"labels": n, "multiplier": None if math.isinf(value) else round(value, 3), "interval": None,
                 "extrapolated": math.isinf(value) or outside_own or not lowest <= value * n <= highest}
    if remedy_boots is not None and baseline_boots is not None:
        samples = [fit.multiplier(r, b, n) for r, b in zip(remedy_boots, baseline_boots)]
        described["interval"] = [None if math.isinf(v) else round(v, 3) for v in fit.interval(samples)]
    return described


def r6(value):
    if isinstance(value, (tuple, list)):
        return [r6(v) for v in value]
    return None if value is None or math.isinf(value) else round(float(value), 6)
