"""Training images/s of each architecture, against ResNet-20 measured in the same run.

    python benchmarks/model_speed.py                                    # the small-data presets
    python benchmarks/model_speed.py --models vit-tiny,cct-2/3x2 --threads 1
    python benchmarks/model_speed.py --models vit-tiny,vit-tiny@patch_drop_rate=0.5   # a preset with model_args
    python benchmarks/model_speed.py --models cct-2/3x2,cct-2/3x2@low_res=24   # an early step of low_res_size=24

One JSON line: per model, the median images/s of full training steps (forward, backward, AdamW) on a batch
at CIFAR size, under the precision and attention kernel `lowdata train` picks on this machine, in rounds that
interleave the models (so a noisy neighbour slows all of them alike), and each model's rate as a share of
ResNet-20's. Data loading and augmentation are left out: this compares the architectures, not the pipeline
(benchmarks/throughput.py measures that).
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

BASELINE = "resnet20"


def step_rate(model: torch.nn.Module, optimizer: torch.optim.Optimizer, images: torch.Tensor, labels: torch.Tensor,
              autocast, seconds: float) -> float:
    """Images/s of full training steps (forward under `autocast`, backward, optimiser) on one batch, timed for at
    least `seconds` and two steps after one warm-up step (allocations, kernel choice)."""
    def step() -> None:
        with autocast():
            loss = torch.nn.functional.cross_entropy(model(images).float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return timed_rate(step, len(images), images.device, seconds)


def step_setup(threads: int | None = None):
    """Threads (every usable core unless given), device and precision as `lowdata train` picks them."""
    from lowdata.cores import usable_cores
    from lowdata.device import pick_device, pick_precision

    torch.set_num_threads(threads or usable_cores())
    device = pick_device("auto")
    return device, pick_precision("auto", device)


def timed_rate(step, images_per_step: int, device: torch.device, seconds: float) -> float:
    """Images/s of `step()`, run for at least `seconds` and two steps after one warm-up step."""
    step()
    count, started = 0, time.perf_counter()
    while count < 2 or time.perf_counter() - started < seconds:
        step()
        count += 1
    if device.type == "cuda":
        torch.cuda.synchronize()
    return images_per_step * count / (time.perf_counter() - started)


def preset_and_args(spec: str) -> tuple[str, dict]:
    """`vit-tiny@patch_drop_rate=0.5@depth=6` -> ("vit-tiny", {"patch_drop_rate": 0.5, "depth": 6}): a preset
    with the model_args a run would pass (values read as YAML)."""
    import yaml

    preset, *pairs = spec.split("@")
    return preset, {key: yaml.safe_load(value) for key, _, value in (pair.partition("=") for pair in pairs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="vit-tiny,vit-tiny-convstem,vit-tiny-sl,cct-2/3x2,cct-7/3x1")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None, help="default: every usable core")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2.0, help="timed steps per model and round (at least 2)")
    args = parser.parse_args()

    from lowdata.models import create_model
    from lowdata.models.resolution import LowResolution
    from lowdata.models.vit import use_fused_attention

    device, precision = step_setup(args.threads)
    names = [BASELINE] + [n for n in args.models.split(",") if n and n != BASELINE]
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(args.batch_size, 3, args.image_size, args.image_size, generator=generator).to(device)
    labels = torch.randint(0, 10, (args.batch_size,), generator=generator).to(device)
    steps = {}
    for name in names:
        torch.manual_seed(0)
        preset, model_args = preset_and_args(name)
        low_res = model_args.pop("low_res", None)  # the step of progressive resolution's early epochs
        model = create_model(preset, num_classes=10, in_chans=3, img_size=(args.image_size, args.image_size),
                             **model_args).to(device)
        use_fused_attention(model, precision.fused_attention(device))
        if low_res:  # the batch resized inside the step, as the run's loop has it (models/resolution.py)
            model = LowResolution(model, low_res)
        steps[name] = (model, torch.optim.AdamW(model.parameters(), lr=1e-3))

    rates: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(args.rounds):
        for name, (model, optimizer) in steps.items():
            rates[name].append(step_rate(model, optimizer, images, labels, precision.autocast(device),
                                         args.seconds))
    median = {name: statistics.median(values) for name, values in rates.items()}
    print(json.dumps({
        "benchmark": "model_speed", "device": str(device), "cpu": torch.backends.cpu.get_cpu_capability(),
        "precision": precision.name, "threads": torch.get_num_threads(), "batch_size": args.batch_size,
        "image_size": args.image_size, "rounds": args.rounds,
        "images_per_second": {name: round(value, 1) for name, value in median.items()},
        f"share_of_{BASELINE}": {name: round(value / median[BASELINE], 3) for name, value in median.items()},
        "all_rounds": {name: [round(v, 1) for v in values] for name, values in rates.items()},
    }))


if __name__ == "__main__":
    main()
