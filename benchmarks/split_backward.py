"""A pooled step's student pass: one forward/backward over labelled + pool images together, against two
passes of half the batch each with their gradients accumulated before one optimiser step.

    python benchmarks/split_backward.py                    # cct-2/3x2 and vit-tiny, 128 labelled + 128 pool
    python benchmarks/split_backward.py --models cct-2/3x2 --rounds 5

Why: `cure_steps.py` measured the student on 256 images at 2.28x its time on 128 (AVX512), more than twice.
One JSON line per model: the median images/s of full training steps on random CIFAR-sized images under the
precision and attention kernel `lowdata train` picks, in interleaved rounds; the one joint pass (what the
pooled step runs) is the baseline, the half batch alone is for reference.
"""
from __future__ import annotations

import argparse
import json
import statistics

import torch
from model_speed import step_setup, timed_rate  # benchmarks/ is the script's folder, so on its path


def split_step_rate(model: torch.nn.Module, optimizer: torch.optim.Optimizer, images: torch.Tensor,
                    labels: torch.Tensor, autocast, parts: int, seconds: float) -> float:
    """Images/s of training steps whose forward/backward runs over `parts` slices of the batch in turn,
    gradients summed, then one optimiser step (`-parts`: the forward in slices, one backward through all);
    timed for at least `seconds` after one warm-up step."""
    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        if parts < 0:  # the forward in slices, one backward through both
            with autocast():
                logits = torch.cat([model(chunk) for chunk in images.chunk(-parts)])
                loss = torch.nn.functional.cross_entropy(logits.float(), labels)
            loss.backward()
        else:
            for chunk, targets in zip(images.chunk(parts), labels.chunk(parts)):
                with autocast():
                    loss = torch.nn.functional.cross_entropy(model(chunk).float(), targets) / parts
                loss.backward()  # this slice's activations are freed before the next slice runs
        optimizer.step()

    return timed_rate(step, len(images), images.device, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="cct-2/3x2,vit-tiny")
    parser.add_argument("--batch-size", type=int, default=128, help="labelled images a step (as many pool images)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0, help="timed steps per variant and round (at least 2)")
    args = parser.parse_args()

    from lowdata.models import create_model
    from lowdata.models.vit import use_fused_attention

    device, precision = step_setup()
    batch = 2 * args.batch_size
    for name in args.models.split(","):
        generator = torch.Generator().manual_seed(0)
        images = torch.randn(batch, 3, 32, 32, generator=generator).to(device)
        labels = torch.randint(0, 10, (batch,), generator=generator).to(device)
        torch.manual_seed(0)
        model = create_model(name, num_classes=10, in_chans=3, img_size=(32, 32)).to(device).train()
        use_fused_attention(model, precision.fused_attention(device))
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=device.type == "cpu")
        variants = {"joint": (images, labels, 1), "split_in_2": (images, labels, 2),
                    "forward_split_in_2": (images, labels, -2),
                    "half_batch_alone": (images[:args.batch_size], labels[:args.batch_size], 1)}
        rates: dict[str, list[float]] = {variant: [] for variant in variants}
        for _ in range(args.rounds):
            for variant, (x, y, parts) in variants.items():
                rates[variant].append(split_step_rate(model, optimizer, x, y, precision.autocast(device), parts,
                                                      args.seconds))
        median = {variant: statistics.median(values) for variant, values in rates.items()}
        print(json.dumps({
            "benchmark": "split_backward", "model": name, "batch_size": batch, "device": str(device),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "precision": precision.name,
            "threads": torch.get_num_threads(), "rounds": args.rounds,
            "images_per_second": {variant: round(value, 1) for variant, value in median.items()},
            "over_joint": {variant: round(value / median["joint"], 3) for variant, value in median.items()},
        }), flush=True)


if __name__ == "__main__":
    main()
