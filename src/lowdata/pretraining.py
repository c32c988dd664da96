"""`lowdata pretrain`: self-supervised pretraining of an encoder on every training image, labels unread.

    from lowdata.pretraining import pretrain
    summary = pretrain(data="cifar10:~/data/cifar10", method="mae", epochs=100, out="runs/mae")
    # then: lowdata train --data ... --labels 1000 --init runs/mae --layer-decay 0.75
"""
from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lowdata.config import build, save_yaml
from lowdata.errors import UsageError
from lowdata.io import atomic_write_json


@dataclass(frozen=True)
class PretrainConfig:
    data: str = "digits"
    split_seed: int = 0
    image_size: int | None = None
    method: str = "mae"
    method_args: dict = field(default_factory=dict)  # the method's own settings, e.g. decoder_depth=4
    mask_ratio: float = 0.75
    norm_pix_loss: bool = True
    model: str = "vit-tiny"
    model_args: dict = field(default_factory=dict)
    drop_path: float = 0.0  # MAE pretrains without stochastic depth
    augment: str = "basic"
    augment_args: dict = field(default_factory=dict)
    epochs: int = 100
    batch_size: int = 256
    lr: float = 1.5e-3  # MAE: 1.5e-4 x batch/256 at ImageNet scale; small data and short runs want more
    min_lr: float = 1e-5
    weight_decay: float = 0.05
    warmup_epochs: float = 5.0
    clip_grad: float | None = None
    precision: str = "auto"  # auto (by what the device runs natively), bf16, fp16 or fp32
    seed: int = 0
    device: str = "auto"
    threads: int | None = None  # CPU threads; None = the usable cores shared among lowdata's processes here
    eval_every: int = 5  # k-NN monitor
    checkpoint_minutes: float = 1.0  # at most this long between checkpoints (0 = after every epoch)
    knn_memory: int = 5000  # labelled training images the k-NN monitor votes with (balanced, seeded)
    knn_k: int = 20
    out: str | None = None

    def replace(self, **changes: Any) -> "PretrainConfig":
        import dataclasses

        return dataclasses.replace(self, **changes)


def pretrain(config: PretrainConfig | None = None, *, resume: bool = False, stop_after_epoch: int | None = None,
             **settings: Any) -> dict[str, Any] | None:
    from lowdata.cores import CoreShare

    config = build(PretrainConfig, {**(asdict(config) if config else {}), **settings})
    with CoreShare(config.threads) as cores:  # registered before the data load (cores.py)
        return run_pretraining(config, resume, stop_after_epoch, cores)


def run_pretraining(config: PretrainConfig, resume: bool, stop_after_epoch: int | None,
                    cores) -> dict[str, Any] | None:
    import torch

    from lowdata.api import stream_seed
    from lowdata.device import pick_device, pick_precision
    from lowdata.augment import Normalize, build_policy
    from lowdata.augment.mixing import NoMixing
    from lowdata.data import load_dataset, select_budget
    from lowdata.evaluate import knn_evaluator
    from lowdata.models import count_params, create_model
    from lowdata.models.vit import use_fused_attention
    from lowdata.objectives.pretrain import PRETRAIN_METHODS, load_methods
    from lowdata.training.loop import LoopData, LoopSettings, NoEma, fit
    from lowdata.rundir import checkpoint_dir, read_config, read_json

    run_dir = Path(config.out or f"runs/{config.method}-{config.model}-{config.data.split(':')[0]}-s{config.seed}")
    if resume:
        config = build(PretrainConfig, {**read_config(run_dir), "out": str(run_dir)})
    elif checkpoint_dir(run_dir) is not None:
        raise UsageError(f"{run_dir} already holds a run; pass --resume to continue it, or choose another --out")
    config = config.replace(out=str(run_dir))
    load_methods()
    method = PRETRAIN_METHODS.get(config.method)

    dataset = load_dataset(config.data, config.image_size, config.split_seed)
    info = dataset.info
    policy = build_policy(config.augment, info, **config.augment_args)
    if not isinstance(policy.mixing, NoMixing):
        raise UsageError(f"augmentation {config.augment!r} mixes labels; pretraining reads no labels: use basic")
    from lowdata.training.distributed import current_process, process_device

    process = current_process()
    device = process_device(process, pick_device(config.device))
    precision = pick_precision(config.precision, device)
    torch.manual_seed(config.seed)
    encoder = create_model(config.model, num_classes=0, in_chans=info.channels, img_size=info.image_size,
                           drop_path=config.drop_path, **config.model_args)
    generators = {"order": torch.Generator().manual_seed(stream_seed(config.seed, "order")),
                  "augment": torch.Generator(device=device).manual_seed(stream_seed(config.seed, "augment")),
                  "mask": torch.Generator(device=device).manual_seed(stream_seed(config.seed, "mask"))}
    try:
        objective = method(encoder, info.channels, generators["mask"], mask_ratio=config.mask_ratio,
                           norm_pix_loss=config.norm_pix_loss, **config.method_args).to(device)
    except (TypeError, ValueError) as err:
        raise UsageError(f"pretraining method {config.method!r} rejected its settings: {err}") from None
    use_fused_attention(objective, precision.fused_attention(device))  # the encoder's and the decoder's
    normalize = Normalize(info).to(device)
    autocast = precision.autocast(device)
    memory = select_budget(dataset.train_labels, info.num_classes, config.seed,
                           total=min(config.knn_memory, len(dataset.train_labels))).labelled
    monitor = knn_evaluator((dataset.train_images[memory], dataset.train_labels[memory]),
                            (dataset.test_images, dataset.test_labels), normalize, device, autocast, config.knn_k)
    # every training image, labels replaced by zeros so that nothing downstream can read them
    data = LoopData(dataset.train_images, torch.zeros(len(dataset.train_images), dtype=torch.long))
    settings_ = LoopSettings(epochs=config.epochs, batch_size=config.batch_size, lr=config.lr, min_lr=config.min_lr,
                             weight_decay=config.weight_decay, warmup_epochs=config.warmup_epochs,
                             clip_grad=config.clip_grad, eval_every=config.eval_every, betas=(0.9, 0.95),
                             threads=config.threads, checkpoint_minutes=config.checkpoint_minutes)
    run_dir.mkdir(parents=True, exist_ok=True)
    if process.is_main:
        save_yaml(config, run_dir / "config.yaml")
        for note in [f"precision: {precision.name} ({precision.reason})"] + [f"augment: {n}" for n in policy.notes]:
            print(f"lowdata: {note}", file=sys.stderr)
    started = time.time()
    at_init = read_json(run_dir / "knn_at_init.json") if resume else None
    if at_init is None:  # the reference the k-NN curve should rise from: the same encoder, untrained
        at_init = monitor(objective.encoder)
        if process.is_main:
            atomic_write_json(run_dir / "knn_at_init.json", at_init)
    result = fit(objective, data, settings_, policy.to(device), lambda model: monitor(model.encoder), device,
                 autocast, NoEma(objective.model), generators, run_dir, asdict(config), resume=resume,
                 stop_after_epoch=stop_after_epoch, process=process, scaler=precision.grad_scaler(device), cores=cores)
    if result is None or not process.is_main:
        return None if result is None else result
    objective.write_figures(run_dir, dataset.test_images[:8].to(device), normalize)
    summary = {
        "method": config.method, "knn_acc": result.get("knn_acc"), "knn_acc_at_init": at_init["knn_acc"],
        "train_loss": result["train_loss"],
        "images": len(dataset.train_images), "dataset": info.name, "model": config.model,
        "encoder_params": count_params(encoder), "params": count_params(objective.model), "epochs": config.epochs,
        "mask_ratio": config.mask_ratio, "train_seconds": round(result["train_seconds"], 2),
        "images_per_second": round(result["images_per_second"], 1),
        "wall_seconds_this_session": round(time.time() - started, 2), "device": str(device),
        "precision": precision.name, "precision_reason": precision.reason, "threads": result["threads"],
    }
    atomic_write_json(run_dir / "summary.json", summary)
    return summary
