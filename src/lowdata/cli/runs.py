"""`lowdata train`, `pretrain`, `eval`, `predict` and `export`: one run, made or used."""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from lowdata.errors import UsageError

TRAIN_FLAGS = {  # flag -> (setting, type, help)
    "--data": ("data", str, "NAME[:PATH] (digits, fashion-mnist, cifar10, cifar100) or an image-folder path "
                            "(required: there is no default)"),
    "--labels": ("labels", int, "total labelled examples, class-balanced (default: the whole training split)"),
    "--labels-per-class": ("labels_per_class", int, "labelled examples per class"),
    "--val-fraction": ("val_fraction", float, "share of the labelled budget held out for validation"),
    "--model": ("model", str, "a preset (see `lowdata models`) or any timm model name"),
    "--epochs": ("epochs", int, "training epochs"),
    "--batch-size": ("batch_size", int, "images per step (default: 128, halved on budgets too small for 4 steps "
                                        "an epoch, to 8 at least)"),
    "--lr": ("lr", float, "peak learning rate (AdamW, cosine schedule with warm-up)"),
    "--augment": ("augment", str, "augmentation policy: none, basic, strong or 3aug (see augment-preview)"),
    "--repeated-aug": ("repeated_aug", int, "repeated augmentation: views of each drawn image per epoch (DeiT: 3)"),
    "--teacher": ("teacher", str, "distil from this teacher: a lowdata run directory (or weights + teacher_model=)"),
    "--objective": ("objective", str, "the method (default: distill with --teacher, else supervised); its "
                                      "settings: `lowdata methods`"),
    "--distill": ("distill.mode", str, "hard (DeiT), soft or none (default: hard when --teacher is given)"),
    "--alpha": ("distill.alpha", float, "weight of the distillation term (default 0.5)"),
    "--tau": ("distill.tau", float, "temperature of soft distillation (default 1)"),
    "--pool": ("pool", str, "also learn from the unlabelled pool: all, or N pool images; taught by --teacher, or "
                            "by the student's own moving average with --objective ema-teacher (ema_teacher.threshold=, "
                            "adaptive=, targets=, mixup=, handover_epochs=), or read by guidance alone"),
    "--guide": ("guidance.guide", str, "feature guidance: the ViT's tokens imitate this CNN run's feature maps "
                                       "(guidance.weight=, guidance.blocks=, guidance.images=labelled|pool|both)"),
    "--rounds": ("rounds", int, "self-training rounds: each round's student is the next round's teacher"),
    "--init": ("init", str, "start from these weights: a lowdata run (e.g. `lowdata pretrain`'s), a weights file, a "
                        "Hugging Face folder, a timm name (with --pretrained) or a hub id (hf-hub:ORG/NAME, timm/NAME, "
                        "ORG/NAME; read from the hub's cache, HF_HUB_CACHE, when offline)"),
    "--freeze-epochs": ("freeze_epochs", int, "fine-tuning: train only the head for this many epochs first"),
    "--layer-decay": ("layer_decay", float, "layer-wise learning-rate decay for fine-tuning (MAE: 0.65-0.75)"),
    "--seed": ("seed", int, "seed for the label subset, initialisation and augmentation"),
    "--image-size": ("image_size", int, "resize every image to this size (default: the data's own size; for folders "
                                        "of mixed sizes, their median shorter side, at most 224)"),
    "--device": ("device", str, "auto, cpu or cuda[:N]"),
    "--out": ("out", str, "run directory (config, metrics, checkpoint, summary)"),
}

PRETRAIN_FLAGS = {
    "--method": ("method", str, "pretraining method: mae (patch ViTs) or dino (any preset)"),
    "--data": ("data", str, "NAME[:PATH] or an image-folder path; every training image is used, labels unread"),
    "--model": ("model", str, "the encoder: a ViT preset (default vit-tiny)"),
    "--epochs": ("epochs", int, "pretraining epochs (default 100)"),
    "--batch-size": ("batch_size", int, "images per step (default 256)"),
    "--lr": ("lr", float, "peak learning rate (AdamW, betas 0.9/0.95, cosine with warm-up)"),
    "--mask-ratio": ("mae.mask_ratio", float, "MAE: share of patches hidden from the encoder (default 0.75)"),
    "--seed": ("seed", int, "seed for initialisation, masking and augmentation"),
    "--image-size": ("image_size", int, "resize every image to this size (default: the data's own size; for folders "
                                        "of mixed sizes, their median shorter side, at most 224)"),
    "--device": ("device", str, "auto, cpu or cuda[:N]"),
    "--out": ("out", str, "run directory (config, metrics with k-NN accuracy, checkpoint, reconstructions.png)"),
}


def with_default(text: str, dest: str, config_class) -> str:
    """A flag's help with its setting's default, unless the text already says it. (The flags default to None
    so that a YAML file's value is not overridden by a flag not given; argparse's own default display would show
    that None.)"""
    default = next((f.default for f in dataclasses.fields(config_class) if f.name == dest), None)
    if "default" in text or default in (None, dataclasses.MISSING):
        return text
    return f"{text} (default: {default})"


def add_commands(commands) -> None:
    add_train(commands)
    add_pretrain(commands)
    add_eval(commands)
    add_predict(commands)
    add_export(commands)


def add_train(commands) -> None:
    train = commands.add_parser("train", help="train and evaluate one model on a label budget",
                                description="Train one model on a class-balanced label budget and evaluate it "
                                            "on the test split. Settings: defaults < --config YAML < flags < "
                                            "key=value.")
    from lowdata.config import TrainConfig

    for flag, (dest, kind, text) in TRAIN_FLAGS.items():
        train.add_argument(flag, dest=dest, type=kind, default=None, help=with_default(text, dest, TrainConfig))
    train.add_argument("--config", help="YAML file of settings (the same names as key=value)")
    train.add_argument("--dist-token", dest="dist_token", action="store_const", const=True, default=None,
                       help="give the ViT DeiT's distillation token and head")
    train.add_argument("--pretrained", action="store_const", const=True, default=None,
                       help="with --init TIMM_NAME: fetch timm's pretrained weights (from its cache when offline)")
    train.add_argument("--linear-probe", dest="linear_probe", action="store_const", const=True, default=None,
                       help="train only a new head on the frozen features of --init")
    train.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    train.add_argument("--json", action="store_true", help="print the whole summary (summary.json) at the end")
    train.add_argument("settings", nargs="*", metavar="key=value",
                       help="any other setting, e.g. lr=5e-4 ema_decay=0.999 model_args.patch_size=2 distill.alpha=0.7")
    train.set_defaults(command=train_command)


def train_command(args: argparse.Namespace) -> int:
    from lowdata.api import train

    settings = given(args, TRAIN_FLAGS, **{"model_args.distilled": args.dist_token}, linear_probe=args.linear_probe,
                     pretrained=args.pretrained)
    if "data" not in settings and not args.resume:  # no silent demo on digits when a path was forgotten
        from lowdata.config import TrainConfig
        from lowdata.objectives import build_config

        build_config(TrainConfig, settings)  # a wrong setting is said first
        raise UsageError("give --data: NAME[:PATH] (digits, fashion-mnist, cifar10, cifar100) or an image folder, "
                         "e.g. --data digits for the built-in demo")
    summary = train(resume=args.resume, **settings)
    print(json.dumps(summary, indent=2) if args.json or summary is None else key_figures(summary))
    if summary is not None:
        print(f"lowdata: run written to {summary.get('run_dir', args.out)} (summary.json, model/, checkpoint/, metrics.jsonl)",
              file=sys.stderr)
    return 0


def key_figures(summary: dict) -> str:
    """A finished run in one line: what it scored, on what, in how long (summary.json, or --json, has the rest)."""
    shown = [f"{label} {summary[key]:.1%}" for key, label in (
        ("test_acc", "test accuracy"), ("test_top5_acc", "top-5"), ("val_acc", "validation"),
        ("train_acc", "training accuracy"), ("knn_acc", "k-NN accuracy")) if isinstance(summary.get(key), float)]
    done = [f"{summary['model']}" if summary.get("model") else None,
            f"{summary['labels']:,} labels" if isinstance(summary.get("labels"), int) else None,
            f"{summary['images']:,} images" if isinstance(summary.get("images"), int) else None,
            f"{summary['epochs']} epoch{'' if summary['epochs'] == 1 else 's'}" if summary.get("epochs") else None,
            f"{summary['train_seconds'] / 60:.1f} min" if summary.get("train_seconds") else None]
    return ", ".join(shown) + f" ({', '.join(part for part in done if part)})"


def given(args: argparse.Namespace, table: dict, **more: object) -> dict:
    """Only the settings the user gave (config file < flags < key=value): with --resume these must agree with
    the run's saved settings."""
    from lowdata.config import given_values

    flags = {dest: getattr(args, dest) for dest, *_ in table.values()}
    return given_values(args.config, {**flags, **more}, args.settings)


def add_pretrain(commands) -> None:
    pretrain = commands.add_parser("pretrain", help="self-supervised pretraining on every training image (MAE, DINO)",
                                   description="Pretrain an encoder on all training images without their labels; "
                                               "fine-tune it with `lowdata train ... --init OUT`.")
    from lowdata.config import PretrainConfig

    for flag, (dest, kind, text) in PRETRAIN_FLAGS.items():
        pretrain.add_argument(flag, dest=dest, type=kind, default=None, help=with_default(text, dest, PretrainConfig))
    pretrain.add_argument("--config", help="YAML file of settings")
    pretrain.add_argument("--resume", action="store_true", help="continue the run in --out")
    pretrain.add_argument("--json", action="store_true", help="print the whole summary (summary.json) at the end")
    pretrain.add_argument("settings", nargs="*", metavar="key=value",
                          help="any other setting, e.g. knn_memory=2000 mae.decoder_depth=4 (`lowdata methods`)")
    pretrain.set_defaults(command=pretrain_command)


def pretrain_command(args: argparse.Namespace) -> int:
    from lowdata.api import pretrain

    summary = pretrain(resume=args.resume, **given(args, PRETRAIN_FLAGS))
    print(json.dumps(summary, indent=2) if args.json or summary is None else key_figures(summary))
    if summary is not None:
        print(f"lowdata: run written to {summary.get('run_dir', args.out)}; fine-tune it with "
              f"`lowdata train ... --init {summary.get('run_dir', args.out)}`", file=sys.stderr)
    return 0


def add_eval(commands) -> None:
    evaluate = commands.add_parser("eval", help="evaluate a finished run's weights on a test split",
                                   description="Test a finished run: accuracy, top-5, each class and the confusion "
                                               "matrix on its own test split (or --data's), with its own "
                                               "preprocessing; --json for all of it as JSON.")
    evaluate.add_argument("--json", action="store_true", help="print the whole result as JSON")
    # --checkpoint: this command's first name for the run directory, kept so old scripts work
    evaluate.add_argument("--run", "--checkpoint", dest="run", required=True,
                          help="a run directory written by `lowdata train`")
    evaluate.add_argument("--data", default=None, help="dataset to test on (default: the run's own)")
    evaluate.add_argument("--device", default=None, help="auto, cpu or cuda[:N] (default: the run's setting)")
    evaluate.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None,
                          help="average the logits over shifted and mirrored views, or not (default: as the run "
                          "was trained, its `tta` setting)")
    evaluate.set_defaults(command=eval_command)


def eval_command(args: argparse.Namespace) -> int:
    from lowdata.api import evaluate_run

    result = evaluate_run(args.run, args.data, args.device, args.tta)
    print(json.dumps(result, indent=2) if args.json else evaluation_text(result))
    return 0


def evaluation_text(result: dict) -> str:
    """An evaluation as a person reads it: accuracy with the test count, top-5, each class, and the confusion
    matrix with its classes named (rows: the true class, columns: the predicted one)."""
    classes = list(result["per_class_acc"])
    top5 = f", top-5 {result['test_top5_acc']:.1%}" if result.get("test_top5_acc") is not None else ""  # 5+ classes
    head = (f"test accuracy {result['test_acc']:.1%} on {result['test_images']:,} images{top5} ({result['model']}, "
            f"{result['dataset']}{', TTA' if result.get('tta') else ''})")
    width = max(5, *(len(name) for name in classes))
    lines = [head, "per class: " + ", ".join(f"{name} {acc:.1%}" for name, acc in result["per_class_acc"].items()),
             "confusion (rows: true class, columns: predicted):",
             " " * (width + 1) + " ".join(f"{name[:width]:>{width}}" for name in classes)]
    lines += [f"{name[:width]:>{width}} " + " ".join(f"{count:>{width}}" for count in row)
              for name, row in zip(classes, result["confusion"])]
    return "\n".join(lines)


def add_predict(commands) -> None:
    predicting = commands.add_parser("predict", help="classify new images with a finished run",
                                     description="Top-k classes and probabilities for images or folders of images, "
                                                 "with the run's own preprocessing (input size, channels, "
                                                 "normalisation); no training data needed.")
    predicting.add_argument("--run", required=True, help="a run directory written by `lowdata train`")
    predicting.add_argument("images", nargs="+", help="image files or folders (every image under them)")
    predicting.add_argument("--top-k", type=int, default=1, help="classes per image (default 1)")
    predicting.add_argument("--out", help="write predictions to this .csv or .json file (default: CSV on stdout)")
    predicting.add_argument("--device", default=None, help="auto, cpu or cuda[:N] (default: the run's setting)")
    predicting.set_defaults(command=predict_command)


def predict_command(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lowdata.api import predict
    from lowdata.runs.predict import check_predictions_target, predictions_csv, write_predictions

    if args.out:
        check_predictions_target(Path(args.out))
    results = predict(args.run, args.images, args.top_k, args.device)
    if args.out:
        write_predictions(results, Path(args.out))
        print(f"predictions for {len(results)} images written to {args.out}", file=sys.stderr)
    else:
        print(predictions_csv(results), end="")
    return 0


def add_export(commands) -> None:
    exporting = commands.add_parser("export", help="a finished run's model for other tools (timm, TorchScript, ONNX)",
                                    description="Write a finished run's model as a timm folder (model.safetensors + "
                                                "config.json), TorchScript or ONNX, and check that the exported "
                                                "model's outputs equal the run's. Inputs: normalised float images "
                                                "(the mean/std are printed and in config.json).")
    exporting.add_argument("--run", required=True, help="a run directory written by `lowdata train`")
    exporting.add_argument("--format", default="timm", choices=["timm", "torchscript", "onnx", "export"],
                           help="timm (default; every run already has one in RUN/model), torchscript, onnx "
                                "(pip install 'lowdata[onnx]'; one file, class names and normalisation in its "
                                "metadata), or export (a torch.export program, .pt2)")
    exporting.add_argument("--out", help="where to write (default: RUN/model, RUN/model.torchscript.pt, "
                                         "RUN/model.onnx, RUN/model.pt2)")
    exporting.set_defaults(command=export_command)


def export_command(args: argparse.Namespace) -> int:
    from lowdata.api import export

    result = export(args.run, args.format, args.out)
    print(json.dumps(result, indent=2))
    print(f"lowdata: {args.format} export written to {result['path']} (outputs equal the run's within "
          f"{result['max_abs_diff']:.1g})", file=sys.stderr)
    return 0
