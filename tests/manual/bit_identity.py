"""Bit-identity of training across a refactor: the same seed must give the same weights.

    python tests/manual/bit_identity.py OUT_DIR > hashes.txt

Trains, on digits with threads=1 for 2-3 epochs: resnet20 (also the teacher and guide of the others), cct-2/3x2
with pool distillation, vit-tiny-convstem with feature guidance, cct-2/3x2 with the EMA teacher (spelt both as
`pool_teacher: ema` and as `objective: ema-teacher`), and MAE and DINO pretraining; prints one SHA-256 per run
over its final checkpoint's tensors (model, EMA and method state), in a fixed order. Run it before and after a
change (e.g. `PYTHONPATH=/path/to/old/checkout/src` for before) and compare the two outputs with diff. Takes
about 3 minutes on 2 cores.
"""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from lowdata import pretrain, train

COMMON = dict(data="digits", labels=100, epochs=2, batch_size=32, threads=1, seed=3, eval_every=1)


def digest(run_dir: Path) -> str:
    """SHA-256 over every tensor of the run's last checkpoint, by name (the step counter aside)."""
    tensors = load_file(str(run_dir / "checkpoint" / "state.safetensors"))
    sha = hashlib.sha256()
    for name in sorted(tensors):
        sha.update(name.encode())
        sha.update(tensors[name].reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())
    return sha.hexdigest()


def main(out: Path) -> None:
    cnn = out / "resnet20"
    runs = {
        "resnet20": lambda d: train(out=str(d), model="resnet20", **COMMON),
        "cct-pool-distill": lambda d: train(out=str(d), model="cct-2/3x2", teacher=str(cnn), pool="all",
                                            pool_threshold=0.5, distill="soft", distill_alpha=0.7, **COMMON),
        "convstem-guide": lambda d: train(out=str(d), model="vit-tiny-convstem", guide=str(cnn), guide_weight=1.5,
                                          **COMMON),
        "cct-ema-pool_teacher": lambda d: train(out=str(d), model="cct-2/3x2", pool="all", pool_teacher="ema",
                                                method_args={"threshold": 0.6}, **COMMON),
        "cct-ema-objective": lambda d: train(out=str(d), model="cct-2/3x2", pool="all", objective="ema-teacher",
                                             method_args={"threshold": 0.6}, **COMMON),
        "mae": lambda d: pretrain(out=str(d), data="digits", model="vit-tiny", method="mae", epochs=2,
                                  batch_size=128, knn_memory=300, threads=1, seed=3),
        "dino": lambda d: pretrain(out=str(d), data="digits", model="cct-2/3x2", method="dino", epochs=2,
                                   batch_size=128, knn_memory=300, threads=1, seed=3,
                                   method_args={"local_crops": 2, "out_dim": 64}),
    }
    for name, run in runs.items():
        if not (out / name / "summary.json").is_file():
            run(out / name)
        print(name, digest(out / name), flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
