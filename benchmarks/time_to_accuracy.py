"""Minutes to accuracy on this CPU: how long each recipe trains before its test accuracy first reaches each target.

    python benchmarks/time_to_accuracy.py                          # cnn and cct-2+priors at 1,000 CIFAR-10 labels
    python benchmarks/time_to_accuracy.py --recipes cnn,cct-2,vit-simple --targets 40,45,50 --epochs 60
    python benchmarks/time_to_accuracy.py --recipes cnn,cct-2+priors@model_args.patch_drop_rate=0.5   # a lever

One JSON line per recipe, the CNN measured in the same run: the training minutes (evaluations not counted) and
training FLOPs until the accuracy on a fixed, seeded 2,000-image subset of the test split, evaluated every
`--eval-every` epochs, first reached each target (null: never within the schedule), the final accuracy, the
threads and the CPU capability. A recipe trains its whole schedule (`--epochs`, the README's 60 at 1,000
labels): its cosine schedule is part of the recipe, so "time to 50 %" is read on the schedule a user would run.
Recipes that need another run (a teacher, a guide, a start, a pretraining) are refused: this times one run.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = f"cifar10:{ROOT.parent / 'shared' / 'datasets' / 'cifar10'}"
TEST_IMAGES = 2000


def fixed_test_subset(dataset, count: int = TEST_IMAGES, seed: int = 0):
    order = torch.randperm(len(dataset.test_labels), generator=torch.Generator().manual_seed(seed))[:count]
    return dataset.test_images[order], dataset.test_labels[order]


def recipe_settings(spec: str) -> dict:
    """`cct-2+priors@model_args.patch_drop_rate=0.5@lr=1e-3` -> the recipe's settings with those key=value
    settings on top (a dotted key fills a mapping, as on the command line): a lever timed on a recipe."""
    from lowdata.config import given_values
    from lowdata.study.recipes import load_recipes, pick

    name, *assignments = spec.split("@")
    (recipe,) = pick(load_recipes(), [name])
    if recipe.links() or recipe.pretrain or recipe.source:
        raise SystemExit(f"{name} needs another run (teacher, guide, start, pretraining or source); "
                         "time a self-contained recipe")
    return given_values(overrides=dict(recipe.settings), assignments=assignments)


def minutes_to_targets(run_dir: Path, targets: list[float], train_flops: float | None,
                       low_res: dict | None = None) -> dict:
    """From metrics.jsonl: cumulative training minutes (and FLOPs, pro rata per epoch, an early epoch at a lower
    resolution counted at its `low_res` share) at the first evaluation that reached each target."""
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    weights = [low_res["flops_ratio"] if low_res and line["epoch"] <= low_res["epochs"] else 1.0 for line in lines]
    seconds, work, reached = 0.0, 0.0, {}
    for line, weight in zip(lines, weights):
        seconds, work = seconds + line["epoch_seconds"], work + weight
        accuracy = line.get("test_acc")
        for target in targets:
            if accuracy is not None and accuracy >= target / 100 and target not in reached:
                reached[target] = {"minutes": round(seconds / 60, 2), "epoch": line["epoch"],
                                   "flops": train_flops * work / sum(weights) if train_flops else None}
    return {f"{target:g}": reached.get(target) for target in targets}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=DEFAULT)
    parser.add_argument("--labels", type=int, default=1000)
    parser.add_argument("--recipes", default="cnn,cct-2+priors")
    parser.add_argument("--targets", default="40,45,50,55", help="test accuracies in %%")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--eval-every", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import lowdata
    from lowdata.data import load_dataset

    dataset = load_dataset(args.data)
    test_images, test_labels = fixed_test_subset(dataset)
    data = (dataset.train_images, dataset.train_labels, test_images, test_labels)
    targets = [float(value) for value in args.targets.split(",")]
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.recipes.split(","):
            out = Path(scratch) / name.replace("/", "_").replace("@", "_")
            summary = lowdata.train(data=data, data_classes=list(dataset.info.classes), labels=args.labels,
                                    epochs=args.epochs, eval_every=args.eval_every, seed=args.seed,
                                    threads=args.threads, out=str(out), **recipe_settings(name))
            print(json.dumps({"recipe": name, "labels": args.labels, "epochs": args.epochs,
                              "test_images": len(test_labels), "targets": minutes_to_targets(
                                  out, targets, summary.get("train_flops"), summary.get("low_res")),
                              "final_acc": summary["test_acc"], "train_minutes": round(summary["train_seconds"] / 60, 2),
                              "threads": summary["threads"], "precision": summary["precision"],
                              "cpu_capability": torch.backends.cpu.get_cpu_capability()}), flush=True)


if __name__ == "__main__":
    main()
