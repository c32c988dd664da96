"""`lowdata data check PATH`: every problem in an image folder, listed at once, without training.

Loading stops at the first problem (that is right for a run); a user cleaning a folder wants them all.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from lowdata.errors import UsageError


def check_folder(root: Path) -> list[str]:
    """One line per problem: unreadable or undecodable files, empty or missing class folders, too few
    classes or images, mixed image sizes. Empty when the folder loads as it is."""
    return inspect_folder(root)[0]


def inspect_folder(root: Path) -> tuple[list[str], list[str]]:
    """(the problems, as check_folder; what a run would see: classes and their images, image sizes, and the
    train/test split)."""
    from lowdata.data.imagefolder import (EXTENSIONS, HOLDOUT_FRACTION, common_side, decode_one,
                                         looks_like_split_folder, skipped_note)

    if not root.is_dir():
        raise UsageError(f"{root} is not a folder; give an image folder (PATH/<class>/* or PATH/train, PATH/test)")
    splits = [root / "train", root / "test"] if looks_like_split_folder(root) else [root]
    problems: list[str] = []
    skipped: list[Path] = []
    classes = sorted(p.name for p in splits[0].iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        problems.append(f"{splits[0]}: {len(classes)} class folder{'s' if len(classes) != 1 else ''}; a classifier "
                        "needs at least 2")
    sizes: Counter = Counter()
    counts: dict[Path, Counter] = {split: Counter() for split in splits}
    for split in splits:
        present = sorted(p.name for p in split.iterdir() if p.is_dir() and not p.name.startswith("."))
        for extra in sorted(set(present) - set(classes)):
            problems.append(f"{split / extra}: a class the training split lacks")
        for name in classes:
            folder = split / name
            if not folder.is_dir():
                if split == splits[0]:
                    problems.append(f"{folder}: missing")
                continue
            images = 0
            for path in sorted(folder.rglob("*")):
                if path.suffix.lower() not in EXTENSIONS:
                    continue
                try:
                    if not path.is_file():
                        skipped.append(path)  # as a run does: skipped, and said once below
                        continue
                    image = decode_one(path, None)
                except OSError as err:
                    problems.append(f"{path}: {err.strerror or err}")
                    continue
                except UsageError as err:
                    problems.append(f"{path}: {' '.join(str(err).replace(str(path), '').split()).strip(' ;')}")
                    continue
                images += 1
                counts[split][name] += 1
                sizes[tuple(image.shape[1:])] += 1
            if images == 0:
                problems.append(f"{folder}: no images ({', '.join(sorted(EXTENSIONS))})")
            elif len(splits) == 1 and round(images * HOLDOUT_FRACTION) == 0:
                problems.append(f"{folder}: {images} image{'s' if images > 1 else ''}, too few for a "
                                f"{HOLDOUT_FRACTION:.0%} test hold-out")
    notes = [skipped_note(skipped).removeprefix("data: ")] if skipped else []
    if len(sizes) > 1:  # not a problem: a run resizes them (imagefolder.common_side)
        side = common_side(list(sizes.elements()))
        notes.append(f"mixed sizes: a run resizes every image to {side}x{side} (the median shorter side); "
                     "image_size=N chooses another")
    return problems, describe(splits, classes, counts, sizes, HOLDOUT_FRACTION) + notes


def describe(splits: list[Path], classes: list[str], counts: dict[Path, Counter], sizes: Counter,
             holdout: float) -> list[str]:
    lines = [f"classes: {len(classes)} ({', '.join(f'{name} {counts[splits[0]][name]:,}' for name in classes)})"]
    if sizes:
        lines.append("image sizes (W x H): " + ", ".join(f"{w}x{h} ({n:,})" for (h, w), n in sizes.most_common(3))
                     + (f" and {len(sizes) - 3} more" if len(sizes) > 3 else ""))
    if len(splits) == 2:
        lines.append(f"split: {splits[0].name}/ and {splits[1].name}/ as given: {sum(counts[splits[0]].values()):,} "
                     f"training and {sum(counts[splits[1]].values()):,} test images")
    else:
        total = sum(counts[splits[0]].values())
        test = sum(round(n * holdout) for n in counts[splits[0]].values())
        lines.append(f"split: a seeded, stratified {holdout:.0%} of each class held out for testing: about "
                     f"{total - test:,} training and {test:,} test images")
    return lines
