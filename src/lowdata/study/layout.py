"""What a report needs besides the result rows: the recipes and their families and references, the sizes and
seeds, from a study's plan or from a CSV of results."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lowdata.study.plan import Plan


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
    # the finished shared runs (a pretraining, a teacher at a budget no curve has): their cost is no cell's
    stages: tuple[dict[str, Any], ...] = ()
    baselines: dict[str, str] | None = None  # recipe -> the recipe its worth in labels is read against (selection)

    @classmethod
    def from_plan(cls, plan: Plan) -> "Layout":
        return cls(plan.data.split(":")[0], {r: plan.family(r) for r in plan.recipes}, dict(plan.references),
                   list(plan.sizes), list(plan.seeds), len(plan.cells),
                   baselines={r: e["baseline"] for r, e in plan.recipes.items() if e.get("baseline")})

    def family(self, recipe: str) -> str:
        return self.families[recipe]
