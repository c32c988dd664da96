"""Label budgets: class-balanced, seeded, nested labelled subsets; the rest is the unlabelled pool.

Every class is put in one seeded random order once; a budget takes a prefix of each class's order. So for one
seed, the 1,000-label subset is inside the 5,000-label one, and a learning curve compares nested data.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from lowdata.errors import UsageError, shown


@dataclass(frozen=True)
class Budget:
    labelled: torch.Tensor  # indices into the training split, used for training
    val: torch.Tensor  # indices carved from the labelled budget for validation (may be empty)
    pool: torch.Tensor  # every other training index: the unlabelled pool


def per_class_counts(total: int, num_classes: int, seed: int) -> list[int]:
    """Split `total` as evenly as possible; the remainder goes to classes in a seeded order, so counts nest."""
    counts = [total // num_classes] * num_classes
    order = torch.randperm(num_classes, generator=torch.Generator().manual_seed(seed)).tolist()
    for cls in order[: total % num_classes]:
        counts[cls] += 1
    return counts


def select_budget(labels: torch.Tensor, num_classes: int, seed: int, total: int | None = None,
                  per_class: int | None = None, val_fraction: float = 0.0,
                  class_names: tuple[str, ...] | list[str] | None = None) -> Budget:
    """Pick the labelled subset (and optional validation part) of a training split with these labels;
    `class_names` name the classes in messages."""
    n = len(labels)
    if total is not None and per_class is not None:
        raise UsageError("give either labels or labels_per_class, not both")
    if not 0.0 <= val_fraction < 1.0:
        raise UsageError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if per_class is not None:
        total = per_class * num_classes
    if total is None:
        total = n
    if total > n and per_class is not None:
        fewest = min(torch.bincount(labels, minlength=num_classes).tolist())
        raise UsageError(f"labels_per_class {per_class} needs {total} images ({num_classes} classes), more than the "
                         f"training split ({n} images); use at most {fewest} labels per class")
    if total > n:
        raise UsageError(f"label budget {total} is larger than the training split ({n} images); use at most {n}")
    if total < num_classes:
        raise UsageError(f"label budget {total} is smaller than the number of classes ({num_classes}); "
                         f"use at least {num_classes} so every class gets an example")
    class_counts = torch.bincount(labels, minlength=num_classes).tolist()
    wanted = per_class_counts(total, num_classes, seed) if per_class is None else [per_class] * num_classes
    if total == n:
        wanted = class_counts  # the whole split, whatever its balance
    short = [(c, have, want) for c, (have, want) in enumerate(zip(class_counts, wanted)) if want > have]
    if short:
        cls, have, want = short[0]
        name = f"class {class_names[cls]!r}" if class_names else f"class {cls}"
        most = min(class_counts) * num_classes if per_class is None else min(class_counts)
        unit = "labels" if per_class is None else "labels per class"
        raise UsageError(f"{name} has only {have} training images but the budget needs {want}; "
                         f"lower the budget to at most {most} {unit}")
    generator = torch.Generator().manual_seed(seed)
    labelled, val = [], []
    for cls in range(num_classes):
        members = torch.nonzero(labels == cls).flatten()
        members = members[torch.randperm(len(members), generator=generator)][: wanted[cls]]
        n_val = int(round(len(members) * val_fraction))
        # validation takes the *end* of each class's prefix, so the training part still nests with size
        labelled.append(members[: len(members) - n_val])
        val.append(members[len(members) - n_val:])
    labelled_idx = torch.cat(labelled).sort().values
    val_idx = torch.cat(val).sort().values
    if len(labelled_idx) == 0:
        raise UsageError(f"val_fraction={val_fraction} takes every one of the {total} labelled images for "
                         "validation, leaving none to train on; lower val_fraction or raise the budget")
    used = torch.zeros(n, dtype=torch.bool)
    used[labelled_idx] = True
    used[val_idx] = True
    return Budget(labelled=labelled_idx, val=val_idx, pool=torch.nonzero(~used).flatten())


def pool_subset(pool: torch.Tensor, wanted: str | None, seed: int) -> torch.Tensor:
    """The pool images a run reads: none (`wanted` None), all of them ("all"), or N drawn class-blind with a
    seeded permutation (nested: for one seed, 1,000 pool images are inside 5,000)."""
    if wanted is None:
        return pool[:0]
    if str(wanted).strip().lower() == "all":
        return pool
    try:
        count = int(str(wanted))
    except ValueError:
        raise UsageError(f"pool must be all or a number of pool images, got {shown(wanted)}") from None
    if not 1 <= count <= len(pool):
        raise UsageError(f"pool={count} is outside the {len(pool)} images left unlabelled; use 1 to {len(pool)} "
                         "or all")
    order = torch.randperm(len(pool), generator=torch.Generator().manual_seed(seed))
    return pool[order[:count]].sort().values
