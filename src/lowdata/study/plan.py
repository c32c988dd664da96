"""The study's grid: recipes x label budgets x seeds, each cell an ordinary training run.

The plan is saved as `DIR/plan.json`; a later command on the same directory must ask for the same plan (or
join it with --worker), so results from different settings never mix.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from lowdata.config import TrainConfig
from lowdata.objectives import build_config as build
from lowdata.errors import UsageError, shown
from lowdata.study.recipes import Recipe
from lowdata.training.optim import budget_batch

MIN_SIZES = 3  # a curve a + b * n^-c has three parameters


@dataclass(frozen=True)
class Cell:
    id: str
    recipe: str
    size: int
    seed: int
    settings: dict[str, Any]  # the cell's TrainConfig fields
    needs: dict[str, str] = field(default_factory=dict)  # setting -> run it takes, relative to DIR (teacher, init)
    folder: ClassVar[str] = "cells"


@dataclass(frozen=True)
class Stage:
    """A run that cells share and that is not itself a point on a curve: a pretraining once per study, or a
    teacher at one budget when the teacher's recipe is not among the study's recipes."""
    id: str
    kind: str  # "pretrain" or "train"
    settings: dict[str, Any]  # PretrainConfig or TrainConfig fields
    needs: dict[str, str] = field(default_factory=dict)
    folder: ClassVar[str] = "stages"


@dataclass(frozen=True)
class Plan:
    data: str
    sizes: list[int]
    seeds: list[int]
    recipes: dict[str, dict[str, Any]]  # name -> {family, description, settings}
    budget: dict[str, int | None]  # {"epochs": E} or {"steps": S}
    base: dict[str, Any]  # settings for every cell (from --config and key=value)
    cells: list[Cell]
    stages: list[Stage] = field(default_factory=list)
    # family -> the recipe the others are compared with: crossovers against the cnn one, multipliers the vit one
    references: dict[str, str] = field(default_factory=lambda: {"cnn": "cnn", "vit": "vit"})
    # an equal-compute study's cells whose epochs a floor or ceiling held: "cell: why"
    budget_notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> "Plan":
        return cls(**{**raw, "cells": [Cell(**cell) for cell in raw["cells"]],
                      "stages": [Stage(**stage) for stage in raw.get("stages", [])]})

    def family(self, recipe: str) -> str:
        return self.recipes[recipe]["family"]


def make_plan(data: str, sizes: list[int], recipes: list[Recipe], seeds: list[int], train_size: int,
              budget_epochs: int | None = None, budget_steps: int | None = None,
              base: dict[str, Any] | None = None, available: dict[str, Recipe] | None = None,
              references: list[str] | None = None, budget_flops: float | None = None,
              data_shape: tuple[int, int, int, int] | None = None) -> Plan:
    """`available` holds every known recipe, for teachers that are not among `recipes`. `references` names
    recipes of the study that are the references of their families (see pick_references). `budget_flops`
    gives every cell that training compute (study/compute.py), for data of `data_shape` (channels, height,
    width, classes)."""
    from lowdata.study.compute import check_budget_flops, cost_per_image, epochs_for_flops

    base = dict(base or {})
    sizes = sorted(set(sizes))
    if len(sizes) < MIN_SIZES:
        raise UsageError(f"a learning-curve fit needs at least {MIN_SIZES} different sizes, got {len(sizes)}; "
                         "add sizes to --sizes")
    if sizes[-1] > train_size:
        raise UsageError(f"size {sizes[-1]} is larger than the training split ({train_size} images); "
                         f"use sizes up to {train_size}")
    if not seeds or len(set(seeds)) != len(seeds):
        raise UsageError("--seeds needs distinct seeds, e.g. 0,1,2")
    if sum(budget is not None for budget in (budget_epochs, budget_steps, budget_flops)) > 1:
        raise UsageError("give one of --budget-epochs, --budget-steps and --budget-flops")
    check_budget_flops(budget_flops)
    if (budget_epochs is not None and budget_epochs < 1) or (budget_steps is not None and budget_steps < 1):
        raise UsageError("the training budget must be at least 1")
    available = {**(available or {}), **{r.name: r for r in recipes}}
    picked = {r.name for r in recipes}
    per_image: dict[str, float] = {}  # an equal-compute study's training FLOPs per labelled image, by recipe
    budget_notes: list[str] = []

    def cell_settings(recipe: Recipe, size: int, seed: int) -> dict[str, Any]:
        settings = {**base, **recipe.settings, "data": data, "labels": size, "seed": seed}
        config = build(TrainConfig, settings)
        epochs = budget_epochs or (epochs_for_steps(budget_steps, size, config) if budget_steps else config.epochs)
        if budget_flops is not None:
            if recipe.name not in per_image:
                per_image[recipe.name] = cost_per_image(recipe, available, base, data_shape[:3], data_shape[3])
            epochs, note = epochs_for_flops(budget_flops, size, per_image[recipe.name], config)
            if note and seed == seeds[0]:
                budget_notes.append(f"{recipe.name} at {size:,} labels: {note}")
        # evaluate once, at the end: per-epoch test passes would cost more than training at small sizes
        settings.update(epochs=epochs, eval_every=epochs)
        return settings

    cells, stages = [], {}

    def linked_run(linked: Recipe, size: int, seed: int) -> str:
        """The run of `linked` at this budget and seed that a cell takes (as teacher, guide or start): the
        study's own cell when `linked` is one of its curves, else a shared stage (with the runs it takes)."""
        if linked.pretrain is not None or linked.source is not None:
            raise UsageError(f"recipe {shown(linked.name)} starts from a stage of its own, so it cannot be another "
                             "recipe's teacher, guide or start; link a recipe trained on the budget itself")
        run_id = f"{linked.name}-n{size}-s{seed}"
        if linked.name in picked:
            return f"{Cell.folder}/{run_id}"
        if run_id not in stages:
            needs = {setting: linked_run(available[name], size, seed) for setting, name in linked.links().items()}
            stages[run_id] = Stage(run_id, "train", cell_settings(linked, size, seed), needs)
        return f"{Stage.folder}/{run_id}"

    for recipe in recipes:
        needs_for_recipe = {}
        model_settings = {k: recipe.settings[k] for k in ("model", "model_args") if k in recipe.settings}
        if recipe.pretrain is not None:  # once per study, on every training image, with the recipe's encoder
            stage_id = f"{recipe.name}-pretrain"
            stages[stage_id] = Stage(stage_id, "pretrain", {**model_settings, **recipe.pretrain, "data": data,
                                                            "seed": seeds[0]})
            needs_for_recipe["init"] = f"{Stage.folder}/{stage_id}"
        if recipe.source is not None:  # once per study: a supervised run on the source classes, then transfer
            stage_id = f"{recipe.name}-source"
            stages[stage_id] = Stage(stage_id, "train", {**base, **model_settings, **recipe.source, "data": data,
                                                         "seed": seeds[0]})
            needs_for_recipe["init"] = f"{Stage.folder}/{stage_id}"
        for size in sizes:
            for seed in seeds:
                needs = {**needs_for_recipe, **{setting: linked_run(available[name], size, seed)
                                                for setting, name in recipe.links().items()}}
                cells.append(Cell(f"{recipe.name}-n{size}-s{seed}", recipe.name, size, seed,
                                  cell_settings(recipe, size, seed), needs))
    recipe_table = {r.name: {"family": r.family, "description": r.description, "settings": r.settings,
                             "teacher": r.teacher, "pretrain": r.pretrain, **({"guide": r.guide} if r.guide else {}),
                             **({"start": r.start} if r.start else {}),
                             **({"baseline": r.baseline} if r.baseline else {})} for r in recipes}
    # a cell that takes another cell's run comes after it (a backend that starts units in order needs it)
    by_id = {cell.id: cell for cell in cells}
    cells.sort(key=lambda cell: link_depth(cell, by_id))
    budget = {"epochs": budget_epochs, "steps": budget_steps, **({"flops": budget_flops} if budget_flops else {})}
    return Plan(data, sizes, list(seeds), recipe_table, budget, base, cells,
                list(stages.values()), pick_references(recipes, references or []), budget_notes)


def link_depth(cell: Cell, by_id: dict[str, Cell]) -> int:
    """How many cells of the study lie before this one on its chain of links (0: it takes no other cell)."""
    taken = [by_id[need.split("/", 1)[1]] for need in cell.needs.values() if need.startswith(f"{Cell.folder}/")]
    return max((1 + link_depth(other, by_id) for other in taken), default=0)


def pick_references(recipes: list[Recipe], named: list[str]) -> dict[str, str]:
    """For each family, its reference: a recipe named in `named` (--reference), else one whose recipe says
    `reference: true`, else the recipe called like the family (cnn, vit)."""
    by_name = {r.name: r for r in recipes}
    for name in named:
        if name not in by_name:
            raise UsageError(f"--reference {name} is not a recipe of this study; choose from {', '.join(by_name)}")
    references = {}
    for family in ("cnn", "vit"):
        chosen = ([n for n in named if by_name[n].family == family]
                  or [r.name for r in recipes if r.family == family and r.reference] or [family])
        if len(chosen) > 1:
            raise UsageError(f"the {family} family has several references ({', '.join(chosen)}); mark one")
        references[family] = chosen[0]
    return references


def epochs_for_steps(steps: int, size: int, config: TrainConfig) -> int:
    """Epochs that give about `steps` optimiser updates on `size` labelled images (less the validation part)."""
    train_images = size - int(round(size * config.val_fraction))
    batch = budget_batch(config.batch_size, train_images) if config.adapts_batch() else min(config.batch_size,
                                                                                             train_images)
    return max(1, round(steps / math.ceil(train_images / batch)))


def save_or_check_plan(plan: Plan, out_dir: Path) -> None:
    from lowdata.io import atomic_write_json, refuse_foreign_files

    from lowdata.ledger import refuse_unproven_file

    path = out_dir / "plan.json"
    if path.is_file():
        refuse_unproven_file(path, "--out")
        # a plan written before a field existed reads with that field's default
        existing = json.loads(json.dumps(Plan.from_json(json.loads(path.read_text())).to_json()))
        wanted = json.loads(json.dumps(plan.to_json()))  # tuples become lists, as on disk
        for side in (existing, wanted):  # the same cells in another order are the same plan
            side["cells"].sort(key=lambda cell: cell["id"])
        if existing != wanted:
            changed = sorted(k for k in existing if existing.get(k) != wanted.get(k))
            raise UsageError(f"{out_dir} holds a study with a different plan (differs in: {', '.join(changed)}); "
                             "repeat its settings, join it with --worker, or choose another --out")
        return
    refuse_foreign_files(out_dir, "--out")
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, plan.to_json())


# what a study's report writes in its folder (also `lowdata fit --out`)
REPORT_FILES = ("results.csv", "fits.json", "curves.png", "cost.png", "report.md", "report.html")


def load_plan(out_dir: Path) -> Plan:
    path = out_dir / "plan.json"
    if not path.is_file():
        raise UsageError(f"{out_dir} holds no study (no plan.json); start one with `lowdata study --data ... --out {out_dir}`")
    return Plan.from_json(json.loads(path.read_text()))
