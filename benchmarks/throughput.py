"""Training throughput of lowdata's default path against a naive tutorial loop, interleaved in one run.

    python benchmarks/throughput.py                      # CIFAR-10 from ../shared, vit-tiny and resnet20 (~4 min)
    python benchmarks/throughput.py --long               # also compile=true and a real `lowdata train` (~9 min)
    python benchmarks/throughput.py --models resnet20 --rounds 3

One JSON line per model: images/s of (a) the naive baseline written the way tutorials do (fp32, torchvision
per-image PIL transforms in a DataLoader, the same timm model, plain AdamW) and (b) lowdata's default path
(`training.loop.fit` with precision/threads/attention chosen as `lowdata train` chooses them, batched
augmentation on the tensors), A and B alternating; (c) model-FLOPs utilisation: FLOPs of a training step
(counted by torch.utils.flop_counter) times steps/s over this machine's matmul rate at the precision in use,
measured here; (d) one and two lowdata workers at once on this host (aggregate images/s). With `--long`:
(e) once, the default path with compile=true (its steady rate, and the compile time it costs; see also
benchmarks/compile_gain.py), and a last line ("end_to_end") timing a real `lowdata train` of 2,000 labels for
10 epochs against the sum of its training steps, with its peak memory (RSS). On a machine with a GPU everything
runs there (the naive loop moves its batches to it), with the precision `lowdata train` picks for it.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = f"cifar10:{ROOT.parent / 'shared' / 'datasets' / 'cifar10'}"


def device() -> torch.device:
    """The device `lowdata train` would pick (a GPU when there is one)."""
    from lowdata.device import pick_device

    return pick_device("auto")


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def matmul_rate(precision: str, size: int = 1024, repeats: int = 8) -> float:
    """FLOP/s of a size x size matmul under the given autocast precision (median of repeats). On a GPU the
    matrices are 8x larger on a side, so that the product is long enough to time."""
    from lowdata.device import Precision

    size = size * 8 if device().type == "cuda" else size
    a, b = torch.randn(size, size, device=device()), torch.randn(size, size, device=device())
    autocast = Precision(precision, "").autocast(device())
    seconds = []
    for _ in range(repeats + 1):
        with autocast():
            sync()
            started = time.perf_counter()
            a @ b
            sync()
            seconds.append(time.perf_counter() - started)
    return 2 * size**3 / statistics.median(seconds[1:])


def step_flops(model: torch.nn.Module, batch: torch.Tensor) -> float:
    """FLOPs of one forward and backward pass over `batch` (matmuls and convolutions, as counted by PyTorch)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        model(batch).float().sum().backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def naive_rate(name: str, dataset, batch_size: int, steps: int) -> float:
    """The tutorial loop: fp32, torchvision's per-image PIL transforms in a DataLoader, plain AdamW."""
    from torch.utils.data import DataLoader, Dataset
    from torchvision.transforms import v2

    from lowdata.models import create_model

    info = dataset.info
    mean, std = list(info.mean), list(info.std)  # on the 0..1 scale
    transform = v2.Compose([v2.ToPILImage(), v2.RandomCrop(info.image_size, padding=info.image_size[0] // 8),
                            v2.RandomHorizontalFlip(), v2.PILToTensor(), v2.ToDtype(torch.float32, scale=True),
                            v2.Normalize(mean, std)])

    class Images(Dataset):
        def __len__(self) -> int:
            return len(dataset.train_images)

        def __getitem__(self, i: int):
            return transform(dataset.train_images[i]), int(dataset.train_labels[i])

    torch.manual_seed(0)
    model = create_model(name, num_classes=info.num_classes, in_chans=info.channels, img_size=info.image_size)
    model.to(device())
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    criterion = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    loader = DataLoader(Images(), batch_size=batch_size, shuffle=True, num_workers=os.cpu_count() or 1,
                        drop_last=True, persistent_workers=False)
    model.train()
    started, seen = None, 0
    for i, (x, y) in enumerate(loader):
        if i == 2:  # the first steps start the workers and allocate
            sync()
            started, seen = time.perf_counter(), 0
        x, y = x.to(device()), y.to(device())
        optimizer.zero_grad()
        criterion(model(x), y).backward()
        optimizer.step()
        seen += len(x)
        if i == steps + 1:
            break
    sync()
    return seen / (time.perf_counter() - started)


def lowdata_rate(name: str, data: str, batch_size: int, steps: int, compile: bool = False) -> dict:
    """lowdata's default path: `fit` for two epochs of `steps` steps, set up as `lowdata train` sets it up;
    the rate is the second epoch's (the first allocates and warms up, as the naive loop's first steps do)."""
    from lowdata.augment import build_policy
    from lowdata.cores import CoreShare
    from lowdata.data import load_dataset
    from lowdata.device import pick_precision
    from lowdata.models import create_model, default_lr
    from lowdata.models.vit import use_fused_attention
    from lowdata.objectives.supervised import Supervised
    from lowdata.training.context import RunContext
    from lowdata.training.distributed import SINGLE
    from lowdata.training.loop import LoopData, LoopSettings, NoEma, fit

    cores = CoreShare().__enter__()  # registered before the data load, as `lowdata train` does
    dataset = load_dataset(data)
    info, device_ = dataset.info, device()
    precision = pick_precision("auto", device_)
    torch.manual_seed(0)
    model = create_model(name, num_classes=info.num_classes, in_chans=info.channels, img_size=info.image_size)
    use_fused_attention(model, precision.fused_attention(device_))
    model.to(device_)
    n = batch_size * steps
    data_ = LoopData(dataset.train_images[:n], dataset.train_labels[:n])
    settings = LoopSettings(epochs=2, batch_size=batch_size, lr=default_lr(name), min_lr=1e-5, weight_decay=0.05,
                            warmup_epochs=0, clip_grad=1.0, eval_every=None, compile=compile)
    generators = {"order": torch.Generator().manual_seed(0),
                  "augment": torch.Generator(device=device_).manual_seed(1)}
    with tempfile.TemporaryDirectory() as run_dir:
        ctx = RunContext(device_, precision.autocast(device_), precision.grad_scaler(device_), SINGLE, cores,
                         generators, Path(run_dir), resume=False, config={})
        result = fit(Supervised(model, 0.1), data_, settings, build_policy("basic", info).to(device_), lambda m: {},
                     NoEma(model), ctx)
        first, second = map(json.loads, (Path(run_dir) / "metrics.jsonl").read_text().splitlines())
    cores.__exit__()
    return {"images_per_second": second["images_per_second"], "threads": result["threads"],
            "precision": precision.name, "first_epoch_extra_seconds": first["epoch_seconds"] - second["epoch_seconds"]}


def worker_results(args, name: str, workers: int, compile: bool = False) -> list[dict]:
    """What each of `workers` lowdata processes started together measured (each a fresh interpreter)."""
    command = [sys.executable, __file__, "--worker", name, "--data", args.data, "--batch-size",
               str(args.batch_size), "--steps", str(args.steps)] + (["--compile"] if compile else [])
    with tempfile.TemporaryDirectory() as cache:  # a cold compile, as a user's first run has it
        env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache}
        children = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) for _ in range(workers)]
        return [json.loads(child.communicate()[0]) for child in children]


def worker_rates(args, name: str, workers: int) -> list[float]:
    return [result["images_per_second"] for result in worker_results(args, name, workers)]


def measure_model(args, name: str, dataset, matmul: dict[str, float]) -> dict:
    from lowdata.device import pick_precision
    from lowdata.models import create_model

    info = dataset.info
    naive, ours, alone, pair = [], [], [], []
    for _ in range(args.rounds):  # A and B alternate: the machine is shared and noisy
        naive.append(naive_rate(name, dataset, args.batch_size, args.steps))
        ours.append(worker_rates(args, name, 1)[0])
        alone.append(ours[-1])
        pair.append(sum(worker_rates(args, name, 2)))
    precision = pick_precision("auto", device())
    model = create_model(name, num_classes=info.num_classes, in_chans=info.channels, img_size=info.image_size)
    batch = torch.randn(args.batch_size, info.channels, *info.image_size, device=device())
    flops = step_flops(model.to(device()), batch) / args.batch_size
    rate = statistics.median(ours)
    compiled = {}
    if args.long and name in args.compiled.split(","):  # once: compiling takes about a minute
        result = worker_results(args, name, 1, compile=True)[0]
        compiled = {"compiled_images_per_second": round(result["images_per_second"], 1),
                    "compiled_speedup_vs_naive": round(result["images_per_second"] / statistics.median(naive), 2),
                    "compile_seconds": round(result["first_epoch_extra_seconds"], 1)}
    return {
        "benchmark": "throughput", "model": name, "data": info.name, "batch_size": args.batch_size,
        "device": torch.cuda.get_device_name() if device().type == "cuda" else "cpu",
        "cpu_capability": torch.backends.cpu.get_cpu_capability(), "cores": os.cpu_count(),
        "precision": precision.name, "naive_images_per_second": round(statistics.median(naive), 1),
        "lowdata_images_per_second": round(rate, 1),
        "speedup_vs_naive": round(rate / statistics.median(naive), 2),
        "train_gflop_per_image": round(flops / 1e9, 3),
        "matmul_gflops": {k: round(v / 1e9, 1) for k, v in matmul.items()},
        "mfu": round(rate * flops / matmul[precision.name], 3),
        "one_worker_images_per_second": round(statistics.median(alone), 1),
        "two_workers_images_per_second": round(statistics.median(pair), 1),
        "two_workers_over_one": round(statistics.median(pair) / statistics.median(alone), 2),
        **compiled, "rounds": args.rounds,
    }


def end_to_end(args) -> dict:
    """`lowdata train` of 2,000 labels for 10 epochs (vit-tiny, defaults) in a fresh process."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        command = [sys.executable, "-m", "lowdata", "train", "--data", args.data, "--labels", "2000",
                   "--epochs", "10", "--model", "vit-tiny", "--out", str(out)]
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        if status != 0:
            raise SystemExit(f"lowdata train failed with status {status}")
        summary = json.loads((out / "summary.json").read_text())
    steps, fit_wall = summary["train_seconds"], summary["wall_seconds_this_session"]
    evaluation, checkpoints = summary["eval_seconds"], summary["checkpoint_seconds"]
    per_epoch = (fit_wall - steps - evaluation) / 10
    return {
        "benchmark": "throughput", "model": "vit-tiny", "end_to_end": "2000 labels, 10 epochs",
        "wall_seconds": round(wall, 1), "training_step_seconds": round(steps, 1),
        "startup_seconds": round(wall - fit_wall, 1), "evaluation_seconds": round(evaluation, 1),
        "checkpoint_seconds": round(checkpoints, 2),
        "overhead_share_of_wall": round(1 - steps / wall, 3),
        "per_epoch_overhead_share": round(per_epoch / (steps / 10), 3),
        "peak_rss_mb": round(usage.ru_maxrss / 1024),  # Linux reports kilobytes
        "train_images_cached": 50000, "precision": summary["precision"], "threads": summary["threads"],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=DEFAULT)
    parser.add_argument("--models", default="vit-tiny,resnet20")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--long", action="store_true", help="also the compiled rate and the end-to-end run")
    parser.add_argument("--skip-end-to-end", action="store_true", help="with --long: no end-to-end run")
    parser.add_argument("--compiled", default="vit-tiny", help="with --long: models also measured with compile=true")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--compile", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(lowdata_rate(args.worker, args.data, args.batch_size, args.steps, args.compile)))
        return

    from lowdata.data import load_dataset
    from lowdata.device import pick_precision

    dataset = load_dataset(args.data)
    precision = pick_precision("auto", device()).name
    matmul = {"fp32": matmul_rate("fp32"), precision: matmul_rate(precision)}
    for name in args.models.split(","):
        print(json.dumps(measure_model(args, name, dataset, matmul)), flush=True)
    if args.long and not args.skip_end_to_end:
        print(json.dumps(end_to_end(args)), flush=True)


if __name__ == "__main__":
    main()
