"""Minutes to accuracy on this CPU: how long each recipe trains before its test accuracy first reaches each target.

    python benchmarks/time_to_accuracy.py                          # cnn and cct-2+priors at 1,000 CIFAR-10 labels
    python benchmarks/time_to_accuracy.py --recipes cnn,cct-2,vit-simple --targets 40,45,50 --epochs 60
    python benchmarks/time_to_accuracy.py --recipes cnn,cct-2+priors@model_args.patch_drop_rate=0.5   # a lever

One JSON line per recipe, the CNN measured in the same run: the training minutes (evaluations not counted) and
training FLOPs until the accuracy on a fixed, seeded 2,000-image subset of the test split, evaluated every
`--eval-every` epochs, first reached each target (null: never within the schedule), the final accuracy, the
threads and the CPU capability. A recipe trains its whole schedule (`--epochs`, the README's 60 at 1,000
labels): its cosine schedule is part of the recipe, so "time to 50 %" is read on the schedule a user would run.
A recipe that continues another's run (`start:`, e.g. `cct-2+priors+ema+drloc` after its whitened labels-only run)
trains that run first and is timed over both: the minutes and FLOPs add up, and a target counts as reached at the
first evaluation of either run that reached it (the first run's model is what a user holds by then). A lever
(`@key=value`) applies to the named recipe's run. Recipes that need a teacher, a guide, a pretraining or a source
run are refused (a cached teacher's pass over the pool is not one of the runs' epochs).
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


def recipe_chain(spec: str) -> list[tuple[str, dict]]:
    """`cct-2+priors@model_args.patch_drop_rate=0.5@lr=1e-3` -> [(name, settings)] of the runs it trains, first to
    last: each `start:` recipe before the recipe that continues from it, and the key=value settings on the last
    (a dotted key fills a mapping, as on the command line): a lever timed on a recipe."""
    from lowdata.config import given_values
    from lowdata.study.recipes import load_recipes, pick

    name, *assignments = spec.split("@")
    known, chain = load_recipes(), []
    while name is not None:
        (recipe,) = pick(known, [name])
        if recipe.teacher or recipe.guide or recipe.pretrain or recipe.source:
            raise SystemExit(f"{name} needs another kind of run (teacher, guide, pretraining or source); time a "
                             "recipe whose runs are its own or its start: recipe's")
        chain.insert(0, (name, dict(recipe.settings)))
        name = recipe.start
    last_name, last_settings = chain[-1]
    chain[-1] = (last_name, given_values(overrides=last_settings, assignments=assignments))
    return chain


def minutes_to_targets(runs: list[tuple[Path, float | None, dict | None]], targets: list[float]) -> dict:
    """From each run's metrics.jsonl, the runs (run_dir, train_flops, low_res) one after the other: cumulative
    training minutes (and FLOPs, pro rata per epoch, an early epoch at a lower resolution counted at its `low_res`
    share) at the first evaluation that reached each target."""
    seconds, work, reached = 0.0, 0.0, {}
    for run_dir, train_flops, low_res in runs:
        lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
        weights = [low_res["flops_ratio"] if low_res and line["epoch"] <= low_res["epochs"] else 1.0
                   for line in lines]
        for line, weight in zip(lines, weights):
            seconds += line["epoch_seconds"]
            work = None if work is None or not train_flops else work + train_flops * weight / sum(weights)
            accuracy = line.get("test_acc")
            for target in targets:
                if accuracy is not None and accuracy >= target / 100 and target not in reached:
                    reached[target] = {"minutes": round(seconds / 60, 2), "epoch": line["epoch"],
                                       "run": run_dir.name, "flops": work}
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
        for spec in args.recipes.split(","):
            runs, summaries, init = [], [], None
            for index, (name, settings) in enumerate(recipe_chain(spec)):
                out = Path(scratch) / f"{spec}-{index}-{name}".replace("/", "_").replace("@", "_")
                summary = lowdata.train(data=data, data_classes=list(dataset.info.classes), labels=args.labels,
                                        epochs=args.epochs, eval_every=args.eval_every, seed=args.seed,
                                        threads=args.threads, out=str(out), **settings,
                                        **({"init": str(init)} if init else {}))
                runs.append((out, summary.get("train_flops"), summary.get("low_res")))
                summaries.append(summary)
                init = out
            print(json.dumps({"recipe": spec, "runs": [out.name for out, _, _ in runs], "labels": args.labels,
                              "epochs": args.epochs, "test_images": len(test_labels),
                              "targets": minutes_to_targets(runs, targets), "final_acc": summaries[-1]["test_acc"],
                              "train_minutes": round(sum(s["train_seconds"] for s in summaries) / 60, 2),
                              "threads": summaries[-1]["threads"], "precision": summaries[-1]["precision"],
                              "cpu_capability": torch.backends.cpu.get_cpu_capability()}), flush=True)

if __name__ == "__main__":
    main()
