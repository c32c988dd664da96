"""Augmentation throughput: the batched `strong` policy against torchvision's per-image PIL pipeline with the
same operations in a DataLoader (the usual way) and against kornia's batched augmentation (the library that
also batches, with per-image parameters), measured in one run with the three interleaved; and the share of a
`vit-tiny` training step that the batched policy takes. Goals: >= 3x the PIL pipeline, < 10 % of a step.

lowdata's ops stay hand-written even where kornia is as fast: kornia draws its parameters from the global
torch RNG (its modules take no generator), so its streams can be neither seeded per run nor checkpointed
for an exact resume, which the study's reproducibility rests on. Needs `pip install kornia` (the `bench`
extra); without it the kornia figures are left out.

    python benchmarks/augment_throughput.py [--data cifar10:../shared/datasets/cifar10] [--rounds 3]

Both sides start from the same in-memory uint8 images (no decoding), make batches of --batch-size and end
with normalised float images and Mixup/CutMix soft targets. The baseline's DataLoader gets --workers
processes (default: one per core); its worker start-up is not counted.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

DEFAULT = f"cifar10:{Path(__file__).resolve().parents[2] / 'shared' / 'datasets' / 'cifar10'}"


class PilImages(torch.utils.data.Dataset):
    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        from PIL import Image

        picture = Image.fromarray(self.images[index].permute(1, 2, 0).numpy())
        return self.transform(picture), self.labels[index]


def pil_pipeline(info, batch_size: int, images: torch.Tensor, labels: torch.Tensor, workers: int):
    from torchvision.transforms import v2

    per_image = v2.Compose([
        v2.RandomCrop(info.image_size[0], padding=info.image_size[0] // 8), v2.RandomHorizontalFlip(),
        v2.RandAugment(num_ops=2, magnitude=9), v2.PILToTensor(), v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(info.mean, info.std), v2.RandomErasing(p=0.25, value="random"),
    ])
    mixing = v2.RandomChoice([v2.MixUp(alpha=0.8, num_classes=info.num_classes),
                              v2.CutMix(alpha=1.0, num_classes=info.num_classes)])
    loader = torch.utils.data.DataLoader(PilImages(images, labels, per_image), batch_size=batch_size, shuffle=True,
                                         num_workers=workers, persistent_workers=workers > 0, drop_last=True)
    return loader, mixing


def time_pil(loader, mixing, batches: int) -> float:
    """Images per second over `batches` batches, after one batch that starts the workers."""
    iterator = iter(loader)
    mixing(*next(iterator))
    started = time.perf_counter()
    for _ in range(batches):
        mixing(*next(iterator))
    return batches * loader.batch_size / (time.perf_counter() - started)


def kornia_pipeline(info):
    """The same operations as `strong`, batched by kornia: crop with padding, flip, RandAugment (2 ops,
    magnitude 9), normalisation, random erasing 0.25, then Mixup 0.8 or CutMix 1.0 chosen per batch."""
    import kornia.augmentation as K
    from kornia.augmentation.auto import RandAugment

    size = info.image_size
    per_image = K.ImageSequential(
        K.RandomCrop(size, padding=size[0] // 8), K.RandomHorizontalFlip(), RandAugment(n=2, m=9),
        K.Normalize(torch.tensor(info.mean), torch.tensor(info.std)), K.RandomErasing(p=0.25))
    mixes = [K.RandomMixUpV2(p=1.0, data_keys=["input", "class"]),
             K.RandomCutMixV2(p=1.0, data_keys=["input", "class"], use_correct_lambda=True)]

    def run(images: torch.Tensor, labels: torch.Tensor):
        views = per_image(images.float() / 255)
        return mixes[int(torch.randint(0, 2, ()))](views, labels)
    return run


def time_kornia(pipeline, images: torch.Tensor, labels: torch.Tensor, batch_size: int, batches: int,
                generator: torch.Generator) -> float:
    """Images per second of the kornia pipeline over `batches` batches (indexing included)."""
    started = time.perf_counter()
    for _ in range(batches):
        index = torch.randint(0, len(images), (batch_size,), generator=generator)
        pipeline(images[index], labels[index])
    return batches * batch_size / (time.perf_counter() - started)


def time_batched(policy, images: torch.Tensor, labels: torch.Tensor, batch_size: int, batches: int,
                 generator: torch.Generator) -> list[float]:
    """Seconds per batch for the batched policy (indexing the stored images included)."""
    seconds = []
    for _ in range(batches):
        index = torch.randint(0, len(images), (batch_size,), generator=generator)
        started = time.perf_counter()
        policy(images[index], labels[index], generator)
        seconds.append(time.perf_counter() - started)
    return seconds


def time_vit_step(info, batch_size: int, steps: int) -> list[float]:
    from lowdata.device import pick_precision
    from lowdata.models.vit import use_fused_attention
    from lowdata.models import create_model
    from lowdata.objectives.supervised import Supervised
    from lowdata.training.optim import build_optimizer

    model = create_model("vit-tiny", num_classes=info.num_classes, in_chans=info.channels, img_size=info.image_size)
    precision = pick_precision("auto", torch.device("cpu"))
    use_fused_attention(model, precision.fused_attention(torch.device("cpu")))  # as `lowdata train` does
    objective, optimizer = Supervised(model, 0.1), build_optimizer(model, 1e-3, 0.05)
    autocast = precision.autocast(torch.device("cpu"))
    images = torch.randn(batch_size, info.channels, *info.image_size)
    targets = torch.softmax(torch.randn(batch_size, info.num_classes), 1)
    seconds = []
    for _ in range(steps + 1):
        started = time.perf_counter()
        with autocast():
            out = objective(images, targets)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()
        seconds.append(time.perf_counter() - started)
    return seconds[1:]  # the first step allocates


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=DEFAULT)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    args = parser.parse_args()

    from lowdata.augment import build_policy
    from lowdata.data import load_dataset

    dataset = load_dataset(args.data)
    info, images, labels = dataset.info, dataset.train_images, dataset.train_labels
    policy = build_policy("strong", info)
    generator = torch.Generator().manual_seed(0)
    loader, mixing = pil_pipeline(info, args.batch_size, images, labels, args.workers)
    try:
        kornia = kornia_pipeline(info)
        time_kornia(kornia, images, labels, args.batch_size, 2, generator)  # warm-up
    except ImportError:
        kornia = None
    time_batched(policy, images, labels, args.batch_size, 2, generator)  # warm-up
    batched_rates, pil_rates, kornia_rates, batch_seconds, step_seconds = [], [], [], [], []
    for _ in range(args.rounds):  # A and B interleaved: the machine is shared and noisy
        seconds = time_batched(policy, images, labels, args.batch_size, args.batches, generator)
        batch_seconds += seconds
        batched_rates.append(args.batch_size * len(seconds) / sum(seconds))
        pil_rates.append(time_pil(loader, mixing, args.batches))
        if kornia is not None:
            kornia_rates.append(time_kornia(kornia, images, labels, args.batch_size, args.batches, generator))
        step_seconds += time_vit_step(info, args.batch_size, 3)
    batched, pil = statistics.median(batched_rates), statistics.median(pil_rates)
    augment_s, step_s = statistics.median(batch_seconds), statistics.median(step_seconds)
    share = augment_s / (augment_s + step_s)
    versus_kornia = {}
    if kornia_rates:
        rate = statistics.median(kornia_rates)
        versus_kornia = {"kornia_batched_images_per_second": round(rate), "speedup_vs_kornia": round(batched / rate, 2)}
    print(json.dumps({
        "benchmark": "augment_throughput", "data": info.name, "policy": "strong", "batch_size": args.batch_size,
        "threads": torch.get_num_threads(), "pil_workers": args.workers,
        "batched_images_per_second": round(batched), "pil_dataloader_images_per_second": round(pil),
        "speedup": round(batched / pil, 2), **versus_kornia, "augment_ms_per_batch": round(augment_s * 1000, 2),
        "vit_tiny_step_ms": round(step_s * 1000, 1), "augment_share_of_step": round(share, 4),
        "goal_3x_pil": batched / pil >= 3, "goal_under_10pct_of_step": share < 0.10,
    }))


if __name__ == "__main__":
    main()
