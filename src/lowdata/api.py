"""The Python API: what the CLI calls, and what a notebook calls with the same settings.

    from lowdata import train
    summary = train(data="cifar10:~/data/cifar10", labels=1000, model="vit-tiny", epochs=60, out="runs/vit")
"""
from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from lowdata.config import TrainConfig, build, field_names, save_yaml
from lowdata.device import pick_device, pick_precision
from lowdata.errors import UsageError


def train(config: TrainConfig | None = None, *, resume: bool = False, stop_after_epoch: int | None = None,
          **settings: Any) -> dict[str, Any] | None:
    """Train and evaluate one model; returns the run's summary (also written to `OUT/summary.json`).

    `settings` are TrainConfig fields and override `config`. With `resume=True` the run in `out` continues
    from its last checkpoint under its saved config. `stop_after_epoch` ends the run early (returns None)
    after that epoch's checkpoint, as a preemptible scheduler would.
    """
    from lowdata.cores import CoreShare

    config = build(TrainConfig, {**(asdict(config) if config else {}), **settings})
    # registered before the data load, so that workers started together count each other (cores.py)
    with CoreShare(config.threads) as cores:
        return run_training(config, set(settings), resume, stop_after_epoch, cores)


def run_training(config: TrainConfig, explicit: set[str], resume: bool, stop_after_epoch: int | None,
                 cores) -> dict[str, Any] | None:
    import torch

    from lowdata.augment import Normalize, build_policy
    from lowdata.data import load_dataset, select_budget
    from lowdata.data.datasets import keep_classes
    from lowdata.evaluate import classification_evaluator
    from lowdata.models import count_params, create_model, default_lr
    from lowdata.models.vit import use_fused_attention
    from lowdata.objectives import build_objective
    from lowdata.training.distributed import current_process, process_device
    from lowdata.training.loop import LoopData, LoopSettings, fit
    from lowdata.rundir import checkpoint_dir, read_config

    run_dir = Path(config.out or default_out(config))
    if resume:
        config = resumed_config(read_config(run_dir), config, explicit=explicit)
    elif checkpoint_dir(run_dir) is not None:
        raise UsageError(f"{run_dir} already holds a training run; pass --resume to continue it, or choose another --out")
    config = config.replace(out=str(run_dir))

    dataset = keep_classes(load_dataset(config.data, config.image_size, config.split_seed), config.classes)
    info = dataset.info
    budget = select_budget(dataset.train_labels, info.num_classes, config.seed, total=config.labels,
                           per_class=config.labels_per_class, val_fraction=config.val_fraction)
    policy = build_policy(config.augment, info, **config.augment_args)
    if config.lr is None:
        config = config.replace(lr=default_lr(config.model))  # saved resolved, so the run describes itself
    if config.distill is None:  # resolved once, here; saved resolved
        config = config.replace(distill="hard" if config.teacher else "none")
    if config.distill != "none" and not config.teacher:
        raise UsageError(f"distill={config.distill} needs a teacher: --teacher RUN_DIR (a finished lowdata run, "
                         "e.g. a resnet20 trained on the same labels)")
    if config.linear_probe and config.drop_path is None:
        config = config.replace(drop_path=0.0)  # frozen features take no stochastic depth
    process = current_process()  # one process, or this one's place under torchrun
    device = process_device(process, pick_device(config.device))
    precision = pick_precision(config.precision, device)
    torch.manual_seed(config.seed)  # model initialisation (the same on every rank) and stochastic depth
    model = create_model(config.model, num_classes=info.num_classes, in_chans=info.channels,
                         img_size=info.image_size, drop_path=config.drop_path, distilled=config.dist_token,
                         **config.model_args)
    # a resumed run's weights are in its checkpoint
    init_report = prepare_init(config, model, load=not resume, classes=info.classes)
    model.to(device)
    use_fused_attention(model, precision.fused_attention(device))
    autocast = precision.autocast(device)
    # with a teacher and distill=none, DeiT's pass-through: the label loss alone, the teacher still reported
    objective, teacher_summary = build_objective("distill" if config.teacher else "supervised", config, model,
                                                 dataset, device, autocast)
    eval_sets = {"test": (dataset.test_images, dataset.test_labels)}
    if len(budget.val):
        eval_sets["val"] = (dataset.train_images[budget.val], dataset.train_labels[budget.val])
    data = LoopData(dataset.train_images[budget.labelled], dataset.train_labels[budget.labelled])
    evaluator = classification_evaluator(eval_sets, Normalize(info).to(device), device, autocast)
    generators = {"order": torch.Generator().manual_seed(stream_seed(config.seed, "order")),  # indexes CPU data
                  "augment": torch.Generator(device=device).manual_seed(stream_seed(config.seed, "augment"))}
    ema = build_ema(model, config.ema_decay)

    run_dir.mkdir(parents=True, exist_ok=True)
    if process.is_main:
        save_yaml(config, run_dir / "config.yaml")
        notes = [f"precision: {precision.name} ({precision.reason})"] + [f"augment: {note}" for note in policy.notes]
        for note in notes + [f"init: {line}" for line in init_report]:
            print(f"lowdata: {note}", file=sys.stderr)
    started = time.time()
    result = fit(objective, data, loop_settings(config, LoopSettings), policy.to(device), evaluator, device,
                 autocast, ema, generators, run_dir, asdict(config), resume=resume, stop_after_epoch=stop_after_epoch,
                 process=process, scaler=precision.grad_scaler(device), cores=cores)
    if result is None:
        return None
    summary = {
        "test_acc": result["test_acc"], "test_loss": result["test_loss"], "val_acc": result.get("val_acc"),
        "labels": len(budget.labelled), "val_labels": len(budget.val), "unlabelled_pool": len(budget.pool),
        "dataset": info.name, "num_classes": info.num_classes, "classes": list(info.classes), "model": config.model,
        "params": count_params(model), "epochs": config.epochs, "seed": config.seed,
        **teacher_summary, "init": config.init, "init_report": init_report, "linear_probe": config.linear_probe,
        "layer_decay": config.layer_decay, "augment": policy.describe(), "augment_notes": policy.notes,
        "repeated_aug": config.repeated_aug,
        "train_seconds": round(result["train_seconds"], 2), "eval_seconds": round(result["eval_seconds"], 2),
        "checkpoint_seconds": round(result["checkpoint_seconds"], 2),
        "images_per_second": round(result["images_per_second"], 1),
        "wall_seconds_this_session": round(time.time() - started, 2), "device": str(device),
        "precision": precision.name, "precision_reason": precision.reason, "threads": result["threads"], "git_commit": git_commit(), "torch": torch.__version__,
        "processes": process.world_size,
    }
    from lowdata.io import atomic_write_json

    if process.is_main:
        atomic_write_json(run_dir / "summary.json", summary)
    return summary


def run_study(out: str | Path, data: str | None = None, sizes: list[int] | None = None,
              sizes_per_class: list[int] | None = None, recipes: list[str] | None = None,
              seeds: list[int] | None = None, budget_epochs: int | None = None, budget_steps: int | None = None,
              settings: dict[str, Any] | None = None, recipes_file: str | None = None, preset: str | None = None,
              worker: bool = False, claim_timeout: float = 900.0,
              max_cells: int | None = None) -> dict[str, Any] | None:
    """Run (or join, or resume) a data-hunger study in `out`; returns the fits once every cell is done.

    `settings` are TrainConfig fields applied to every cell, under each recipe's own settings. With
    `worker=True` and no plan arguments, the process joins the plan already in `out`.
    """
    from lowdata.study.check import check_units
    from lowdata.study.plan import load_plan, make_plan, save_or_check_plan
    from lowdata.study.presets import preset as preset_defaults
    from lowdata.study.recipes import load_recipes, pick
    from lowdata.study.report import build_report
    from lowdata.study.run import is_done, run_cells

    out_dir = Path(out)
    defaults = preset_defaults(preset)
    asked = [data, sizes, sizes_per_class, recipes, seeds, budget_epochs, budget_steps, settings, preset]
    if worker and all(value is None for value in asked):
        plan = load_plan(out_dir)
    else:
        data = data or defaults.get("data")
        if data is None:
            raise UsageError("a study needs --data (or a --preset); e.g. --data cifar10:~/data/cifar10")
        if sizes is not None and sizes_per_class is not None:
            raise UsageError("give --sizes or --sizes-per-class, not both")
        if budget_epochs is None and budget_steps is None:
            budget_epochs, budget_steps = defaults.get("budget_epochs"), defaults.get("budget_steps")
        from lowdata.data import load_dataset

        base = {**defaults.get("settings", {}), **(settings or {})}
        build(TrainConfig, base)  # reject unknown settings before loading anything
        from lowdata.data.datasets import keep_classes

        whole = load_dataset(data, base.get("image_size"), base.get("split_seed", 0))
        dataset = keep_classes(whole, base.get("classes"))
        if sizes_per_class is not None:
            sizes = [k * dataset.info.num_classes for k in sizes_per_class]
        known = load_recipes(recipes_file)
        plan = make_plan(data, sizes or defaults.get("sizes") or [], pick(known, recipes or defaults.get("recipes")
                         or ["cnn", "vit"]), seeds or defaults.get("seeds") or [0], len(dataset.train_images),
                         budget_epochs, budget_steps, base, available=known)
        check_units(plan, whole)
        save_or_check_plan(plan, out_dir)
    run_cells(plan, out_dir, claim_timeout=claim_timeout, max_cells=max_cells)
    if not all(is_done(out_dir, cell) for cell in plan.cells):
        return None
    return build_report(out_dir)


def evaluate_run(checkpoint: str | Path, data: str | None = None) -> dict[str, Any]:
    """Test accuracy of a finished run's weights, on its own dataset's test split or on `data`'s."""
    from lowdata.augment import Normalize
    from lowdata.data import load_dataset
    from lowdata.data.datasets import keep_classes
    from lowdata.evaluate import evaluate
    from lowdata.models.loading import load_trained_model
    from lowdata.rundir import read_config

    run_dir = Path(checkpoint)
    config = build(TrainConfig, read_config(run_dir))
    dataset = keep_classes(load_dataset(data or config.data, config.image_size, config.split_seed), config.classes)
    info = dataset.info
    device = pick_device(config.device)
    autocast = pick_precision(config.precision, device).autocast(device)
    model, _ = load_trained_model(run_dir, info.num_classes, info.channels, info.image_size, what="run")
    model.to(device)
    result = evaluate(model, dataset.test_images, dataset.test_labels, Normalize(info).to(device), device, autocast)
    return {"test_acc": result["acc"], "test_loss": result["loss"], "test_images": len(dataset.test_images),
            "dataset": info.name, "model": config.model, "checkpoint": str(run_dir)}


def prepare_init(config: TrainConfig, model, load: bool = True, classes: Sequence[str] | None = None) -> list[str]:
    """Weights from `init` and the linear-probe freeze, each reported in a line."""
    from lowdata.models.weights import freeze_all_but_head, load_init

    report = load_init(model, config.init, config.pretrained, classes) if config.init and load else []
    if config.freeze_epochs and config.linear_probe:
        raise UsageError("--linear-probe freezes the features for the whole run; drop freeze_epochs or the probe")
    if config.linear_probe:
        if not config.init:
            raise UsageError("--linear-probe trains a head on frozen features: give the features with --init RUN_DIR")
        trainable = freeze_all_but_head(model)
        report.append(f"linear probe: only {', '.join(trainable)} train")
    return report


def resumed_config(saved: dict[str, Any], given: TrainConfig, explicit: set[str]) -> TrainConfig:
    """The saved config wins; a setting the caller gave explicitly must agree with it."""
    saved_config = build(TrainConfig, saved)
    clashes = [f"{key}={getattr(given, key)!r} (run has {getattr(saved_config, key)!r})" for key in sorted(explicit)
               if key in field_names() and key != "out" and getattr(given, key) != getattr(saved_config, key)]
    if clashes:
        raise UsageError(f"--resume continues a run under its saved settings, but these differ: {', '.join(clashes)}; "
                         "drop them or start a new run with another --out")
    return saved_config


def loop_settings(config: TrainConfig, cls: type):
    return cls(**{name: getattr(config, name) for name in cls.__dataclass_fields__ if hasattr(config, name)})


def default_out(config: TrainConfig) -> str:
    budget = config.labels or (f"{config.labels_per_class}pc" if config.labels_per_class else "all")
    name = config.data.split(":")[0].rstrip("/").split("/")[-1]
    return f"runs/{config.model}-{name}-{budget}-s{config.seed}"


def build_ema(model, decay: float):
    from lowdata.training.loop import NoEma

    if decay <= 0:
        return NoEma(model)
    if decay >= 1:
        raise UsageError(f"ema_decay must be below 1 (e.g. 0.999), got {decay}")
    from timm.utils import ModelEmaV3

    # warm-up: small-data runs are short, and a fixed 0.999 average over a few hundred steps is mostly init
    return ModelEmaV3(model, decay=decay, use_warmup=True)


def stream_seed(seed: int, stream: str) -> int:
    """Independent, reproducible seeds for each random stream of one run."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{stream}".encode()).digest()[:8], "little") & (2**63 - 1)


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None
