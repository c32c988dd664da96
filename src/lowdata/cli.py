"""Command line: thin subcommands over the Python API. The only module that reads argv.

Heavy imports (torch, timm) happen inside the commands, so `lowdata --help` answers at once.
"""
from __future__ import annotations

import argparse
import json
import sys

from lowdata.errors import Failed, UsageError

TRAIN_FLAGS = {  # flag -> (setting, type, help)
    "--data": ("data", str, "NAME[:PATH] (digits, fashion-mnist, cifar10, cifar100) or an image-folder path"),
    "--labels": ("labels", int, "total labelled examples, class-balanced (default: the whole training split)"),
    "--labels-per-class": ("labels_per_class", int, "labelled examples per class"),
    "--val-fraction": ("val_fraction", float, "share of the labelled budget held out for validation"),
    "--model": ("model", str, "a preset (see `lowdata models`) or any timm model name"),
    "--epochs": ("epochs", int, "training epochs"),
    "--batch-size": ("batch_size", int, "images per step"),
    "--lr": ("lr", float, "peak learning rate (AdamW, cosine schedule with warm-up)"),
    "--augment": ("augment", str, "augmentation policy: none, basic, strong or 3aug (see augment-preview)"),
    "--repeated-aug": ("repeated_aug", int, "repeated augmentation: views of each drawn image per epoch (DeiT: 3)"),
    "--teacher": ("teacher", str, "distil from this teacher: a lowdata run directory (or weights + teacher_model=)"),
    "--distill": ("distill", str, "hard (DeiT), soft or none (default: hard when --teacher is given)"),
    "--alpha": ("distill_alpha", float, "weight of the distillation term (default 0.5)"),
    "--tau": ("distill_tau", float, "temperature of soft distillation (default 1)"),
    "--pool": ("pool", str, "also learn from the unlabelled pool through the teacher: all, or N pool images"),
    "--rounds": ("rounds", int, "self-training rounds: each round's student is the next round's teacher"),
    "--init": ("init", str, "start from these weights: a lowdata run (e.g. `lowdata pretrain`'s) or a weights file"),
    "--freeze-epochs": ("freeze_epochs", int, "fine-tuning: train only the head for this many epochs first"),
    "--layer-decay": ("layer_decay", float, "layer-wise learning-rate decay for fine-tuning (MAE: 0.65-0.75)"),
    "--seed": ("seed", int, "seed for the label subset, initialisation and augmentation"),
    "--image-size": ("image_size", int, "resize every image to this size (image folders of mixed sizes)"),
    "--device": ("device", str, "auto, cpu or cuda[:N]"),
    "--out": ("out", str, "run directory (config, metrics, checkpoint, summary)"),
}

PRETRAIN_FLAGS = {
    "--method": ("method", str, "pretraining method: mae"),
    "--data": ("data", str, "NAME[:PATH] or an image-folder path; every training image is used, labels unread"),
    "--model": ("model", str, "the encoder: a ViT preset (default vit-tiny)"),
    "--epochs": ("epochs", int, "pretraining epochs (default 100)"),
    "--batch-size": ("batch_size", int, "images per step (default 256)"),
    "--lr": ("lr", float, "peak learning rate (AdamW, betas 0.9/0.95, cosine with warm-up)"),
    "--mask-ratio": ("mask_ratio", float, "share of patches hidden from the encoder (default 0.75)"),
    "--seed": ("seed", int, "seed for initialisation, masking and augmentation"),
    "--image-size": ("image_size", int, "resize every image to this size (image folders of mixed sizes)"),
    "--device": ("device", str, "auto, cpu or cuda[:N]"),
    "--out": ("out", str, "run directory (config, metrics with k-NN accuracy, checkpoint, reconstructions.png)"),
}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parse_with_settings_anywhere(parser, argv)
    if not hasattr(args, "command"):
        parser.print_help()
        return 2
    from lowdata import stopping

    stopping.install()
    try:
        return args.command(args)
    except UsageError as err:
        print(f"lowdata: error: {err}", file=sys.stderr)
        return 2
    except Failed as err:
        print(f"lowdata: error: {err}", file=sys.stderr)
        return 1
    except stopping.Stopped as stop:
        print(f"lowdata: stopped by {stop}; {stop.detail}", file=sys.stderr)
        return stop.exit_status
    except KeyboardInterrupt:
        print("lowdata: interrupted; finished epochs are checkpointed, continue with --resume", file=sys.stderr)
        return 130
    except OSError as err:  # a path the user named cannot be written: one line, not a traceback
        from lowdata.io import describe_os_error

        message = describe_os_error(err)
        if message is None:
            raise
        print(f"lowdata: error: {message}", file=sys.stderr)
        return 2


def parse_with_settings_anywhere(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse argv, accepting key=value settings between flags as well as after them.

    argparse fills a nargs="*" positional from one run of arguments only, so `--data X classes=a,b --epochs 3
    lr=1e-3` would leave `lr=1e-3` unrecognised; and parse_intermixed_args does not support subcommands.
    """
    args, extra = parser.parse_known_args(argv)
    settings = getattr(args, "settings", None)
    unknown = [text for text in extra if settings is None or text.startswith("-")]
    if unknown:  # told by the subcommand's parser, so the hint names its --help
        getattr(args, "subparser", parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    if extra:
        args.settings = list(settings) + extra
    return args


class Parser(argparse.ArgumentParser):
    """argparse, with its usage errors in one line (the usage block is one `--help` away)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}; see `{self.prog} --help`\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="lowdata", description="Vision transformers on small data, measured.")
    import lowdata

    parser.add_argument("--version", action="version", version=f"lowdata {lowdata.__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    train = commands.add_parser("train", help="train and evaluate one model on a label budget",
                                description="Train one model on a class-balanced label budget and evaluate it "
                                            "on the test split. Settings: defaults < --config YAML < flags < "
                                            "key=value.")
    for flag, (dest, kind, text) in TRAIN_FLAGS.items():
        train.add_argument(flag, dest=dest, type=kind, default=None, help=text)
    train.add_argument("--config", help="YAML file of settings (the same names as key=value)")
    train.add_argument("--dist-token", dest="dist_token", action="store_const", const=True, default=None,
                       help="give the ViT DeiT's distillation token and head")
    train.add_argument("--pretrained", action="store_const", const=True, default=None,
                       help="with --init TIMM_NAME: fetch timm's pretrained weights (from its cache when offline)")
    train.add_argument("--linear-probe", dest="linear_probe", action="store_const", const=True, default=None,
                       help="train only a new head on the frozen features of --init")
    train.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    train.add_argument("settings", nargs="*", metavar="key=value",
                       help="any other setting, e.g. lr=5e-4 ema_decay=0.999 model_args.patch_size=2")
    train.set_defaults(command=train_command)

    pretrain = commands.add_parser("pretrain", help="self-supervised pretraining on every training image (MAE)",
                                   description="Pretrain an encoder on all training images without their labels; "
                                               "fine-tune it with `lowdata train ... --init OUT`.")
    for flag, (dest, kind, text) in PRETRAIN_FLAGS.items():
        pretrain.add_argument(flag, dest=dest, type=kind, default=None, help=text)
    pretrain.add_argument("--config", help="YAML file of settings")
    pretrain.add_argument("--resume", action="store_true", help="continue the run in --out")
    pretrain.add_argument("settings", nargs="*", metavar="key=value",
                          help="any other setting, e.g. knn_memory=2000 method_args.decoder_depth=4")
    pretrain.set_defaults(command=pretrain_command)

    evaluate = commands.add_parser("eval", help="evaluate a finished run's weights on a test split")
    # --checkpoint: this command's first name for the run directory, kept so old scripts work
    evaluate.add_argument("--run", "--checkpoint", dest="run", required=True,
                          help="a run directory written by `lowdata train`")
    evaluate.add_argument("--data", default=None, help="dataset to test on (default: the run's own)")
    evaluate.add_argument("--device", default=None, help="auto, cpu or cuda[:N] (default: the run's setting)")
    evaluate.set_defaults(command=eval_command)

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

    exporting = commands.add_parser("export", help="a finished run's model for other tools (timm, TorchScript, ONNX)",
                                    description="Write a finished run's model as a timm folder (model.safetensors + "
                                                "config.json), TorchScript or ONNX, and check that the exported "
                                                "model's outputs equal the run's. Inputs: normalised float images "
                                                "(the mean/std are printed and in config.json).")
    exporting.add_argument("--run", required=True, help="a run directory written by `lowdata train`")
    exporting.add_argument("--format", default="timm", choices=["timm", "torchscript", "onnx"],
                           help="timm (default; every run already has one in RUN/model), torchscript, or onnx "
                                "(pip install 'lowdata[onnx]')")
    exporting.add_argument("--out", help="where to write (default: RUN/model, RUN/model.torchscript.pt, RUN/model.onnx)")
    exporting.set_defaults(command=export_command)

    study = commands.add_parser(
        "study", help="learning curves: a grid of recipes x label budgets x seeds, fitted and reported",
        description="Train every recipe at every label budget and seed, fit error(n) = a + b*n^-c per recipe, "
                    "and report where the ViT recipes overtake the CNN and how many labels each is worth. "
                    "Finished cells are kept: rerun the same command to resume.")
    study.add_argument("--data", help="NAME[:PATH] or an image-folder path, as for `train`")
    study.add_argument("--sizes", type=int_list, help="total label budgets, e.g. 250,500,1000,2500,5000")
    study.add_argument("--sizes-per-class", type=int_list, help="label budgets per class, e.g. 10,25,50,100")
    study.add_argument("--recipes", type=name_list, help="recipe names (see `lowdata recipes`), e.g. cnn,vit")
    study.add_argument("--seeds", type=int_list, help="seeds, e.g. 0,1,2")
    budget = study.add_mutually_exclusive_group()
    budget.add_argument("--budget-epochs", type=int, help="epochs for every cell")
    budget.add_argument("--budget-steps", type=int, help="optimiser steps for every cell (epochs follow the size)")
    study.add_argument("--config", help="YAML file of training settings applied to every cell")
    study.add_argument("--recipes-file", help="YAML file of your own recipes (same form as the built-in ones)")
    study.add_argument("--reference", action="append", metavar="RECIPE",
                       help="a recipe the others of its family are compared with (default: cnn and vit, or the "
                            "recipes marked `reference: true`); once per family")
    study.add_argument("--preset", help="quick (digits, a few minutes) or cifar10-cpu (overnight on 2 cores)")
    study.add_argument("--out", required=True, help="study directory (plan, cells, results, report)")
    study.add_argument("--worker", action="store_true",
                       help="join the study in --out (plan arguments optional); run as many as you like")
    study.add_argument("--claim-timeout", type=float, default=900.0,
                       help="seconds after which another host's silent claim on a cell is taken over")
    study.add_argument("--jobs", type=int, default=1, help="workers on this host, each with cores/N threads")
    study.add_argument("--backend", default="local", choices=["local", "ray"],
                       help="local workers (default) or Ray tasks (pip install 'lowdata[ray]')")
    study.add_argument("--address", help="with --backend ray: the Ray cluster to join (default: start one here)")
    study.add_argument("--cpus-per-cell", type=float, default=1.0, help="with --backend ray: CPUs each cell asks for")
    study.add_argument("--gpus-per-cell", type=float, default=0.0, help="with --backend ray: GPUs each cell asks for")
    study.add_argument("--retries", type=int, default=2,
                       help="with --backend ray: times a cell whose worker died is started again (from its checkpoint)")
    study.add_argument("--no-report", dest="report", action="store_false", help=argparse.SUPPRESS)
    study.add_argument("settings", nargs="*", metavar="key=value", help="training settings for every cell")
    study.set_defaults(command=study_command)

    report = commands.add_parser("report", help="rebuild a study's CSV, fits, plot and report from its cells")
    report.add_argument("study_dir", help="a directory written by `lowdata study`")
    report.add_argument("--exponent-prior", type=float, default=None, metavar="STRENGTH",
                        help="penalty pulling the fitted exponent c towards 0.5 (default 5, as Hoiem et al.; 0: none)")
    report.set_defaults(command=report_command)

    fitting = commands.add_parser(
        "fit", help="fit learning curves to results from any source (a CSV) and write the study's report files",
        description="Fit error(n) = a + b*n^-c per recipe to a CSV with columns recipe,labels,seed,error (error as "
                    "a fraction; accuracy accepted instead; an optional family column says cnn or vit), with the "
                    "study's own code: fits.json, curves.png, report.md and report.html in --out. A study's "
                    "results.csv is such a file.")
    fitting.add_argument("csv", help="results CSV")
    fitting.add_argument("--out", required=True, help="directory for fits.json, curves.png and the report")
    fitting.add_argument("--reference", action="append", metavar="RECIPE",
                         help="a recipe the others of its family are compared with (default: cnn and vit)")
    fitting.add_argument("--title", default=None, help="the report's title (default: the CSV's file name)")
    fitting.add_argument("--exponent-prior", type=float, default=None, metavar="STRENGTH",
                         help="penalty pulling the fitted exponent c towards 0.5 (default 5, as Hoiem et al.; 0: none)")
    fitting.set_defaults(command=fit_command)

    recipes = commands.add_parser("recipes", help="list the study recipes")
    recipes.add_argument("--recipes-file", help="also list the recipes in this YAML file")
    recipes.set_defaults(command=recipes_command)

    preview = commands.add_parser("augment-preview", help="write a grid of augmented training images",
                                  description="Show what the model sees: training images as stored, then "
                                              "augmented views with their (mixed) labels.")
    preview.add_argument("--data", default="digits", help="NAME[:PATH] or an image-folder path, as for `train`")
    # --policy: this command's first name for the policy, kept so old scripts work
    preview.add_argument("--augment", "--policy", dest="augment", default="strong",
                         help="none, basic, strong or 3aug, as for `train`")
    preview.add_argument("--out", required=True, help="PNG file to write")
    preview.add_argument("--images", type=int, default=8, help="images per row")
    preview.add_argument("--views", type=int, default=3, help="augmented rows")
    preview.add_argument("--seed", type=int, default=0)
    preview.add_argument("--image-size", type=int, default=None, help="resize image folders of mixed sizes")
    preview.add_argument("settings", nargs="*", metavar="key=value",
                         help="the policy's own settings, as for `train`: augment_args.mixup=0.2 (or mixup=0.2)")
    preview.set_defaults(command=preview_command)

    data = commands.add_parser("data", help="inspect an image folder")
    data_commands = data.add_subparsers(dest="data_command", required=True)
    check = data_commands.add_parser("check", help="list every problem file and class in an image folder",
                                     description="Decode every image of a folder and list each problem (unreadable "
                                                 "files, empty classes, mixed sizes...) without training. Exit 0: "
                                                 "none; 1: problems listed.")
    check.add_argument("path", help="an image folder: PATH/<class>/* or PATH/train/<class>/* and PATH/test/...")
    check.set_defaults(command=data_check_command)

    models = commands.add_parser("models", help="list model presets with their parameter counts")
    models.add_argument("--data", help="size the models for this dataset (NAME[:PATH]; default 32x32 RGB, 10 classes)")
    models.add_argument("--timm", metavar="PATTERN", nargs="?", const="*",
                        help="list timm model names matching PATTERN instead (e.g. 'vit_*')")
    models.set_defaults(command=models_command)
    for subparser in commands.choices.values():
        subparser.set_defaults(subparser=subparser)
    return parser


def train_command(args: argparse.Namespace) -> int:
    from lowdata.api import train
    from lowdata.config import given_values

    flags = {dest: getattr(args, dest) for dest, *_ in TRAIN_FLAGS.values()}
    flags.update(dist_token=args.dist_token, linear_probe=args.linear_probe, pretrained=args.pretrained)
    # only what the user gave: with --resume these must agree with the run's saved settings
    summary = train(resume=args.resume, **given_values(args.config, flags, args.settings))
    print(json.dumps(summary, indent=2))
    if summary is not None:
        print(f"lowdata: run written to {summary.get('run_dir', args.out)} (summary.json, model/, checkpoint/, metrics.jsonl)",
              file=sys.stderr)
    return 0


def pretrain_command(args: argparse.Namespace) -> int:
    from lowdata.config import given_values
    from lowdata.api import pretrain

    flags = {dest: getattr(args, dest) for dest, *_ in PRETRAIN_FLAGS.values()}
    summary = pretrain(resume=args.resume, **given_values(args.config, flags, args.settings))
    print(json.dumps(summary, indent=2))
    if summary is not None:
        print(f"lowdata: run written to {summary.get('run_dir', args.out)}; fine-tune it with "
              f"`lowdata train ... --init {summary.get('run_dir', args.out)}`", file=sys.stderr)
    return 0


def preview_command(args: argparse.Namespace) -> int:
    from lowdata.augment.preview import write_preview
    from lowdata.config import parse_assignment

    policy_args = dict(parse_assignment(text.removeprefix("augment_args.")) for text in args.settings)
    result = write_preview(args.data, args.augment, args.out, args.images, args.views, args.seed, args.image_size,
                           policy_args)
    for note in result["notes"]:
        print(f"lowdata: augment: {note}", file=sys.stderr)
    print(f"wrote {result['out']} ({result['policy']})")
    return 0


def int_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None


def name_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def study_command(args: argparse.Namespace) -> int:
    from lowdata.api import run_study
    from lowdata.config import given_values

    settings = given_values(args.config, assignments=args.settings) if args.config or args.settings else None
    fits = run_study(args.out, data=args.data, sizes=args.sizes, sizes_per_class=args.sizes_per_class,
                 recipes=args.recipes, seeds=args.seeds, budget_epochs=args.budget_epochs,
                 budget_steps=args.budget_steps, settings=settings, recipes_file=args.recipes_file,
                 preset=args.preset, worker=args.worker, claim_timeout=args.claim_timeout,
                 references=args.reference, jobs=args.jobs, backend=args.backend, address=args.address,
                 cpus_per_cell=args.cpus_per_cell, gpus_per_cell=args.gpus_per_cell, retries=args.retries,
                 report=args.report)
    if not args.report:
        pass  # a --jobs child: the command that started it reports
    elif fits is None:
        print(f"study: this worker is done; other workers still hold cells in {args.out}", file=sys.stderr)
    else:
        print(f"study: report written to {args.out}/report.md and report.html", file=sys.stderr)
    return 0


def report_command(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lowdata.study.report import build_report

    build_report(Path(args.study_dir), prior=exponent_prior(args.exponent_prior))
    print(f"report written to {args.study_dir}/report.md and report.html")
    return 0


def fit_command(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lowdata.io import check_writable
    from lowdata.study.report import refuse_foreign_report, write_report
    from lowdata.study.table import layout_for, read_results

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; give a folder for fits.json, curves.png and the report")
    check_writable(out, "--out")
    refuse_foreign_report(out)
    rows = read_results(args.csv)
    layout = layout_for(rows, args.title or Path(args.csv).stem, args.reference)
    print(f"lowdata: fitting {len(rows):,} results of {len(layout.families)} recipes", file=sys.stderr)
    out.mkdir(parents=True, exist_ok=True)
    fits = write_report(layout, rows, out, prior=exponent_prior(args.exponent_prior))
    for recipe, entry in fits["recipes"].items():
        curve = entry["fit"]
        print(f"{recipe}: " + (f"a={curve['a']:.4f} b={curve['b']:.4g} c={curve['c']:.3f}" if curve else
                               f"no fit ({entry['no_fit_reason']})"))
    print(f"fits and report written to {out}/fits.json, report.md and report.html")
    return 0


def exponent_prior(value: float | None) -> float:
    from lowdata.study.fit import PRIOR_STRENGTH

    if value is None:
        return PRIOR_STRENGTH
    if not value >= 0:
        raise UsageError(f"--exponent-prior must be 0 or more (0 turns the prior off), got {value}")
    return value


def recipes_command(args: argparse.Namespace) -> int:
    from lowdata.study.recipes import load_recipes

    for recipe in load_recipes(args.recipes_file).values():
        settings = " ".join(f"{k}={v}" for k, v in recipe.settings.items())
        print(f"{recipe.name:<16}[{recipe.family}] {recipe.description}\n{'':<16}{settings}")
    return 0


def eval_command(args: argparse.Namespace) -> int:
    from lowdata.api import evaluate_run

    print(json.dumps(evaluate_run(args.run, args.data, args.device), indent=2))
    return 0


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


def export_command(args: argparse.Namespace) -> int:
    from lowdata.api import export

    result = export(args.run, args.format, args.out)
    print(json.dumps(result, indent=2))
    print(f"lowdata: {args.format} export written to {result['path']} (outputs equal the run's within "
          f"{result['max_abs_diff']:.1g})", file=sys.stderr)
    return 0


def data_check_command(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lowdata.data.check import check_folder

    problems = check_folder(Path(args.path).expanduser())
    for line in problems:
        print(line)
    print(f"{len(problems)} problem{'s' if len(problems) != 1 else ''} in {args.path}", file=sys.stderr)
    return 1 if problems else 0


def models_command(args: argparse.Namespace) -> int:
    if args.timm:
        import timm

        print("\n".join(timm.list_models(args.timm)))
        return 0
    from lowdata.models import MODELS, count_params, create_model
    from lowdata.models.factory import forward_flops

    classes, channels, size, where = 10, 3, (32, 32), "32x32 RGB, 10 classes"
    if args.data:
        from lowdata.data import load_dataset

        info = load_dataset(args.data).info
        classes, channels, size = info.num_classes, info.channels, tuple(info.image_size)
        where = f"{args.data.split(':')[0]}: {size[0]}x{size[1]}x{channels}, {classes} classes"
    print(f"{'name':<19}{'params':>9}{'GFLOPs':>8}  description (parameters and forward FLOPs per image at {where})")
    for name in MODELS.names():
        model = create_model(name, num_classes=classes, in_chans=channels, img_size=size)
        flops = forward_flops(model, channels, size)
        print(f"{name:<19}{count_params(model) / 1e6:>8.2f}M{flops / 1e9:>8.3f}  {MODELS.get(name).summary}")
    print("\nAny timm model name works too, with keyword overrides: model_args.depth=6 ...")
    return 0


if __name__ == "__main__":
    sys.exit(main())
