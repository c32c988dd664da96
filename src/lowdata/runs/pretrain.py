"""`lowdata pretrain`: self-supervised pretraining of an encoder on every training image, labels unread.

    from lowdata import pretrain
    summary = pretrain(data="cifar10:~/data/cifar10", method="mae", epochs=100, out="runs/mae")
    # then: lowdata train --data ... --labels 1000 --init runs/mae --layer-decay 0.75

What differs from other kinds of run: every training image with its label replaced, the method's objective
(found by registration), a k-NN monitor instead of test accuracy, and the method's figures at the end. A
method that keeps its own average of the weights (DINO's teacher) has it evaluated, checkpointed and read by
`--init` in place of an EMA.
"""
from __future__ import annotations

from typing import Any

from lowdata.config import PretrainConfig
from lowdata.errors import UsageError, shown
from lowdata.runs.skeleton import Run, execute


def pretrain(config: PretrainConfig | None = None, *, resume: bool = False, stop_after_epoch: int | None = None,
             **settings: Any) -> dict[str, Any] | None:
    return execute(pretrain_kind, PretrainConfig, config, settings, resume, stop_after_epoch, default_out,
                   "a pretraining run")


def pretrain_kind(run: Run, stop_after_epoch: int | None) -> dict[str, Any] | None:
    import torch

    from lowdata.augment import Normalize, build_policy
    from lowdata.augment.mixing import NoMixing
    from lowdata.data import load_dataset, select_budget
    from lowdata.metrics import knn_evaluator
    from lowdata.io import atomic_write_json
    from lowdata.models import count_params, create_model, sized_model_args
    from lowdata.models.vit import use_fused_attention
    from lowdata.objectives import MethodData, build_objective, resolve_sections
    from lowdata.rundir import read_json
    from lowdata.runs.cost import example_image, training_cost
    from lowdata.training.ema import NoEma
    from lowdata.training.loop import LoopData

    config = run.config
    dataset = load_dataset(config.data, config.image_size, config.split_seed)
    info = dataset.info
    policy = build_policy(config.augment, info, **config.augment_args)
    if not isinstance(policy.mixing, NoMixing):
        raise UsageError(f"augmentation {shown(config.augment)} mixes labels; pretraining reads no labels: use basic")
    if not run.resume:  # the preset's token grid at this image size, recorded (a resume keeps the saved one)
        config = run.config = config.replace(model_args=sized_model_args(config.model, config.model_args,
                                                                          info.image_size))
    config = run.config = resolve_sections(config, config.method, reads_labels=False)
    torch.manual_seed(config.seed)
    encoder = create_model(config.model, num_classes=0, in_chans=info.channels, img_size=info.image_size,
                           drop_path=config.drop_path, **config.model_args)
    objective, method_summary = build_objective(config.method, config, encoder, MethodData(dataset), run.device,
                                                run.autocast, reads_labels=False)
    use_fused_attention(objective, run.precision.fused_attention(run.device))  # the encoder's and the decoder's
    normalize = Normalize(info).to(run.device)
    memory = select_budget(dataset.train_labels, info.num_classes, config.seed,
                           total=min(config.knn_memory, len(dataset.train_labels))).labelled
    monitor = knn_evaluator((dataset.train_images[memory], dataset.train_labels[memory]),
                            (dataset.test_images, dataset.test_labels), normalize, run.device, run.autocast,
                            config.knn_k)
    # every training image, labels replaced by zeros so that nothing downstream can read them
    data = LoopData(dataset.train_images, torch.zeros(len(dataset.train_images), dtype=torch.long))
    run.write_config([f"augment: {note}" for note in policy.notes])
    at_init = read_json(run.run_dir / "knn_at_init.json") if run.resume else None
    if at_init is None:  # the reference the k-NN curve should rise from: the same encoder, untrained
        at_init = monitor(objective.encoder)
        if run.process.is_main:
            atomic_write_json(run.run_dir / "knn_at_init.json", at_init)
    cost_parts = objective.cost_parts(normalize(example_image(info, run.device)))
    average = objective.weights_average() or NoEma(objective.model)  # DINO's teacher is the model evaluated
    result = run.fit(objective, data, lambda model: monitor(model.encoder), policy, average, stop_after_epoch,
                     betas=(0.9, 0.95))
    if result is None:
        return None
    if run.process.is_main:
        objective.write_figures(run.run_dir, dataset.test_images[:8].to(run.device), normalize)
    return run.finish(result, {
        "method": config.method, "knn_acc": result.get("knn_acc"), "knn_acc_at_init": at_init["knn_acc"],
        "train_loss": result["train_loss"],
        "images": len(dataset.train_images), "dataset": info.name, "model": config.model,
        "encoder_params": count_params(encoder), "params": count_params(objective.model), "epochs": config.epochs,
        **method_summary, **training_cost(cost_parts, result, run.device),
    })


def default_out(config: PretrainConfig) -> str:
    return f"runs/{config.method}-{config.model}-{config.data.split(':')[0]}-s{config.seed}"
