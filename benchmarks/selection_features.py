"""How useful a selection feature source is, read at each size: k-NN accuracy of its features on the training split.

    python benchmarks/selection_features.py --features lite0.pth --model efficientnet_lite0 --sizes 32,128
    python benchmarks/selection_features.py --features runs/dino --images 5000          # a lowdata run's encoder

`lowdata select` and `train selection=...` choose images by distances between these features, so a source whose
neighbours share no class chooses no better than pixels. One JSON line per size: the k-NN accuracy (k 20, cosine:
L2-normalised features) of half of a seeded sample of training images voting for the other half, the seconds the
features took (fp32 or the precision `lowdata train` picks, `--precision`), the threads and the CPU capability.
The features go through lowdata's own path (`selection.select.read_features`), cache included: give
`LOWDATA_CACHE` a fresh folder to time a first pass.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = f"cifar10:{ROOT.parent / 'shared' / 'datasets' / 'cifar10'}"


def knn_accuracy(features: np.ndarray, labels: np.ndarray, k: int = 20) -> float:
    """Accuracy of the second half's labels predicted by a k-NN vote of the first half (cosine distance)."""
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.preprocessing import normalize

    features, half = normalize(features), len(labels) // 2
    return float(KNeighborsClassifier(k).fit(features[:half], labels[:half]).score(features[half:], labels[half:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=DEFAULT)
    parser.add_argument("--features", required=True, help="what `lowdata select --features` takes")
    parser.add_argument("--model", default=None, help="the architecture of a weights file")
    parser.add_argument("--sizes", default="32,128", help="sides the images are read at, px")
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--precision", choices=("fp32", "auto"), default="auto")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from lowdata.data import load_dataset
    from lowdata.device import pick_precision
    from lowdata.selection.select import read_features

    dataset = load_dataset(args.data)
    sample = torch.randperm(len(dataset.train_labels), generator=torch.Generator().manual_seed(args.seed))[:args.images]
    images, labels = dataset.train_images[sample], dataset.train_labels[sample].numpy()
    precision = pick_precision("auto" if args.precision == "auto" else "fp32", torch.device("cpu"))
    autocast = precision.autocast(torch.device("cpu"))
    for size in [int(value) for value in args.sizes.split(",")]:
        start = time.perf_counter()
        features, _ = read_features(args.features, images, dataset.info, args.seed, args.model, False, False,
                                    size, autocast)
        seconds = time.perf_counter() - start
        print(json.dumps({"features": args.features, "size": size, "images": len(labels),
                          "dims": int(features.shape[1]), "knn_acc": round(knn_accuracy(features, labels), 4),
                          "seconds": round(seconds, 1), "precision": precision.name,
                          "threads": torch.get_num_threads(),
                          "cpu_capability": torch.backends.cpu.get_cpu_capability()}), flush=True)


if __name__ == "__main__":
    main()
