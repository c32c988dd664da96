"""Study results from the cells' summaries alone: results.csv, fits.json, curves.png, report.md, report.html.

Everything is written deterministically (sorted rows, fixed bootstrap seed, no timestamps in the PNG), so
rebuilding from unchanged cells gives byte-identical files. The analysis is in study/analysis.py (and the
Answer in study/answer.py), the figure in study/plot.py, the Markdown and HTML in study/render.py.
"""
from __future__ import annotations

import csv
import dataclasses
import io
from pathlib import Path
from typing import Any

from lowdata.errors import UsageError
from lowdata.io import atomic_path, atomic_write_text
from lowdata.rundir import read_summary
from lowdata.study import fit
from lowdata.study.analysis import describe_multiplier, fit_all, grouped, measurements
from lowdata.study.answer import conclusion
from lowdata.study.layout import Layout
from lowdata.study.plan import REPORT_FILES, Plan, load_plan
from lowdata.study.plot import plot_cost, plot_curves
from lowdata.study.render import CELL_ROWS_SHOWN, has_costs, render_html, render_markdown
from lowdata.study.run import cell_dir, is_done

__all__ = ["CELL_ROWS_SHOWN", "CSV_COLUMNS", "REPORT_FILES", "Layout", "build_report", "conclusion",
           "describe_multiplier", "fit_all", "grouped", "measurements", "refuse_foreign_report", "write_report"]

FIT_FILES = tuple(name for name in REPORT_FILES if name != "results.csv")  # what `lowdata fit` writes
CSV_COLUMNS = ["cell", "recipe", "family", "labels", "seed", "test_acc", "test_error", "epochs", "params",
               "train_seconds", "images_per_second", "pool_images", "num_classes", "steps", "train_acc",
               "train_images", "train_flops", "model_flops", "cpu_capability", "test_images", "run"]


def build_report(out_dir: Path, prior: float = fit.PRIOR_STRENGTH) -> dict[str, Any]:
    """Rebuild every report file of the study in `out_dir`; returns the fits."""
    plan = load_plan(out_dir)
    rows = collect_rows(plan, out_dir)
    if not rows:
        raise UsageError(f"no finished cells in {out_dir} yet; run `lowdata study` first")
    classes = {r["num_classes"] for r in rows if r.get("num_classes")}
    layout = dataclasses.replace(Layout.from_plan(plan), num_classes=classes.pop() if len(classes) == 1 else None,
                                 train_images=max((r["train_images"] or 0 for r in rows), default=0) or None,
                                 stages=tuple(collect_stages(plan, out_dir)))
    return write_report(layout, rows, out_dir, prior, with_csv=True)


def write_report(layout: Layout, rows: list[dict[str, Any]], out_dir: Path,
                 prior: float = fit.PRIOR_STRENGTH, with_csv: bool = False) -> dict[str, Any]:
    """fits.json, curves.png, report.md and report.html (and results.csv) in `out_dir`, from result rows
    (recipe, labels, seed, test_error); returns the fits. Everything is computed before the first file is
    written, so a failure leaves the previous report whole rather than half replaced."""
    fits = fit_all(layout, rows, prior)
    png = plot_curves(layout, rows, fits)
    cost_png = plot_cost(layout, rows) if has_costs(rows) else None
    files = {"fits.json": json_text(fits), "report.md": render_markdown(layout, rows, fits, image="curves.png"),
             "report.html": render_html(layout, rows, fits, png, cost_png)}
    if with_csv:
        files["results.csv"] = csv_text(rows)
    images = {"curves.png": png, "cost.png": cost_png}
    refuse_foreign_report(out_dir, (*files, *(name for name, image in images.items() if image is not None)))
    # (checked before the first file: all are replaced, or none)
    for name, text in files.items():
        atomic_write_text(out_dir / name, text)
    for name, image in images.items():
        if image is not None:
            with atomic_path(out_dir / name) as tmp:
                tmp.write_bytes(image)
    return fits




def refuse_foreign_report(out_dir: Path, names: tuple[str, ...] = FIT_FILES) -> None:
    """`lowdata fit --out DIR` may share a folder with the user's files (its CSV), and replaces an earlier
    report there, but never a file of the same name whose content lowdata's ledger does not prove."""
    from lowdata.ledger import Ledger

    if out_dir.is_dir():
        Ledger(out_dir).refuse_unproven(names, "--out")


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
                     # the training cost (runs/cost.py); absent from runs made before it was recorded
                     "train_flops": summary.get("train_flops"), "model_flops": summary.get("model_flops"),
                     "cpu_capability": summary.get("cpu_capability"),
                     "test_images": summary.get("test_images"),
                     "run": folder.relative_to(out_dir).as_posix()})
    return sorted(rows, key=lambda r: (list(plan.recipes).index(r["recipe"]), r["labels"], r["seed"]))


def collect_stages(plan: Plan, out_dir: Path) -> list[dict[str, Any]]:
    """What each finished shared run cost and gave (k-NN accuracy for a pretraining, test accuracy for a
    teacher), reported apart from the cells: it runs once and serves every cell that needs it."""
    stages = []
    for stage in plan.stages:
        if is_done(out_dir, stage):
            summary = read_summary(cell_dir(out_dir, stage))
            stages.append({"id": stage.id, "kind": stage.kind, "method": summary.get("method"),
                           "model": summary.get("model"), "epochs": summary.get("epochs"),
                           "images": summary.get("images", summary.get("labels")),
                           "train_seconds": summary.get("train_seconds"), "train_flops": summary.get("train_flops"),
                           "images_per_second": summary.get("images_per_second"),
                           "knn_acc": summary.get("knn_acc"), "test_acc": summary.get("test_acc"), "device": summary.get("device"),
                           "run": f"{stage.folder}/{stage.id}"})
    return stages


def csv_text(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
