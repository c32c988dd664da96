"""Whether a training run compiles its model (torch.compile), decided from what this machine has measured.

Compiling pays on some machines and models and costs on others: `benchmarks/compile_gain.py` measured on a
2-core AVX512 EPYC (bf16) cct-2/3x2 compiled at 0.56x its eager rate, vit-tiny 0.92x and the pooled step 0.72x,
after 31-52 s of compiling (docs/performance.md#compile), while the last round measured vit-tiny +9 % on an
AVX-512 BF16 EPYC and 0.94x on an AMX Xeon; GPUs usually gain. So no fixed default is right. `compile=auto`
(the default) compiles only where a run of the same setup here has measured the compiled step faster than the
eager one by MIN_SPEEDUP, and this run is long enough that the time saved repays the compile REPAY times over;
unmeasured, it runs eager. Every run of two epochs or more records what it
measured -- its steady rate (the epochs after its first, labelled images/s) eager or compiled, and a compiled
run's compile seconds (its first epoch over a steady one) -- keyed by machine, torch version, device, model,
method, batch size, precision and threads, in the cache folder beside the precision probe's answer. One run
with `compile=true` (or the benchmark) gives auto its measurement; `true` and `false` force the choice.

Compiled code is kept in lowdata's cache folder (`<cache>/inductor`, unless TORCHINDUCTOR_CACHE_DIR is set),
so a study's cells and later runs compile from a warm cache (seconds, not a minute), and it survives the
temporary folder's clean-ups.
"""
from __future__ import annotations

import json
import os
import statistics
from pathlib import Path

import torch

from lowdata.device import machine_key
from lowdata.io import cache_root, read_cache, update_cache

MIN_SPEEDUP = 1.05  # the compiled step must beat the eager one by this much
REPAY = 2.0  # the seconds a compile saves over the run must be this many times its compile seconds
CACHE_NAME = "compile-rates.json"
UNMEASURED = "eager: compiling is not measured for this setup here (one run with compile=true measures it)"


def setup_key(model: str, method: str, batch_size: int, precision: str, device: torch.device, threads: int) -> str:
    """What a measured rate holds for: this machine and torch, the device, the step's setup, the threads."""
    return f"{machine_key(device)}|{model}|{method}|batch {batch_size}|{precision}|{threads} threads"


def choose(asked: bool | str, key: str, planned_images: int, cache: Path | None = None) -> tuple[bool, str]:
    """Compile or not, and why: `asked` true/false decides; `auto` reads the measured rates for `key` and the
    run's planned labelled images."""
    if asked is True or asked is False:
        return asked, f"{'compiled' if asked else 'eager'}, as asked (compile={str(asked).lower()})"
    known = read(cache).get(key, {})
    eager, compiled, seconds = known.get("eager"), known.get("compiled"), known.get("compile_seconds")
    if not (eager and compiled and seconds is not None):
        return False, UNMEASURED
    speedup = compiled / eager
    if speedup < MIN_SPEEDUP:
        return False, f"eager: compiled ran {speedup:.2f}x the eager rate for this setup here"
    saved = planned_images / eager * (1 - 1 / speedup)
    if saved < REPAY * seconds:
        return False, (f"eager: compiled runs {speedup:.2f}x faster here, but this run would save {saved:.0f} s "
                       f"for {seconds:.0f} s of compiling")
    return True, f"compiled: {speedup:.2f}x faster here, saving ~{saved:.0f} s for {seconds:.0f} s of compiling"


def record(key: str, compiled: bool, epochs: list[dict], cache: Path | None = None) -> None:
    """Keep what a run of two epochs or more measured: its steady rate, and a compiled run's compile seconds."""
    if len(epochs) < 2:
        return
    steady_seconds = statistics.median(e["epoch_seconds"] for e in epochs[1:])
    rate = round(statistics.median(e["images_per_second"] for e in epochs[1:]), 2)

    def add(rates: dict) -> None:
        entry = rates.setdefault(key, {})
        entry["compiled" if compiled else "eager"] = rate
        if compiled:
            entry["compile_seconds"] = round(max(epochs[0]["epoch_seconds"] - steady_seconds, 0.0), 2)

    update_cache(cache or cache_root() / CACHE_NAME, add)  # a read-only cache leaves auto without this figure


def share_inductor_cache() -> None:
    """Compiled code in lowdata's cache folder, read by every run and study cell that uses the same folder (on
    shared storage, Ray's nodes too), unless TORCHINDUCTOR_CACHE_DIR names another place. torch writes its own
    default (a per-user temporary folder) into the variable once imported, so that value counts as unset."""
    try:
        from torch._inductor.runtime.cache_dir_utils import default_cache_dir
        torch_default = os.path.abspath(default_cache_dir())
    except ImportError:  # a torch without it: only an unset variable is ours to set
        torch_default = None
    if os.environ.get("TORCHINDUCTOR_CACHE_DIR") in (None, torch_default):
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(cache_root() / "inductor")


def read(cache: Path | None = None) -> dict:
    return read_cache(cache or cache_root() / CACHE_NAME)


def method_name(objective) -> str:
    """The step's kind in a setup key: the objective, whether it reads the pool, and its terms."""
    return objective.setup_name()


def resolve(run, objective, planned_images: int) -> str:
    """Decide `run.config.compile` (true or false, saved so that a resume keeps it); returns the reason."""
    import dataclasses

    config = run.config
    if run.resume:  # decided at the run's start and saved resolved: the numbers depend on it
        return f"{'compiled' if config.compile else 'eager'}, as the run started"
    key = setup_key(config.model, method_name(objective), config.batch_size, run.precision.name, run.device,
                    run.cores.fixed or run.cores.share())
    compiled, reason = choose(config.compile, key, planned_images)
    run.config = dataclasses.replace(config, compile=compiled)
    if compiled:
        share_inductor_cache()
    return reason


def remember(run, objective, result: dict) -> None:
    """Record the finished run's rates for `auto` (a run in one session only: a resumed one mixes sessions)."""
    if run.resume or not run.process.is_main:
        return
    metrics = run.run_dir / "metrics.jsonl"
    epochs = [json.loads(line) for line in metrics.read_text().splitlines()] if metrics.exists() else []
    key = setup_key(run.config.model, method_name(objective), run.config.batch_size, run.precision.name,
                    run.device, result["threads"])
    record(key, run.config.compile, [e for e in epochs if "epoch_seconds" in e])
