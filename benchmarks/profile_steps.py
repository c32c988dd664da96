"""Where a training step's time goes, by kind of work, for the steps the cure runs.

    python benchmarks/profile_steps.py                   # CIFAR-10 from ../shared: vit-tiny, cct-2/3x2, pooled
    python benchmarks/profile_steps.py --setups vit-tiny --steps 8

Each setup is a real `lowdata train` of two epochs of `--steps` batches under torch.profiler (CPU); only the
second epoch's steps count. The loop labels its phases (lowdata.augment, .forward, .backward, .optimizer; the
pool's views, a frozen teacher's and the EMA teacher's passes inside the forward), and each operator's own
time is put in one bucket: the augmentation (the labelled batch's and the pool's views), the optimiser (clipping
and AdamW), a frozen teacher's forward, the EMA teacher, and inside the student's forward and backward:
matrix multiplies (mm, addmm), attention's batched products (bmm: q k^T and attention x v), convolutions,
casts (autocast's copies), softmax, norms (LayerNorm, BatchNorm), and elementwise (all the rest: GELU, adds,
dropout, ...). One JSON line per setup with each bucket's share of the operators' time, the largest elementwise
operators, and the step's seconds.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from collections import defaultdict
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = f"cifar10:{ROOT.parent / 'shared' / 'datasets' / 'cifar10'}"
PHASES = {"lowdata.augment": "augmentation", "lowdata.pool_views": "augmentation", "lowdata.optimizer": "optimizer",
          "lowdata.frozen": "frozen teacher", "lowdata.ema_teacher": "ema teacher"}
OPERATORS = {"matmul": ("aten::mm", "aten::addmm"), "attention products": ("aten::bmm", "aten::baddbmm"),
             "convolution": ("conv", "mkldnn_convolution"), "casts": ("aten::_to_copy", "aten::copy_", "aten::to"),
             "softmax": ("softmax",), "norms": ("layer_norm", "batch_norm")}


def bucket(name: str, phases: list[str]) -> str:
    """The bucket of an operator called `name` under the lowdata labels `phases` (innermost last)."""
    for phase in reversed(phases):
        if phase in PHASES:
            return PHASES[phase]
    for kind, patterns in OPERATORS.items():
        if any(pattern == name or (not pattern.startswith("aten::") and pattern in name) for pattern in patterns):
            return kind
    return "elementwise"


def labels_above(event) -> list[str]:
    chain = []
    while event is not None:
        if event.name.startswith("lowdata."):
            chain.append(event.name)
        event = event.cpu_parent
    return chain[::-1]


def profile(name: str, extra: dict, args, root: Path) -> dict:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as profiler

    from lowdata import train

    labels = args.batch_size * args.steps
    with profiler(activities=[ProfilerActivity.CPU]) as prof:
        summary = train(data=args.data, labels=labels, epochs=2, batch_size=args.batch_size, warmup_epochs=0,
                        out=str(root / name.replace("/", "_")), **extra)
    events = prof.events()
    steps = sorted((e for e in events if e.name in ("lowdata.augment", "lowdata.step")),
                   key=lambda e: e.time_range.start)
    counted = steps[len(steps) // 2:]  # the second epoch's augment + step ranges
    start, end = counted[0].time_range.start, counted[-1].time_range.end
    seconds: dict[str, float] = defaultdict(float)
    elementwise: dict[str, float] = defaultdict(float)
    for event in events:
        if not event.name.startswith("aten::") or not start <= event.time_range.start < end:
            continue
        chain = labels_above(event)
        if chain and chain[0] in ("lowdata.augment", "lowdata.step"):
            kind = bucket(event.name, chain)
            seconds[kind] += event.self_cpu_time_total / 1e6
            if kind == "elementwise":
                elementwise[event.name] += event.self_cpu_time_total / 1e6
    step_seconds = sum(e.time_range.elapsed_us() for e in counted) / 1e6 / args.steps
    total = sum(seconds.values())
    return {"benchmark": "profile_steps", "setup": name, "batch_size": args.batch_size,
            "seconds_per_step": round(step_seconds, 4),
            "share_of_operator_time": {k: round(v / total, 3)
                                       for k, v in sorted(seconds.items(), key=lambda kv: -kv[1])},
            "largest_elementwise": {k: round(v / total, 3) for k, v in
                                    sorted(elementwise.items(), key=lambda kv: -kv[1])[:6]},
            "operator_time_over_step_time": round(total / args.steps / step_seconds, 3),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "threads": summary["threads"],
            "precision": summary["precision"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=DEFAULT)
    parser.add_argument("--setups", default="vit-tiny,cct-2/3x2,pooled")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()
    from lowdata import train

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        setups = {"vit-tiny": dict(model="vit-tiny"), "cct-2/3x2": dict(model="cct-2/3x2")}
        if "pooled" in args.setups.split(","):
            train(data=args.data, labels=args.batch_size * args.steps, epochs=1, model="resnet20",
                  batch_size=args.batch_size, out=str(root / "teacher"))
            setups["pooled"] = dict(model="cct-2/3x2", teacher=str(root / "teacher"), distill="hard", pool="all")
        for name, extra in setups.items():
            if name in args.setups.split(","):
                print(json.dumps(profile(name, extra, args, root)), flush=True)


if __name__ == "__main__":
    main()
