"""Decode cache: seconds to load an image-folder dataset the first time (decoding every file, the baseline)
and again from the cache, in one run. Goal: the cached load of CIFAR-10's 60,000 JPEGs under 1 s.

    python benchmarks/data_cache.py [--data cifar10:../shared/datasets/cifar10] [--repeats 5]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

DEFAULT = f"cifar10:{Path(__file__).resolve().parents[2] / 'shared' / 'datasets' / 'cifar10'}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=DEFAULT)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        os.environ["LOWDATA_CACHE"] = cache
        from lowdata.data import load_dataset

        started = time.perf_counter()
        dataset = load_dataset(args.data)
        decode_s = time.perf_counter() - started
        cached = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            load_dataset(args.data)
            cached.append(time.perf_counter() - started)
    median = statistics.median(cached)
    print(json.dumps({"benchmark": "data_cache", "data": args.data,
                      "images": len(dataset.train_images) + len(dataset.test_images),
                      "decode_seconds": round(decode_s, 3), "cached_seconds_median": round(median, 3),
                      "speedup": round(decode_s / median, 1), "goal_cached_under_1s": median < 1.0}))


if __name__ == "__main__":
    main()
