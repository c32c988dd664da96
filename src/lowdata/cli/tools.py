"""`lowdata augment-preview`, `data check` and `models`: looking at the data, the augmentation and the models;
`methods`: what each method and term is set by; `select`: which images to label; `adopt`: vouching for a run
or study folder made before lowdata kept ledgers."""
from __future__ import annotations

import argparse
import sys


def add_commands(commands) -> None:
    add_preview(commands)
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
    methods = commands.add_parser("methods", help="list the methods and auxiliary terms with their settings",
                                  description="Each method (train's objective, pretrain's method) and each auxiliary "
                                              "term with its settings, their defaults and one line each; set one as "
                                              "SECTION.KEY=VALUE (distill.alpha=0.7) or in YAML (distill: {alpha: "
                                              "0.7}).")
    methods.add_argument("name", nargs="?", help="only this method or term")
    methods.set_defaults(command=methods_command)
    adopt = commands.add_parser("adopt", help="record a run or study made before lowdata kept ledgers as lowdata's",
                                description="lowdata replaces only files whose content its ledger "
                                            "(.lowdata-ledger.json) records. A run or study folder made by a lowdata "
                                            "without ledgers is refused on --resume or a new report; if you vouch "
                                            "that its files are lowdata's, this records their present content.")
    adopt.add_argument("path", help="the run or study folder")
    adopt.set_defaults(command=adopt_command)
    add_select(commands)


def add_select(commands) -> None:
    select = commands.add_parser(
        "select", help="rank unlabelled images for labelling (TypiClust, ProbCover, k-means, margin)",
        description="Choose which training images to label next, from their features, and write the list in "
                    "labelling order (CSV: rank,image,score; or Label Studio tasks). Labels are never read, except "
                    "to take the seeded budget of --labels as labelled already.")
    select.add_argument("--data", required=True, help="NAME[:PATH] or an image-folder path, as for `train` (its "
                                                      "training split), or a folder of unlabelled images")
    select.add_argument("--n", type=int, required=True, help="how many images to choose")
    select.add_argument("--strategy", default="typiclust",
                        help="random, kmeans, typiclust (default), probcover, or margin (with a trained --features "
                             "run)")
    select.add_argument("--features", default="pca",
                        help="pca (raw pixels) or what --init takes: a lowdata run (a DINO/MAE pretrain run, a "
                             "trained run), a weights file (with --model), a timm name (with --pretrained)")
    select.add_argument("--model", help="the architecture of a --features weights file")
    select.add_argument("--pretrained", action="store_true", help="with a timm name in --features: its weights")
    select.add_argument("--labels", type=int, help="the images `train --labels N --seed S` takes count as labelled")
    select.add_argument("--seed", type=int, default=0)
    select.add_argument("--classes", type=int, help="how many classes the images hold (ProbCover's purity "
                                                    "clusters; default: the dataset's, or 10 for unlabelled images)")
    select.add_argument("--image-size", type=int, default=None, help="resize image folders of mixed sizes")
    select.add_argument("--format", dest="output_format", default="csv", help="csv or label-studio (tasks JSON)")
    select.add_argument("--out", default="to-label.csv", help="the list to write (default to-label.csv)")
    select.set_defaults(command=select_command)


def select_command(args: argparse.Namespace) -> int:
    from lowdata import console
    from lowdata.selection.select import said, select_images

    summary = select_images(args.data, args.n, args.out, args.strategy, args.features, args.labels, args.seed,
                            args.model, args.pretrained, args.output_format, args.image_size,
                            classes=args.classes)
    for line in summary["features_report"]:
        console.say(f"features: {line}")
    print(said(summary))
    return 0


def add_preview(commands) -> None:
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


def adopt_command(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lowdata.errors import UsageError
    from lowdata.ledger import adopt

    root = Path(args.path)
    if not root.is_dir():
        raise UsageError(f"{root} is not a folder; give the folder of a run or a study")
    recorded, changed = adopt(root)
    print(f"lowdata: recorded {recorded} file{'s' if recorded != 1 else ''} under {root} as lowdata's", file=sys.stderr)
    if changed:
        print(f"lowdata: left out {len(changed)} file{'s' if len(changed) != 1 else ''} that changed since lowdata "
              f"wrote them, e.g. {changed[0]}; restore or move them away", file=sys.stderr)
    return 0


def data_check_command(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lowdata.data.check import inspect_folder

    problems, description = inspect_folder(Path(args.path).expanduser())
    for line in problems:
        print(line)
    for line in description:
        print(f"lowdata: {line}", file=sys.stderr)
    print(f"{len(problems)} problem{'s' if len(problems) != 1 else ''} in {args.path}", file=sys.stderr)
    return 1 if problems else 0


def models_command(args: argparse.Namespace) -> int:
    if args.timm:
        import timm

        print("\n".join(timm.list_models(args.timm)))
        return 0
    from lowdata.models import MODELS, count_params, create_model, sized_model_args
    from lowdata.models.factory import forward_flops

    classes, channels, size, where = 10, 3, (32, 32), "32x32 RGB, 10 classes"
    if args.data:
        from lowdata.data import load_dataset

        info = load_dataset(args.data).info
        classes, channels, size = info.num_classes, info.channels, tuple(info.image_size)
        where = f"{args.data.split(':')[0]}: {size[0]}x{size[1]}x{channels}, {classes} classes"
    print(f"{'name':<19}{'params':>9}{'GFLOPs':>8}{'tokens':>8}  description (parameters, forward FLOPs and tokens "
          f"per image at {where})")
    for name in MODELS.names():
        model = create_model(name, num_classes=classes, in_chans=channels, img_size=size,
                             **sized_model_args(name, {}, size))  # as a run on this data builds it
        flops = forward_flops(model, channels, size)
        grid = getattr(getattr(model, "patch_embed", None), "grid_size", None)
        tokens = f"{grid[0]}x{grid[1]}" if grid else "-"
        print(f"{name:<19}{count_params(model) / 1e6:>8.2f}M{flops / 1e9:>8.3f}{tokens:>8}  {MODELS.get(name).summary}")
    print("\nAny timm model name works too, with keyword overrides: model_args.depth=6 ...")
    return 0


def methods_command(args: argparse.Namespace) -> int:
    from lowdata.errors import UsageError
    from lowdata.flat_settings import section_name
    from lowdata.objectives import OBJECTIVES, TERMS
    from lowdata.objectives.base import load_methods
    from lowdata.sections import describe

    load_methods()
    entries = [(f"{name} ({'train --objective' if m.reads_labels else 'pretrain --method'})", section_name(name),
                m.settings, m.doc) for name, m in ((n, OBJECTIVES.get(n)) for n in OBJECTIVES.names())]
    entries += [(f"{name} (term: on when its section is given)", name, TERMS.get(name).settings, TERMS.get(name).doc)
                for name in TERMS.names()]
    if args.name:
        entries = [e for e in entries if args.name in (e[0].split()[0], e[1])]
        if not entries:
            raise UsageError(f"no method or term {args.name!r}; `lowdata methods` lists them")
    for title, section, settings, doc in entries:
        print(f"{title}: {doc}")
        for key, default, line in describe(settings):
            print(f"  {section + '.' + key:<36} {str(default):<12} {line}")
        print()
    return 0
