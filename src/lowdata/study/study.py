"""A data-hunger study from start to report: plan (or join) it, run its cells, and report once all are done.

    from lowdata import run_study
    fits = run_study("runs/study", data="cifar10:~/data/cifar10", sizes=[1000, 2500, 5000], seeds=[0, 1, 2])
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lowdata.config import TrainConfig
from lowdata.objectives import build_config as build
from lowdata.data import load_dataset
from lowdata.data.datasets import keep_classes
from lowdata.errors import UsageError
from lowdata.study.check import check_units
from lowdata.study.backends import Backend, make_backend
from lowdata.study.plan import Plan, load_plan, make_plan, save_or_check_plan
from lowdata.study.presets import preset as preset_defaults
from lowdata.study.recipes import load_recipes, pick, with_selections
from lowdata.study.report import build_report
from lowdata.study.run import is_done


@dataclass(frozen=True)
class StudyRequest:
    """What a study is asked to be; its plan is made from this, or, for a worker given none of it, read from the
    study's folder. `settings` are TrainConfig fields for every cell, under each recipe's own; `references`
    names the recipes the others are compared with (default: those marked `reference: true`, else cnn, vit)."""
    data: str | None = None
    sizes: list[int] | None = None
    sizes_per_class: list[int] | None = None
    recipes: list[str] | None = None
    seeds: list[int] | None = None
    budget_epochs: int | None = None
    budget_steps: int | None = None
    budget_flops: float | None = None
    settings: dict[str, Any] | None = None
    recipes_file: str | None = None
    preset: str | None = None
    references: list[str] | None = None
    selection: list[str] | None = None  # strategies choosing the labelled images: each recipe once per strategy

    def is_empty(self) -> bool:
        return all(getattr(self, name) is None for name in PLAN_FIELDS)

    def plan(self, out_dir: Path) -> Plan:
        """The plan (checked, and saved in `out_dir` or compared with the one there)."""
        defaults = preset_defaults(self.preset)
        data = self.data or defaults.get("data")
        if data is None:
            raise UsageError("a study needs --data (or a --preset); e.g. --data cifar10:~/data/cifar10")
        if self.sizes is not None and self.sizes_per_class is not None:
            raise UsageError("give --sizes or --sizes-per-class, not both")
        budget_epochs, budget_steps, budget_flops = self.budget_epochs, self.budget_steps, self.budget_flops
        if budget_epochs is None and budget_steps is None and budget_flops is None:
            budget_epochs, budget_steps = defaults.get("budget_epochs"), defaults.get("budget_steps")
        base = {**defaults.get("settings", {}), **(self.settings or {})}
        build(TrainConfig, base)  # reject unknown settings before loading anything
        whole = load_dataset(data, base.get("image_size"), base.get("split_seed", 0))
        dataset = keep_classes(whole, base.get("classes"))
        sizes = self.sizes
        if self.sizes_per_class is not None:
            sizes = [k * dataset.info.num_classes for k in self.sizes_per_class]
        known = load_recipes(self.recipes_file)
        chosen = pick(known, self.recipes or defaults.get("recipes") or ["cnn", "vit"])
        if self.selection:
            chosen = with_selections(chosen, self.selection)
        plan = make_plan(data, sizes or defaults.get("sizes") or [], chosen,
                         self.seeds or defaults.get("seeds") or [0], len(dataset.train_images),
                         budget_epochs, budget_steps, base, available=known,
                         references=self.references or defaults.get("references"), budget_flops=budget_flops,
                         data_shape=(dataset.info.channels, *dataset.info.image_size, dataset.info.num_classes))
        check_units(plan, whole)
        save_or_check_plan(plan, out_dir)
        return plan


# what makes a plan (recipes_file only adds recipes to choose from)
PLAN_FIELDS = ("data", "sizes", "sizes_per_class", "recipes", "seeds", "budget_epochs", "budget_steps", "budget_flops",
               "settings", "preset", "references", "selection")


def run_study(out: str | Path, **options: Any) -> dict[str, Any] | None:
    """Run (or join, or resume) a data-hunger study in `out`; returns the fits once every cell is done.

    `options` are a StudyRequest's fields, `worker` (join the plan in `out`), `report` (False leaves the report
    to another worker), `backend` ("local" or "ray") and that backend's own settings (study/backends.py: jobs,
    claim_timeout, max_cells; address, cpus_per_cell, gpus_per_cell, retries, max_cells)."""
    request = StudyRequest(**{name: options.pop(name) for name in list(options)
                              if name in StudyRequest.__dataclass_fields__})
    worker, report = options.pop("worker", False), options.pop("report", True)
    return conduct(Path(out), request, make_backend(options.pop("backend", "local"), **options), worker, report)


def conduct(out_dir: Path, request: StudyRequest, backend: Backend, worker: bool = False,
            report: bool = True) -> dict[str, Any] | None:
    """A study from its request and a backend: plan (or join), run the cells, and report once all are done."""
    plan = load_plan(out_dir) if worker and request.is_empty() else request.plan(out_dir)
    if not worker:
        for note in plan.budget_notes:  # an equal-compute cell whose epochs a floor or ceiling held
            print(f"study: budget: {note}", file=sys.stderr)
    backend.run(plan, out_dir)
    if not report or not all(is_done(out_dir, cell) for cell in plan.cells):
        return None
    return build_report(out_dir)
