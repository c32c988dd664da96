"""Results from anywhere, for `lowdata fit`: a CSV with one row per run (recipe, labels, seed, error or accuracy).

A study's own results.csv qualifies (its test_error / test_acc and family columns are read too), so a finished
study can be re-fitted without its cells.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from lowdata.errors import UsageError, shown
from lowdata.study.report import Layout

ERROR_COLUMNS = ("error", "test_error")  # fractions
ACCURACY_COLUMNS = ("accuracy", "test_acc")


def read_results(path: str | Path) -> list[dict[str, Any]]:
    """Rows of recipe, family (when given), labels, seed and test_error, checked line by line."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path} is not a file; give a CSV with columns recipe,labels,seed,error")
    try:
        return read_rows(path)
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not a text CSV (it is not UTF-8); export it as CSV (UTF-8) with columns "
                         "recipe,labels,seed,error") from None
    except csv.Error as err:
        raise UsageError(f"{path} is not a readable CSV ({err}); give a CSV with columns recipe,labels,seed,error"
                         ) from None


def read_rows(path: Path) -> list[dict[str, Any]]:
    # utf-8-sig: Excel's "CSV UTF-8" starts with a byte-order mark, which would otherwise join the first column's name
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        named = [(name or "").strip() for name in reader.fieldnames or []]
        twice = next((name for i, name in enumerate(named) if name and name in named[:i]), None)
        if twice is not None:  # DictReader would keep the last silently
            first, second = [i + 1 for i, name in enumerate(named) if name == twice][:2]
            raise UsageError(f"{path} has the column {shown(twice)} twice (columns {first} and {second}); keep one")
        columns = set(reader.fieldnames or [])
        missing = sorted({"recipe", "labels", "seed"} - columns)
        error_column = next((c for c in ERROR_COLUMNS if c in columns), None)
        accuracy_column = next((c for c in ACCURACY_COLUMNS if c in columns), None)
        if missing or not (error_column or accuracy_column):
            needed = missing + ([] if error_column or accuracy_column else ["error (or accuracy)"])
            raise UsageError(f"{path} lacks the column{'s' if len(needed) > 1 else ''} {', '.join(needed)}; "
                             "the CSV needs recipe,labels,seed,error (error as a fraction; accuracy accepted "
                             "instead of error)")
        rows, seen = [], {}
        for line, raw in enumerate(reader, start=2):
            where = f"{path}, line {line}"
            row = {"recipe": (raw["recipe"] or "").strip(), "labels": whole(raw["labels"], "labels", where),
                   "seed": whole(raw["seed"], "seed", where, minimum=None)}
            if not row["recipe"]:
                raise UsageError(f"{where}: the recipe is empty; name the recipe each result belongs to")
            if raw.get("family"):
                row["family"] = raw["family"].strip()
            row["test_error"] = (fraction(raw[error_column], error_column, where) if error_column else
                                 1.0 - fraction(raw[accuracy_column], accuracy_column, where))
            for column in OPTIONAL_NUMBERS:  # a study's own CSV carries its cells' cost and training accuracy
                if (raw.get(column) or "").strip():
                    row[column] = number(raw[column], column, where)
            key = (row["recipe"], row["labels"], row["seed"])
            if key in seen:
                raise UsageError(f"{where} repeats recipe {key[0]}, {key[1]} labels, seed {key[2]} (first on line "
                                 f"{seen[key]}); keep one result per recipe, size and seed")
            seen[key] = line
            rows.append(row)
    if not rows:
        raise UsageError(f"{path} has a header but no results")
    return rows


OPTIONAL_NUMBERS = ("train_flops", "train_seconds", "train_acc", "test_images")


def number(text: str, column: str, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise UsageError(f"{where}: {column} {shown(text.strip())} is not a number; give a number or leave it "
                         "empty") from None


def whole(text: str | None, column: str, where: str, minimum: int | None = 1) -> int:
    try:
        value = float(text or "")
    except ValueError:
        value = math.nan
    if not value.is_integer() or (minimum is not None and value < minimum):
        raise UsageError(f"{where}: {column} must be a whole number{' of at least 1' if minimum else ''}, "
                         f"got {text!r}")
    return int(value)


def fraction(text: str | None, column: str, where: str) -> float:
    try:
        value = float(text or "")
    except ValueError:
        raise UsageError(f"{where}: {column} must be a number between 0 and 1, got {shown(text)}") from None
    if not 0.0 <= value <= 1.0:
        hint = f"; {value} looks like a percentage: divide by 100" if 1.0 < value <= 100.0 else ""
        raise UsageError(f"{where}: {column} must be a fraction between 0 and 1, got {value}{hint}")
    return value


def layout_for(rows: list[dict[str, Any]], title: str, references: list[str] | None = None) -> Layout:
    """The report's layout for CSV rows: recipes in order of appearance; each recipe's family from the CSV's
    family column, else from the built-in recipe of that name, else "other" (no crossover with the CNN)."""
    from lowdata.study.recipes import load_recipes

    known = load_recipes()
    families: dict[str, str] = {}
    for row in rows:
        family = row.get("family") or (known[row["recipe"]].family if row["recipe"] in known else "other")
        if families.setdefault(row["recipe"], family) != family:
            raise UsageError(f"recipe {row['recipe']} is given two families ({families[row['recipe']]} and "
                             f"{family}); one recipe has one family")
    chosen = {"cnn": "cnn", "vit": "vit"}
    for name in references or []:
        if name not in families:
            raise UsageError(f"--reference {name} is not a recipe in the CSV; choose from {', '.join(families)}")
        if families[name] not in ("cnn", "vit"):
            raise UsageError(f"--reference {name}: its family is unknown; add a family column (cnn or vit)")
        chosen[families[name]] = name
    for row in rows:
        row["family"] = families[row["recipe"]]
    return Layout(title, families, chosen, sorted({r["labels"] for r in rows}), sorted({r["seed"] for r in rows}),
                  None)
