"""Command line: thin subcommands over the Python API. The only module that reads argv.

Heavy imports (torch, timm) happen inside the commands, so `lowdata --help` answers at once.
"""
from __future__ import annotations

import argparse
import json
import sys

from lowdata.errors import UsageError

TRAIN_FLAGS = {  # flag -> (setting, type, help)
    "--data": ("data", str, "NAME[:PATH] (digits, fashion-mnist, cifar10, cifar100) or an image-folder path"),
    "--labels": ("labels", int, "total labelled examples, class-balanced (default: the whole training split)"),
    "--labels-per-class": ("labels_per_class", int, "labelled examples per class"),
    "--val-fraction": ("val_fraction", float, "share of the labelled budget held out for validation"),
    "--model": ("model", str, "a preset (see `lowdata models`) or any timm model name"),
    "--epochs": ("epochs", int, "training epochs"),
    "--batch-size": ("batch_size", int, "images per step"),
    "--lr": ("lr", float, "peak learning rate (AdamW, cosine schedule with warm-up)"),
    "--augment": ("augment", str, "augmentation policy: basic or none"),
    "--seed": ("seed", int, "seed for the label subset, initialisation and augmentation"),
    "--device": ("device", str, "auto, cpu or cuda[:N]"),
    "--out": ("out", str, "run directory (config, metrics, checkpoint, summary)"),
}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "command"):
        parser.print_help()
        return 2
    try:
        return args.command(args)
    except UsageError as err:
        print(f"lowdata: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lowdata: interrupted; finished epochs are checkpointed, continue with --resume", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lowdata", description="Vision transformers on small data, measured.")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    train = commands.add_parser("train", help="train and evaluate one model on a label budget",
                                description="Train one model on a class-balanced label budget and evaluate it "
                                            "on the test split. Settings: defaults < --config YAML < flags < "
                                            "key=value.")
    for flag, (dest, kind, text) in TRAIN_FLAGS.items():
        train.add_argument(flag, dest=dest, type=kind, default=None, help=text)
    train.add_argument("--config", help="YAML file of settings (the same names as key=value)")
    train.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    train.add_argument("settings", nargs="*", metavar="key=value",
                       help="any other setting, e.g. lr=5e-4 ema_decay=0.999 model_args.patch_size=2")
    train.set_defaults(command=run_train)

    evaluate = commands.add_parser("eval", help="evaluate a finished run's weights on a test split")
    evaluate.add_argument("--checkpoint", required=True, help="a run directory written by `lowdata train`")
    evaluate.add_argument("--data", default=None, help="dataset to test on (default: the run's own)")
    evaluate.set_defaults(command=run_eval)

    models = commands.add_parser("models", help="list model presets with their parameter counts")
    models.add_argument("--timm", metavar="PATTERN", nargs="?", const="*",
                        help="list timm model names matching PATTERN instead (e.g. 'vit_*')")
    models.set_defaults(command=run_models)
    return parser


def run_train(args: argparse.Namespace) -> int:
    from lowdata.config import TrainConfig, resolve

    flags = {dest: getattr(args, dest) for dest, *_ in TRAIN_FLAGS.values()}
    config = resolve(TrainConfig, file=args.config, overrides=flags, assignments=args.settings)
    explicit = {k for k, v in flags.items() if v is not None} | {s.split("=", 1)[0].split(".")[0] for s in args.settings}
    if args.config:
        from lowdata.config import load_yaml

        explicit |= set(load_yaml(args.config))
    from lowdata.api import train

    summary = train(config, resume=args.resume, **{k: getattr(config, k) for k in explicit})
    print(json.dumps(summary, indent=2))
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from lowdata.api import evaluate_run

    print(json.dumps(evaluate_run(args.checkpoint, args.data), indent=2))
    return 0


def run_models(args: argparse.Namespace) -> int:
    if args.timm:
        import timm

        print("\n".join(timm.list_models(args.timm)))
        return 0
    from lowdata.models import MODELS, count_params, create_model

    print(f"{'name':<16}{'params':>10}  description (parameters at 32x32 RGB, 10 classes)")
    for name in MODELS.names():
        model = create_model(name, num_classes=10, in_chans=3, img_size=(32, 32))
        print(f"{name:<16}{count_params(model) / 1e6:>9.2f}M  {MODELS.get(name).summary}")
    print("\nAny timm model name works too, with keyword overrides: model_args.depth=6 ...")
    return 0


if __name__ == "__main__":
    sys.exit(main())
