"""A data-hunger study from start to report: plan (or join) it, run its cells, and report once all are done.

    from lowdata import run_study
    fits = run_study("runs/study", data="cifar10:~/data/cifar10", sizes=[1000, 2500, 5000], seeds=[0, 1, 2])
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from lowdata.config import TrainConfig, build
from lowdata.data import load_dataset
from lowdata.data.datasets import keep_classes
from lowdata.errors import UsageError
from lowdata.study.check import check_units
from lowdata.study.plan import load_plan, make_plan, save_or_check_plan
from lowdata.study.presets import preset as preset_defaults
from lowdata.study.recipes import load_recipes, pick
from lowdata.study.report import build_report
from lowdata.study.run import check_jobs, is_done, run_cells, run_jobs


def run_study(out: str | Path, data: str | None = None, sizes: list[int] | None = None,
              sizes_per_class: list[int] | None = None, recipes: list[str] | None = None,
              seeds: list[int] | None = None, budget_epochs: int | None = None, budget_steps: int | None = None,
              settings: dict[str, Any] | None = None, recipes_file: str | None = None, preset: str | None = None,
              worker: bool = False, claim_timeout: float = 900.0,
              max_cells: int | None = None, references: list[str] | None = None, jobs: int = 1,
              backend: str = "local", address: str | None = None, cpus_per_cell: float = 1.0,
              gpus_per_cell: float = 0.0, retries: int = 2, report: bool = True) -> dict[str, Any] | None:
    """Run (or join, or resume) a data-hunger study in `out`; returns the fits once every cell is done.

    `settings` are TrainConfig fields applied to every cell, under each recipe's own settings. With
    `worker=True` and no plan arguments, the process joins the plan already in `out`. `references` names the
    recipes the others are compared with (default: those marked `reference: true`, else `cnn` and `vit`).
    `backend` "local" runs the cells here (`jobs` workers on this host); "ray" runs each as a Ray task
    (study/ray_backend.py) on the cluster at `address`, else on a local Ray instance. `report=False` leaves
    the report to another worker.
    """
    out_dir = Path(out)
    defaults = preset_defaults(preset)
    asked = [data, sizes, sizes_per_class, recipes, seeds, budget_epochs, budget_steps, settings, preset, references]
    if worker and all(value is None for value in asked):
        plan = load_plan(out_dir)
    else:
        data = data or defaults.get("data")
        if data is None:
            raise UsageError("a study needs --data (or a --preset); e.g. --data cifar10:~/data/cifar10")
        if sizes is not None and sizes_per_class is not None:
            raise UsageError("give --sizes or --sizes-per-class, not both")
        if budget_epochs is None and budget_steps is None:
            budget_epochs, budget_steps = defaults.get("budget_epochs"), defaults.get("budget_steps")
        base = {**defaults.get("settings", {}), **(settings or {})}
        build(TrainConfig, base)  # reject unknown settings before loading anything
        whole = load_dataset(data, base.get("image_size"), base.get("split_seed", 0))
        dataset = keep_classes(whole, base.get("classes"))
        if sizes_per_class is not None:
            sizes = [k * dataset.info.num_classes for k in sizes_per_class]
        known = load_recipes(recipes_file)
        plan = make_plan(data, sizes or defaults.get("sizes") or [], pick(known, recipes or defaults.get("recipes")
                         or ["cnn", "vit"]), seeds or defaults.get("seeds") or [0], len(dataset.train_images),
                         budget_epochs, budget_steps, base, available=known, references=references)
        check_units(plan, whole)
        save_or_check_plan(plan, out_dir)
    if backend == "local":
        check_jobs(jobs)
    if backend == "ray":
        from lowdata.study.ray_backend import run_units_ray

        run_units_ray(plan, out_dir, address, cpus_per_cell, gpus_per_cell, retries, max_units=max_cells)
    elif backend != "local":
        raise UsageError(f"unknown backend {backend!r}; choose local or ray")
    elif jobs > 1:
        run_jobs(plan, out_dir, jobs, claim_timeout)
    else:
        run_cells(plan, out_dir, claim_timeout=claim_timeout, max_cells=max_cells)
    if not report or not all(is_done(out_dir, cell) for cell in plan.cells):
        return None
    return build_report(out_dir)
