"""Recipes: named, documented bundles of training settings, read from YAML (built-in file + the user's)."""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from lowdata.config import TrainConfig, load_yaml
from lowdata.objectives import build_config as build
from lowdata.errors import UsageError, shown

BUILTIN = Path(__file__).with_name("recipes.yaml")
LINKS = {"teacher": "teacher", "guide": "guide", "init": "start"}  # the setting a link fills -> its recipe key
LINK_SETTINGS = {"guide": "guidance.guide"}  # a link that fills a section's key: the guide run is guidance's
STUDY_OWNED = ("data", "labels", "labels_per_class", "seed", "out", "epochs")  # set per cell by the study


@dataclass(frozen=True)
class Recipe:
    name: str
    family: str  # "cnn" or "vit"
    description: str
    settings: dict[str, Any]
    teacher: str | None = None  # recipe whose run at the same budget and seed is this one's distillation teacher
    pretrain: dict[str, Any] | None = None  # `lowdata pretrain` settings: one run per study, fine-tuned per cell
    source: dict[str, Any] | None = None  # `lowdata train` settings of a supervised source run (transfer), once
    reference: bool = False  # the reference of its family: crossovers against the cnn one, multipliers the vit one
    guide: str | None = None  # recipe whose run at the same budget and seed guides this one's features
    start: str | None = None  # recipe whose run at the same budget and seed this one starts from (its --init)
    baseline: str | None = None  # recipe on whose curve this one's worth in labels is read (the selection axis)

    def links(self) -> dict[str, str]:
        """The training setting each linked recipe's run fills (teacher, guide, init), by recipe name."""
        return {setting: getattr(self, key) for setting, key in LINKS.items() if getattr(self, key) is not None}


def load_recipes(extra_file: str | Path | None = None) -> dict[str, Recipe]:
    """Built-in recipes, then the user's file (whose recipes may replace built-in ones of the same name)."""
    recipes = parse_recipes(load_yaml(BUILTIN), BUILTIN)
    check_links(recipes, BUILTIN)
    if extra_file is not None:
        recipes.update(parse_recipes(load_yaml(extra_file), Path(extra_file)))
        check_links(recipes, Path(extra_file))
    return recipes


def parse_recipes(raw: dict[str, Any], source: Path) -> dict[str, Recipe]:
    recipes = {}
    for name, entry in raw.items():
        where = f"recipe {name!r} in {source}"
        if not isinstance(entry, dict) or not isinstance(entry.get("settings", {}), dict):
            raise UsageError(f"{where} must be a mapping with description, family and settings; see `lowdata recipes`")
        unknown = set(entry) - {"family", "description", "settings", *LINKS.values(), "pretrain", "source", "reference",
                                "baseline"}
        if unknown:
            raise UsageError(f"{where} has unknown keys {sorted(unknown)}; use description, family, settings, "
                             "teacher, guide, start, pretrain, source, reference and baseline")
        family = entry.get("family", "vit")
        if family not in ("cnn", "vit"):
            raise UsageError(f"{where}: family must be cnn or vit, got {shown(family)}")
        settings = dict(entry.get("settings") or {})
        owned = sorted(set(settings) & set(STUDY_OWNED))
        if owned:
            raise UsageError(f"{where} sets {owned}, which the study sets per cell; remove them from the recipe")
        build(TrainConfig, settings)  # unknown or mistyped settings fail here, naming the key
        stage_owned = sorted({"teacher", "guide"} & set(settings)) + \
            (["guidance.guide"] if "guide" in (settings.get("guidance") or {}) else [])
        if stage_owned:
            raise UsageError(f"{where} sets {stage_owned} in its settings; in a study use the recipe's `teacher:` or "
                             "`guide:` (a recipe name) instead")
        # init in the settings: weights every cell starts from (a file, a timm name, a hub id: someone else's
        # pretraining); a recipe's own runs are `start:`, `pretrain:` or `source:`
        if "init" in settings and any(entry.get(key) is not None for key in ("start", "pretrain", "source")):
            raise UsageError(f"{where} sets init and one of start, pretrain and source; a cell starts from one of "
                             "them")
        pretrain = entry.get("pretrain")
        if pretrain is not None:
            from lowdata.config import PretrainConfig

            if not isinstance(pretrain, dict):
                raise UsageError(f"{where}: pretrain must be a mapping of `lowdata pretrain` settings")
            build(PretrainConfig, pretrain)
        source = entry.get("source")
        if source is not None:
            if not isinstance(source, dict):
                raise UsageError(f"{where}: source must be a mapping of `lowdata train` settings")
            build(TrainConfig, source)
        if sum(part is not None for part in (pretrain, source, entry.get("start"))) > 1:
            raise UsageError(f"{where} has more than one of pretrain, source and start; a cell starts from one of them")
        if not isinstance(entry.get("reference", False), bool):
            raise UsageError(f"{where}: reference must be true or false")
        recipes[name] = Recipe(name, family, str(entry.get("description", "")).strip(), settings,
                               entry.get("teacher"), pretrain, source, entry.get("reference", False),
                               entry.get("guide"), entry.get("start"), entry.get("baseline"))
    return recipes


def with_selections(recipes: list[Recipe], strategies: list[str]) -> list[Recipe]:
    """The study's recipes, and for each strategy other than random each recipe again with its labelled images
    chosen by that strategy (`selection=`, `lowdata select`'s) instead of class-balanced at random: `R+S`, read
    against R's curve (its baseline)."""
    from lowdata.selection.strategies import STRATEGIES

    for strategy in strategies:
        if strategy not in STRATEGIES.names():
            raise UsageError(f"--selection: {STRATEGIES.unknown_message(strategy)}")
    derived = [replace(recipe, name=f"{recipe.name}+{strategy}", settings={**recipe.settings, "selection": strategy},
                       description=f"{recipe.description} Its labelled images chosen by {strategy}.",
                       reference=False, baseline=recipe.name)
               for strategy in strategies if strategy != "random" for recipe in recipes]
    return recipes + derived


def check_links(recipes: dict[str, Recipe], source: Path | str = "the recipes") -> None:
    """Every recipe a recipe links to (teacher, guide, start) exists, and no chain of links comes back to itself."""
    def visit(recipe: Recipe, chain: tuple[str, ...]) -> None:
        for setting, linked in recipe.links().items():
            key = LINKS[setting]
            if linked not in recipes:
                raise UsageError(f"recipe {shown(recipe.name)} in {source} names {key} {shown(linked)}, which is not a "
                                 f"recipe; choose from {', '.join(recipes)}")
            if linked in chain + (recipe.name,):
                raise UsageError(f"recipes {' -> '.join(chain + (recipe.name, linked))} need each other's runs in "
                                 "a circle; break the circle")
            visit(recipes[linked], chain + (recipe.name,))

    for recipe in recipes.values():
        visit(recipe, ())


def pick(recipes: dict[str, Recipe], names: list[str]) -> list[Recipe]:
    missing = [name for name in names if name not in recipes]
    if missing:
        raise UsageError(f"unknown recipe {shown(missing[0])}; choose from {', '.join(recipes)} (`lowdata recipes` "
                         "describes them), or add it to a file given with --recipes-file")
    if len(set(names)) != len(names):
        raise UsageError("a recipe is named twice in --recipes; name each once")
    return [recipes[name] for name in names]
