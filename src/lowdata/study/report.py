"""Study results from the cells' summaries alone: results.csv, fits.json, curves.png, report.md, report.html.

Everything is written deterministically (sorted rows, fixed bootstrap seed, no timestamps in the PNG), so
rebuilding from unchanged cells gives byte-identical files.
"""
from __future__ import annotations

import base64
import dataclasses
import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lowdata.errors import UsageError
from lowdata.io import atomic_path, atomic_write_text
from lowdata.rundir import read_summary
from lowdata.study import fit
from lowdata.study.plan import Plan, load_plan
from lowdata.study.run import cell_dir, is_done

CSV_COLUMNS = ["cell", "recipe", "family", "labels", "seed", "test_acc", "test_error", "epochs", "params",
               "train_seconds", "images_per_second", "pool_images", "num_classes", "steps", "train_acc",
               "train_images", "run"]


@dataclass(frozen=True)
class Layout:
    """What a report needs besides the result rows, from a study's plan or from a CSV of results."""
    title: str
    families: dict[str, str]  # recipe -> "cnn", "vit" (or "other" from a CSV), in report order
    references: dict[str, str]  # family -> its reference recipe
    sizes: list[int]
    seeds: list[int]
    planned: int | None  # cells the study planned; None for results read from a CSV
    num_classes: int | None = None  # for the chance level; None when unknown (a CSV)
    train_images: int | None = None  # the training split's size: no curve is drawn past it; None when unknown

    @classmethod
    def from_plan(cls, plan: Plan) -> "Layout":
        return cls(plan.data.split(":")[0], {r: plan.family(r) for r in plan.recipes}, dict(plan.references),
                   list(plan.sizes), list(plan.seeds), len(plan.cells))

    def family(self, recipe: str) -> str:
        return self.families[recipe]


def build_report(out_dir: Path, prior: float = fit.PRIOR_STRENGTH) -> dict[str, Any]:
    """Rebuild every report file of the study in `out_dir`; returns the fits."""
    plan = load_plan(out_dir)
    rows = collect_rows(plan, out_dir)
    if not rows:
        raise UsageError(f"no finished cells in {out_dir} yet; run `lowdata study` first")
    classes = {r["num_classes"] for r in rows if r.get("num_classes")}
    layout = dataclasses.replace(Layout.from_plan(plan), num_classes=classes.pop() if len(classes) == 1 else None,
                                 train_images=max((r["train_images"] or 0 for r in rows), default=0) or None)
    return write_report(layout, rows, out_dir, prior, with_csv=True)


def write_report(layout: Layout, rows: list[dict[str, Any]], out_dir: Path,
                 prior: float = fit.PRIOR_STRENGTH, with_csv: bool = False) -> dict[str, Any]:
    """fits.json, curves.png, report.md and report.html (and results.csv) in `out_dir`, from result rows
    (recipe, labels, seed, test_error); returns the fits. Everything is computed before the first file is
    written, so a failure leaves the previous report whole rather than half replaced."""
    fits = fit_all(layout, rows, prior)
    png = plot_curves(layout, rows, fits)
    files = {"fits.json": json_text(fits), "report.md": render_markdown(layout, rows, fits, image="curves.png"),
             "report.html": render_html(layout, rows, fits, png)}
    if with_csv:
        files["results.csv"] = csv_text(rows)
    for name, text in files.items():
        atomic_write_text(out_dir / name, text)
    with atomic_path(out_dir / "curves.png") as tmp:
        tmp.write_bytes(png)
    return fits


SIGNATURE = "lowdata study report"  # curves.png's metadata, so a later report knows the file for its own


def refuse_foreign_report(out_dir: Path) -> None:
    """`lowdata fit --out DIR` may share a folder with the user's files (its CSV), and replaces an earlier
    report there, but never a file of the same name that lowdata did not write."""
    def ours(path: Path) -> bool:
        try:
            if path.suffix == ".png":
                from PIL import Image

                with Image.open(path) as image:
                    return image.info.get("Software") == SIGNATURE
            text = path.read_text(encoding="utf-8")[:4096]
        except (OSError, ValueError):
            return False
        return {"fits.json": '"crossovers"' in text, "report.md": text.startswith("# Data-hunger study"),
                "report.html": "<title>lowdata study</title>" in text}[path.name]

    foreign = [name for name in ("fits.json", "curves.png", "report.md", "report.html")
               if (out_dir / name).exists() and not ours(out_dir / name)]
    if foreign:
        raise UsageError(f"--out {out_dir} holds {', '.join(foreign)} that lowdata did not write; nothing was "
                         "written: choose another folder")


def json_text(value: Any) -> str:
    """What atomic_write_json writes, with NaN refused (JSON has none) before any file is touched."""
    import json

    return json.dumps(value, indent=2, sort_keys=True, allow_nan=False) + "\n"


def collect_rows(plan: Plan, out_dir: Path) -> list[dict[str, Any]]:
    rows = []
    for cell in plan.cells:
        if not is_done(out_dir, cell):
            continue
        folder = cell_dir(out_dir, cell)
        summary = read_summary(folder)
        rows.append({"cell": cell.id, "recipe": cell.recipe, "family": plan.family(cell.recipe),
                     "labels": cell.size, "seed": cell.seed, "test_acc": summary["test_acc"],
                     "test_error": 1.0 - summary["test_acc"], "epochs": summary["epochs"],
                     "params": summary["params"], "train_seconds": summary["train_seconds"],
                     "images_per_second": summary["images_per_second"],
                     # unlabelled images a cell could read besides its labels (0: labels only)
                     "pool_images": summary.get("pool_images", 0), "num_classes": summary.get("num_classes"),
                     "steps": summary.get("steps"), "train_acc": summary.get("train_acc"),
                     "train_images": summary["labels"] + summary.get("val_labels", 0) + summary.get("unlabelled_pool", 0),
                     "run": folder.relative_to(out_dir).as_posix()})
    return sorted(rows, key=lambda r: (list(plan.recipes).index(r["recipe"]), r["labels"], r["seed"]))


def csv_text(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


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


def fit_all(layout: Layout | Plan, rows: list[dict[str, Any]], prior: float = fit.PRIOR_STRENGTH) -> dict[str, Any]:
    if isinstance(layout, Plan):
        layout = Layout.from_plan(layout)
    curves, boots = {}, {}
    result: dict[str, Any] = {"exponent_prior": {"centre": fit.PRIOR_CENTRE, "strength": prior},
                              "recipes": {}, "crossovers": {}, "multipliers": {}}
    measured_range: dict[str, tuple[float, float]] = {}  # finished sizes of each fitted recipe
    for recipe in layout.families:
        sizes, matrix = measurements(rows, recipe)
        errors = per_size(matrix)
        measured = [{"labels": int(n), "error_mean": round(float(e.mean()), 6),
                     "error_std": round(float(e.std(ddof=1)) if len(e) > 1 else 0.0, 6), "seeds": len(e)}
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
        text = "never under the fit: the ViT's accuracy stays below the CNN's up to 10^9 labels"
    elif n <= lowest:
        text = "below the measured range: the ViT recipe is already better at the smallest size"
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


def render_markdown(layout: Layout, rows: list[dict[str, Any]], fits: dict[str, Any], image: str) -> str:
    """The answer first (which recipe at which budget, how sure, what each remedy is worth), then the plot,
    then the tables that back it. Accuracy in % throughout."""
    lines = [f"# Data-hunger study: {layout.title}", "",
             f"Recipes {', '.join(layout.families)} at {', '.join(f'{n:,}' for n in layout.sizes)} labels, seeds "
             f"{', '.join(map(str, layout.seeds))}; {finished(len(rows), layout.planned)}; exponent "
             f"prior {fits['exponent_prior']['strength']:g} towards c = {fits['exponent_prior']['centre']:g}.", "",
             "## Answer", ""] + conclusion(layout, fits) + worth(layout, fits)
    lines += ["", f"![learning curves]({image})", "", "## Test accuracy (mean ± std over seeds)", ""]
    lines += ["| recipe | " + " | ".join(f"{n:,}" for n in layout.sizes) + " |",
              "|---|" + "---:|" * len(layout.sizes)]
    for recipe, entry in fits["recipes"].items():
        by_size = {m["labels"]: m for m in entry["measured"]}
        cells = [f"{1 - by_size[n]['error_mean']:.1%} ± {by_size[n]['error_std']:.1%}" if n in by_size else "–"
                 for n in layout.sizes]
        lines.append(f"| {recipe} | " + " | ".join(cells) + " |")
    pooled = sorted({(r["recipe"], r.get("pool_images") or 0) for r in rows if r.get("pool_images")})
    if pooled:
        lines += ["", "Besides its labels, a recipe may read unlabelled images (taught by its teacher); those are not "
                  "counted as labels above: " + ", ".join(f"{recipe} read from {count:,} pool images"
                                                         for recipe, count in pooled) + "."]
    lines += ["", "## Fitted learning curves: accuracy(n) = 100 % − (a + b·n^(−c))", "",
              "90 % intervals in brackets; 2× and 10× the largest size are extrapolations.", "",
              "| recipe | ceiling (100 % − a) | b | c | accuracy at 2× | accuracy at 10× |",
              "|---|---:|---:|---:|---:|---:|"]
    for recipe, entry in fits["recipes"].items():
        if entry["fit"]:
            f, p = entry["fit"], entry["predicted"]
            lines.append(f"| {recipe} | {1 - f['a']:.1%} {accuracy_bracket(f['a_interval'])} | {f['b']:.3g} | "
                         f"{f['c']:.3f} {bracket(f['c_interval'], '.3f')} | "
                         f"{1 - p['2x']['error']:.1%} {accuracy_bracket(p['2x']['interval'])} at {p['2x']['labels']:,} | "
                         f"{1 - p['10x']['error']:.1%} {accuracy_bracket(p['10x']['interval'])} at "
                         f"{p['10x']['labels']:,}{past_the_data(layout, p['10x']['labels'])} |")
        else:
            lines.append(f"| {recipe} | no fit: {entry['no_fit_reason']} | | | | |")
    notes = fit_notes(fits)
    if notes:
        lines += [""] + notes
    if fits["crossovers"]:
        lines += ["", "## Where a ViT recipe overtakes the CNN", ""]
        for recipe, c in fits["crossovers"].items():
            if c["share_never"] is None:
                spread = "; no interval: add seeds"
            elif c["interval"] is None or c["share_never"] >= 0.5:  # mostly no crossover: an interval would mislead
                spread = f"; no crossover in {c['share_never']:.0%} of bootstrap resamples"
            else:
                spread = (f"; 90 % bootstrap interval {c['interval'][0]:,.0f} to {c['interval'][1]:,.0f} labels, "
                          f"no crossover in {c['share_never']:.0%} of resamples")
            lines.append(f"- **{recipe}**: {c['text']}{spread}.")
    if fits["multipliers"]:
        lines += ["", "## Effective data multiplier against the plain ViT", "",
                  f"Labels the plain `{layout.references['vit']}` recipe would need, read from its fitted curve, to "
                  "match each recipe's "
                  "fitted error, as a multiple of the recipe's own labels (* = outside the measured range).", "",
                  "| recipe | " + " | ".join(f"{n:,}" for n in layout.sizes) + " |", "|---|" + "---:|" * len(layout.sizes)]
        for recipe, values in fits["multipliers"].items():
            lines.append(f"| {recipe} | " + " | ".join(format_multiplier(v) for v in values) + " |")
    lines += ["", "## Cells", "", "Each cell's budget and how well it fit its own labels (a low training accuracy "
              "means under-trained, not data-hungry).", "",
              "| recipe | labels | seed | test accuracy | train accuracy | epochs | steps | run |",
              "|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows[:CELL_ROWS_SHOWN]:
        link = f"[{r['run']}]({r['run']}/)" if r.get("run") else "–"
        lines.append(f"| {r['recipe']} | {r['labels']:,} | {r.get('seed', 0)} | {1 - r['test_error']:.1%} | "
                     f"{percent(r.get('train_acc'))} | {r.get('epochs') or '–'} | {r.get('steps') or '–'} | {link} |")
    if len(rows) > CELL_ROWS_SHOWN:
        lines += ["", f"… and {len(rows) - CELL_ROWS_SHOWN:,} more: every result is in results.csv."]
    return "\n".join(lines) + "\n"


# a report of 10^5 rows took a minute to render and no one reads it; the CSV keeps every row
CELL_ROWS_SHOWN = 500


def percent(value: float | None) -> str:
    return "–" if value is None or value == "" else f"{float(value):.1%}"


def past_the_data(layout: Layout, labels: int) -> str:
    return " (more than the data set's images)" if layout.train_images and labels > layout.train_images else ""


def worth(layout: Layout, fits: dict[str, Any]) -> list[str]:
    """What each remedy is worth in labels of the plain ViT, at the largest size read inside measured ranges."""
    lines = []
    for recipe, values in fits["multipliers"].items():
        inside = [v for v in values if not v["extrapolated"] and v["multiplier"] is not None]
        if not inside:
            continue
        value = inside[-1]
        lines.append(f"- **{recipe}** at {value['labels']:,} labels is worth {format_multiplier(value)} as many labels "
                     f"for the plain {layout.references['vit']}.")
    return lines


def accuracy_bracket(errors: list[float] | None) -> str:
    """An error interval as the accuracy interval it is."""
    return bracket(None if errors is None else [1 - errors[1], 1 - errors[0]], ".1%")


def finished(results: int, planned: int | None) -> str:
    return f"{results} results" if planned is None else f"{results} of {planned} cells finished"


def fit_notes(fits: dict[str, Any]) -> list[str]:
    """One line per fit that sits on a bound of its parameters or could not estimate intervals."""
    lines = []
    for recipe, entry in fits["recipes"].items():
        fitted = entry["fit"]
        if not fitted:
            continue
        said = ([f"at a bound: {', '.join(fitted['at_bound'])}"] if fitted["at_bound"] else []) + \
               ([fitted["interval_note"]] if fitted["interval_note"] else [])
        if said:
            lines.append(f"- **{recipe}**: {'; '.join(said)}.")
    return lines


def format_multiplier(value: dict[str, Any]) -> str:
    main = f"{format_times(value['multiplier'])}{'*' if value['extrapolated'] else ''}"
    if value["interval"] is None:
        return f"{main} [not estimable]"
    low, high = (format_times(v) for v in value["interval"])
    return f"{main} [{low}, {high}]"


def bracket(values: list[float] | None, style: str) -> str:
    """A 90 % interval as [low, high], or what stands in for one that could not be estimated."""
    if values is None:
        return "[not estimable]"
    return f"[{values[0]:{style}}, {values[1]:{style}}]"


def format_times(value: float | None) -> str:
    """Multipliers past 1000x say only that: the fit is far outside anything measured."""
    if value is None:
        return "∞"
    return ">1000×" if value > 1000 else f"{value:.2f}×"


def near_chance(measured: dict[str, Any], chance: float) -> bool:
    """Accuracy within noise of guessing: less than two seed spreads (at least 2 points) above chance."""
    return (1 - measured["error_mean"]) - chance < max(2 * measured["error_std"], 0.02)


def conclusion(layout: Layout, fits: dict[str, Any]) -> list[str]:
    lines = []
    chance = 1 / layout.num_classes if layout.num_classes else None
    if chance is not None:
        idle = [recipe for recipe, entry in fits["recipes"].items()
                if entry["measured"] and all(near_chance(m, chance) for m in entry["measured"])]
        if idle:
            lines.append(f"- **Warning**: {', '.join(idle)} stay{'s' if len(idle) == 1 else ''} within noise of chance "
                         f"({chance:.1%} for {layout.num_classes} classes) at every size: under-trained or broken, "
                         "not evidence about data hunger; give the cells more steps before reading this study.")
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
        noise = math.hypot(first["error_std"], second["error_std"])
        sure = "clearly" if gap > 2 * noise and min(first["seeds"], second["seeds"]) > 1 else "narrowly, within the seed spread,"
        lines.append(f"- With {n:,} labels, use **{best}**: it {sure} beats {runner} "
                     f"({1 - first['error_mean']:.1%} vs {1 - second['error_mean']:.1%}).")
    for recipe, c in fits["crossovers"].items():
        lines.append(f"- Where {recipe} overtakes the CNN: {c['text']}.")
    seeds = len(layout.seeds)
    how = ("whole seed-curves resampled, their spread widened for the few seeds measured" if seeds > 1 else
           "curves simulated from the fit's residual variance (one seed)")
    lines.append(f"- How sure: {seeds} seed{'s' if seeds > 1 else ''} per size; intervals are 90 % intervals from "
                 f"{how}. Figures marked * read a fitted curve outside its measured sizes.")
    return lines


def render_html(layout: Layout, rows: list[dict[str, Any]], fits: dict[str, Any], png: bytes) -> str:
    """A self-contained page: the same Markdown rendered by Python-Markdown, with the plot embedded."""
    import markdown

    image = "data:image/png;base64," + base64.b64encode(png).decode()
    body = markdown.markdown(render_markdown(layout, rows, fits, image=image), extensions=["tables"])
    style = ("body{font-family:sans-serif;max-width:60rem;margin:2rem auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}img{max-width:100%}")
    return ("<!doctype html><html><head><meta charset=\"utf-8\"><title>lowdata study</title>"
            f"<style>{style}</style></head><body>\n{body}\n</body></html>\n")
