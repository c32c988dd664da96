"""The step cost of issue 43's locality priors: each option against the same model without it, in one run.

    python benchmarks/attention_priors.py                     # vit-tiny and cct-2/3x2 at batch 128
    python benchmarks/attention_priors.py --models vit-tiny --rounds 5

One JSON line per model: the median images/s of full training steps (forward, backward, AdamW) on random
CIFAR-sized images under the precision and attention kernel `lowdata train` picks, for each variant in
interleaved rounds; the preset as it is (`baseline`) is measured in the same rounds. Mimetic initialisation
changes only the initial weights (its step costs the same by construction, measured anyway); GPSA replaces the
first blocks' attention (its positional attention computed once per step); sin-cos positions and average
pooling replace the learned table and the class token.
"""
from __future__ import annotations

import argparse
import json
import statistics

import torch
from model_speed import step_rate, step_setup  # benchmarks/ is the script's folder, so on its path

VARIANTS = {  # model -> variant -> model_args
    "vit-tiny": {"baseline": {}, "mimetic": {"attn_init": "mimetic"},
                 "sincos_avg": {"pos_embed": "sincos", "pool": "avg"},
                 "avg_gpsa_3": {"pool": "avg", "gpsa_blocks": 3}, "avg": {"pool": "avg"}},
    "cct-2/3x2": {"baseline": {}, "mimetic": {"attn_init": "mimetic"}, "gpsa_1": {"gpsa_blocks": 1},
                  "gpsa_2": {"gpsa_blocks": 2}},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="vit-tiny,cct-2/3x2")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0, help="timed steps per variant and round (at least 2)")
    args = parser.parse_args()

    from lowdata.models import create_model
    from lowdata.models.vit import use_fused_attention

    device, precision = step_setup()
    for name in args.models.split(","):
        generator = torch.Generator().manual_seed(0)
        images = torch.randn(args.batch_size, 3, 32, 32, generator=generator).to(device)
        labels = torch.randint(0, 10, (args.batch_size,), generator=generator).to(device)
        built = {}
        for variant, model_args in VARIANTS[name].items():
            torch.manual_seed(0)
            model = create_model(name, num_classes=10, in_chans=3, img_size=(32, 32), **model_args).to(device).train()
            use_fused_attention(model, precision.fused_attention(device))
            built[variant] = (model, torch.optim.AdamW(model.parameters(), lr=1e-3, fused=device.type == "cpu"))
        rates: dict[str, list[float]] = {variant: [] for variant in built}
        for _ in range(args.rounds):
            for variant, (model, optimizer) in built.items():
                rates[variant].append(step_rate(model, optimizer, images, labels, precision.autocast(device),
                                                args.seconds))
        median = {variant: statistics.median(values) for variant, values in rates.items()}
        print(json.dumps({
            "benchmark": "attention_priors", "model": name, "batch_size": args.batch_size, "device": str(device),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "precision": precision.name,
            "threads": torch.get_num_threads(), "rounds": args.rounds,
            "images_per_second": {variant: round(value, 1) for variant, value in median.items()},
            "over_baseline": {variant: round(value / median["baseline"], 3) for variant, value in median.items()},
        }), flush=True)


if __name__ == "__main__":
    main()
