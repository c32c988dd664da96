"""What `compile=true` (torch.compile) buys a run: the steady training rate eager and compiled, and the seconds
compiling costs with the inductor cache empty (a user's first run) and warm (the second cell of a study).

    python benchmarks/compile_gain.py                    # CIFAR-10 from ../shared: cct-2/3x2, vit-tiny, pooled
    python benchmarks/compile_gain.py --setups cct-2/3x2 --steps 20

Each setup trains three times, each a fresh `lowdata train` process of `--epochs` epochs of `--steps` full
batches: eager, compiled with an empty inductor cache, compiled again with the cache the second run left. The
steady rate is the median images/s of the epochs after the first; the compile cost is the first epoch's
seconds over a steady epoch's (both the labelled images/s of metrics.jsonl). `pooled` is cct-2/3x2 taught by a
ResNet-20 over the unlabelled pool (the cct-2+pool recipe's step; the teacher is trained first, not timed).
One JSON line per setup; the last line says how long a run must be for compiling to pay, cold and warm.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = f"cifar10:{ROOT.parent / 'shared' / 'datasets' / 'cifar10'}"


def setups(teacher: Path) -> dict[str, list[str]]:
    return {"cct-2/3x2": ["--model", "cct-2/3x2"], "vit-tiny": ["--model", "vit-tiny"],
            "pooled": ["--model", "cct-2/3x2", "--teacher", str(teacher), "--distill", "hard", "--pool", "all"]}


def timed_run(out: Path, args, extra: list[str], compile: bool, cache: Path) -> dict:
    """A fresh `lowdata train` process; its steady rate and its first epoch's extra seconds."""
    labels = args.batch_size * args.steps
    command = [sys.executable, "-m", "lowdata", "train", "--data", args.data, "--labels", str(labels), "--epochs",
               str(args.epochs), "--batch-size", str(args.batch_size), "--out", str(out), *extra,
               "warmup_epochs=0", f"compile={str(compile).lower()}"]
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(cache)}
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    epochs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steady_seconds = statistics.median(e["epoch_seconds"] for e in epochs[1:])
    summary = json.loads((out / "summary.json").read_text())
    return {"images_per_second": statistics.median(e["images_per_second"] for e in epochs[1:]),
            "first_epoch_extra_seconds": epochs[0]["epoch_seconds"] - steady_seconds,
            "threads": summary["threads"], "precision": summary["precision"]}


def measure(name: str, extra: list[str], args, root: Path) -> dict:
    cache = root / f"inductor-{name.replace('/', '_')}"
    eager = timed_run(root / f"{name.replace('/', '_')}-eager", args, extra, False, cache)
    cold = timed_run(root / f"{name.replace('/', '_')}-cold", args, extra, True, cache)
    warm = timed_run(root / f"{name.replace('/', '_')}-warm", args, extra, True, cache)
    speedup = statistics.median([cold["images_per_second"], warm["images_per_second"]]) / eager["images_per_second"]
    line = {"benchmark": "compile_gain", "setup": name, "batch_size": args.batch_size,
            "eager_images_per_second": round(eager["images_per_second"], 1),
            "compiled_images_per_second_cold": round(cold["images_per_second"], 1),
            "compiled_images_per_second_warm": round(warm["images_per_second"], 1),
            "compiled_over_eager": round(speedup, 3),
            "compile_seconds_cold_cache": round(cold["first_epoch_extra_seconds"], 1),
            "compile_seconds_warm_cache": round(warm["first_epoch_extra_seconds"], 1),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "threads": eager["threads"],
            "precision": eager["precision"]}
    if speedup > 1:  # eager seconds after which the compiled run has caught up: compile cost / share saved
        saved = 1 - 1 / speedup
        line["pays_after_eager_minutes_cold"] = round(cold["first_epoch_extra_seconds"] / saved / 60, 1)
        line["pays_after_eager_minutes_warm"] = round(warm["first_epoch_extra_seconds"] / saved / 60, 1)
    return line


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=DEFAULT)
    parser.add_argument("--setups", default="cct-2/3x2,vit-tiny,pooled")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10, help="full batches per epoch")
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        wanted = args.setups.split(",")
        if "pooled" in wanted:
            subprocess.run([sys.executable, "-m", "lowdata", "train", "--data", args.data, "--labels",
                            str(args.batch_size * args.steps), "--epochs", "1", "--model", "resnet20", "--out",
                            str(root / "teacher")], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for name, extra in setups(root / "teacher").items():
            if name in wanted:
                print(json.dumps(measure(name, extra, args, root)), flush=True)


if __name__ == "__main__":
    main()
