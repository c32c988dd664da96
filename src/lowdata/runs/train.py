"""`lowdata train`: one model trained on a label budget and evaluated on the test split. What differs from
other kinds of run: the labelled subset, the model and its initial weights, and the objective (supervised or
distillation from a teacher)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lowdata.config import TrainConfig
from lowdata.errors import UsageError, shown
from lowdata.runs import compiling
from lowdata.runs.export import write_run_model
from lowdata.runs.skeleton import Run, execute
from lowdata.training.ema import build_ema


def train(config: TrainConfig | None = None, *, resume: bool = False, stop_after_epoch: int | None = None,
          **settings: Any) -> dict[str, Any] | None:
    """One training run (self-training rounds, runs/rounds.py, are several of these)."""
    return execute(train_kind, TrainConfig, config, settings, resume, stop_after_epoch, default_out,
                   "a training run")


def train_kind(run: Run, stop_after_epoch: int | None) -> dict[str, Any] | None:
    import torch

    from lowdata.augment import Normalize, build_policy
    from lowdata.data import load_dataset, select_budget
    from lowdata.data.budget import pool_subset
    from lowdata.device import inference_autocast
    from lowdata.metrics import classification_evaluator, per_class_accuracy
    from lowdata.models import count_params
    from lowdata.models.factory import grid_note
    from lowdata.models.resolution import check_low_res, flops_ratio
    from lowdata.models.vit import use_fused_attention
    from lowdata.runs.cost import example_image, training_cost
    from lowdata.objectives import TERMS, MethodData, build_objective
    from lowdata.training.loop import LoopData

    config = run.config
    if config.init and not run.resume:  # refused before the data loads (minutes, on a large folder)
        from lowdata.models.sources import check_source

        check_source(config.init)
    dataset = load_dataset(config.data, config.image_size, config.split_seed, classes=config.classes)
    info = dataset.info
    budget = select_budget(dataset.train_labels, info.num_classes, config.seed, total=config.labels,
                           per_class=config.labels_per_class, val_fraction=config.val_fraction,
                           class_names=info.classes)
    if config.selection:  # the same number of images, chosen by a strategy (labels read only once chosen)
        from lowdata.selection.select import chosen_budget

        if config.val_fraction:
            raise UsageError("selection= chooses the labelled images themselves; set val_fraction=0 with it")
        budget = chosen_budget(dataset, len(budget.labelled), config.selection, config.selection_features,
                               config.seed, config.selection_model, config.selection_size, run.autocast)
    policy = build_policy(config.augment, info, **config.augment_args)
    # a resumed run keeps its saved model_args (one from before sized presets has no patch size recorded)
    given_args = config.model_args
    config = run.config = resolved(config, None if run.resume else info.image_size)
    torch.manual_seed(config.seed)  # model initialisation (the same on every rank) and stochastic depth
    model = build_model(config, info)
    # a resumed run's weights are in its checkpoint
    init_report = prepare_init(config, model, load=not run.resume, classes=info.classes)
    model.to(run.device)
    if config.patch_whitening and not run.resume:  # a resumed run's weights are in its checkpoint
        init_report.append(patch_whiten(config, model, dataset.train_images[budget.labelled], info, run.device))
    use_fused_attention(model, run.precision.fused_attention(run.device))
    pool = pool_subset(budget.pool, config.pool, config.seed)
    # the pool's images only, for the method that reads them: their labels stay in `dataset`
    method_data = MethodData(dataset, dataset.train_images[pool] if len(pool) else None)
    # with a teacher and distill=none, DeiT's pass-through: the label loss alone, the teacher still reported
    objective, teacher_summary = build_objective(config.objective, config, model, method_data, run.device,
                                                 run.autocast)
    if config.low_res_size:  # refused before a step is taken
        terms = [name for name in config.sections if name in TERMS]
        check_low_res(model, config.low_res_size, info.image_size, terms, config.low_res_epochs())
    eval_sets = {"test": (dataset.test_images, dataset.test_labels)}
    if len(budget.val):
        eval_sets["val"] = (dataset.train_images[budget.val], dataset.train_labels[budget.val])
    # evaluated as `lowdata eval` evaluates (fp32): the summary's accuracy is the one it gives
    evaluator = classification_evaluator(eval_sets, Normalize(info).to(run.device), run.device,
                                         inference_autocast(run.device))
    if config.tta:  # the model evaluated on logits averaged over fixed views (augment/tta.py)
        evaluator = with_views(evaluator, info.hflip)
    data = LoopData(dataset.train_images[budget.labelled], dataset.train_labels[budget.labelled])
    notes = [data_note(info, budget, len(dataset.train_labels), len(pool), len(dataset.test_labels))]
    if not run.resume and (grid := grid_note(config.model, given_args, config.model_args, info.image_size)):
        notes.append(grid)
    if config.selection:
        from lowdata.selection.select import selection_note

        notes.append(selection_note(config, info, dataset.train_labels[budget.labelled]))
    if config.low_res_size:
        notes.append(f"progressive resolution: epochs 1-{config.low_res_epochs()} train on images "
                     f"{config.low_res_size} px high, the rest and every evaluation at {info.image_size[0]} px")
    notes += [f"augment: {note}" for note in policy.notes] + [f"init: {line}" for line in init_report]
    feed = getattr(objective, "feed", None)
    if feed:
        notes.append(f"pool: {len(pool):,} unlabelled images, {feed.ratio:g} per labelled image a step, taught by "
                     f"{objective.pool_teacher}; student view {feed.student_view.name}, teacher view basic")
    compile_reason = compiling.resolve(run, objective, config.epochs * len(data.train_images))
    config = run.config
    if compile_reason != compiling.UNMEASURED:  # the common case needs no line
        notes.append(f"compile: {compile_reason}")
    run.write_config(notes)
    example = example_image(info, run.device)
    cost_parts = objective.cost_parts(example)  # counted before any compile
    low_res = None  # (the share of the epochs at a lower resolution, the model's FLOPs there over full size's)
    if config.low_res_size:
        low_res = (config.low_res_epochs() / config.epochs, flops_ratio(model, config.low_res_size, example))
    ema = build_ema(model, config.ema_decay)
    result = run.fit(objective, data, evaluator, policy, ema, stop_after_epoch)
    if result is None:
        return None
    compiling.remember(run, objective, result)
    write_confusion(run, result["test_confusion"], info.classes)
    if run.process.is_main:  # before the summary, which marks the run finished
        write_run_model(ema.module, info, run.run_dir)
    return run.finish(result, {
        "test_acc": result["test_acc"], "test_loss": result["test_loss"], "val_acc": result.get("val_acc"),
        "test_top5_acc": result.get("test_top5_acc"), "test_images": len(dataset.test_images),
        "per_class_acc": per_class_accuracy(result["test_confusion"], info.classes),
        "labels": len(budget.labelled), "val_labels": len(budget.val), "unlabelled_pool": len(budget.pool),
        "dataset": info.name, "num_classes": info.num_classes, "classes": list(info.classes), "model": config.model,
        # what feeds the model without the training data (lowdata predict): the training split's statistics
        "input": {"channels": info.channels, "image_size": list(info.image_size), "mean": list(info.mean),
                  "std": list(info.std), "depth": info.depth, "hflip": info.hflip},
        # the cell's budget and how well it fit its own labels: tells data-hungry from under-trained
        "params": count_params(model), "epochs": config.epochs, "steps": result["step"],
        "batch_size": result.get("batch_size"), "steps_per_epoch": result.get("steps_per_epoch"),
        "train_acc": result.get("train_acc"), "seed": config.seed,
        **teacher_summary, "init": config.init, "init_report": init_report, "linear_probe": config.linear_probe,
        "layer_decay": config.layer_decay, "augment": policy.describe(), "augment_notes": policy.notes,
        "repeated_aug": config.repeated_aug, "pool_images": len(pool), "rounds": config.rounds, "tta": config.tta,
        "pool_images_read": result.get("pool_images_read", 0),  # draws from the pool, repeats included
        "compile": config.compile, "compile_reason": compile_reason,
        "low_res": None if low_res is None else {"size": config.low_res_size, "epochs": config.low_res_epochs(),
                                                 "flops_ratio": round(low_res[1], 4)},
        **training_cost(cost_parts, result, run.device, low_res),
    })


def build_model(config: TrainConfig, info):
    """The model a run trains, for data described by `info` (its initial weights from the torch seed)."""
    from lowdata.models import create_model

    return create_model(config.model, num_classes=info.num_classes, in_chans=info.channels, img_size=info.image_size,
                        drop_path=config.drop_path, **config.model_args)


def patch_whiten(config: TrainConfig, model, images, info, device) -> str:
    """The first convolution initialised from the labelled images' patches (models/whitening.py)."""
    from lowdata.augment import Normalize
    from lowdata.models.whitening import whiten_first_conv

    return whiten_first_conv(model, Normalize(info).to(device)(images.to(device)))


def with_views(evaluator, flip: bool):
    from lowdata.augment.tta import ViewAverage

    return lambda model: evaluator(ViewAverage(model, flip))


def write_confusion(run: Run, confusion: list[list[int]], classes) -> None:
    """confusion.json and confusion.png beside the run (rank 0)."""
    from lowdata.metrics import confusion_png
    from lowdata.io import atomic_path, atomic_write_json

    if not run.process.is_main:
        return
    atomic_write_json(run.run_dir / "confusion.json", {"classes": list(classes), "rows_true_columns_predicted":
                                                       confusion})
    with atomic_path(run.run_dir / "confusion.png") as tmp:
        tmp.write_bytes(confusion_png(confusion, list(classes)))


def data_note(info, budget, train_images: int, pool_images: int, test_images: int) -> str:
    """What the run trains and tests on, said at its start (the test split may be a hold-out of the folder)."""
    besides = [f"{len(budget.val):,} held out for validation"] if len(budget.val) else []
    besides += [f"{pool_images:,} unlabelled in the pool"] if pool_images else []
    return (f"data: {info.name}, {info.num_classes} classes, {info.image_size[0]}x{info.image_size[1]}x"
            f"{info.channels}: training on {len(budget.labelled):,} labelled of {train_images:,} training images"
            f"{''.join(f', {part}' for part in besides)}; testing on {test_images:,} images")


def resolved(config: TrainConfig, img_size: tuple[int, int] | None = None) -> TrainConfig:
    """Defaults that depend on other settings (and on the data's image size: a ViT preset's token grid),
    resolved once and saved resolved, so the run describes itself."""
    from lowdata.models import default_drop_path, default_lr, sized_model_args

    if img_size is not None:
        config = config.replace(model_args=sized_model_args(config.model, config.model_args, img_size))
    if config.lr is None:
        config = config.replace(lr=default_lr(config.model))
    config = resolved_objective(config)
    if config.patch_whitening and config.init:
        raise UsageError("patch_whitening initialises a model trained from scratch; --init already gives its weights: "
                         "drop one")
    if config.linear_probe and config.drop_path is None:
        config = config.replace(drop_path=0.0)  # frozen features take no stochastic depth
    if config.drop_path is None:
        config = config.replace(drop_path=default_drop_path(config.model))
    return config


def resolved_objective(config: TrainConfig) -> TrainConfig:
    """The method (distill with a teacher, else supervised) and its section and its terms' complete."""
    from lowdata.objectives import resolve_sections

    if config.objective is None:
        config = config.replace(objective="distill" if config.teacher else "supervised")
    if config.teacher and config.objective == "supervised":
        raise UsageError("objective=supervised reads no teacher: drop --teacher, or use objective=distill")
    if config.objective == "distill" and not config.teacher:
        raise UsageError("objective=distill needs a teacher: --teacher RUN_DIR (a finished lowdata run, e.g. a "
                         "resnet20 trained on the same labels)")
    return resolve_sections(config, config.objective)


def prepare_init(config: TrainConfig, model, load: bool = True, classes: Sequence[str] | None = None) -> list[str]:
    """Weights from `init` and the linear-probe freeze, each reported in a line."""
    from lowdata.models.weights import freeze_all_but_head, load_init

    report = load_init(model, config.init, config.pretrained, classes) if config.init and load else []
    chosen = {key: config.model_args[key] for key in ("attn_init",) if config.model_args.get(key, "default") != "default"}
    if config.init and load and chosen:  # a prior at initialisation: --init's weights replace it
        report.append(f"{', '.join(f'{k}={v}' for k, v in chosen.items())} skipped: --init gives the weights")
    if config.freeze_epochs and config.linear_probe:
        raise UsageError("--linear-probe freezes the features for the whole run; drop freeze_epochs or the probe")
    if config.linear_probe:
        if not config.init:
            raise UsageError("--linear-probe trains a head on frozen features: give the features with --init RUN_DIR")
        trainable = freeze_all_but_head(model)
        report.append(f"linear probe: only {', '.join(trainable)} train")
    return report


def default_out(config: TrainConfig) -> str:
    budget = config.labels or (f"{config.labels_per_class}pc" if config.labels_per_class else "all")
    name = config.data.split(":")[0].rstrip("/").split("/")[-1]
    model = config.model.replace("/", "_")  # cct-7/3x1 is one folder, not two
    return f"runs/{model}-{name}-{budget}-s{config.seed}"
