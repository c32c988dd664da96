"""CCT training steps with and without the two things issue 31 changed or weighed: the convolutional tokenizer's
memory layout (channels-last, as lowdata runs it, against PyTorch's default layout, as it ran before) and
attention dropout (the presets' 0.1 against 0).

    python benchmarks/cct_step.py                        # cct-2/3x2 at batch 128, cct-7/3x1 at batch 32
    python benchmarks/cct_step.py --models cct-2/3x2 --rounds 5

One JSON line per model: the median images/s of full training steps (forward, backward, AdamW) on random
CIFAR-sized images under the precision and attention kernel `lowdata train` picks, for each variant in
interleaved rounds; the first variant (default layout, dropout 0.1: the code before issue 31) is the baseline.
"""
from __future__ import annotations

import argparse
import json
import statistics

import torch
from model_speed import step_rate, step_setup  # benchmarks/ is the script's folder, so on its path

BATCH = {"cct-2/3x2": 128, "cct-7/3x1": 32}


def default_layout_forward(self, x: torch.Tensor) -> torch.Tensor:
    return self.tokens(self.proj(x))  # the tokenizer as it ran before: PyTorch's default (NCHW) layout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="cct-2/3x2,cct-7/3x1")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0, help="timed steps per variant and round (at least 2)")
    args = parser.parse_args()

    from lowdata.models import create_model
    from lowdata.models.small_data import ConvTokenizer
    from lowdata.models.vit import use_fused_attention

    device, precision = step_setup()
    channels_last_forward = ConvTokenizer.forward
    variants = {"default_layout_drop_0.1": (default_layout_forward, 0.1),
                "channels_last_drop_0.1": (channels_last_forward, 0.1),
                "channels_last_drop_0": (channels_last_forward, 0.0)}
    for name in args.models.split(","):
        batch = BATCH.get(name, 64)
        generator = torch.Generator().manual_seed(0)
        images = torch.randn(batch, 3, 32, 32, generator=generator).to(device)
        labels = torch.randint(0, 10, (batch,), generator=generator).to(device)
        built = {}
        for variant, (_, drop) in variants.items():
            torch.manual_seed(0)
            model = create_model(name, num_classes=10, in_chans=3, img_size=(32, 32), attn_drop_rate=drop)
            model.to(device).train()
            use_fused_attention(model, precision.fused_attention(device))
            built[variant] = (model, torch.optim.AdamW(model.parameters(), lr=1e-3, fused=device.type == "cpu"))

        rates: dict[str, list[float]] = {variant: [] for variant in variants}
        for _ in range(args.rounds):
            for variant, (model, optimizer) in built.items():
                ConvTokenizer.forward = variants[variant][0]
                rates[variant].append(step_rate(model, optimizer, images, labels, precision.autocast(device),
                                                args.seconds))
        ConvTokenizer.forward = channels_last_forward
        median = {variant: statistics.median(values) for variant, values in rates.items()}
        baseline = median["default_layout_drop_0.1"]
        print(json.dumps({
            "benchmark": "cct_step", "model": name, "batch_size": batch, "device": str(device),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "precision": precision.name,
            "threads": torch.get_num_threads(), "rounds": args.rounds,
            "images_per_second": {variant: round(value, 1) for variant, value in median.items()},
            "over_baseline": {variant: round(value / baseline, 3) for variant, value in median.items()},
        }), flush=True)


if __name__ == "__main__":
    main()
