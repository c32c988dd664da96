"""`lowdata study`, `report`, `fit` and `recipes`: learning curves over a grid of recipes, budgets and seeds."""
from __future__ import annotations

import argparse
import sys

from lowdata.errors import UsageError


def add_commands(commands) -> None:
    add_study(commands)
    add_report(commands)
    add_fit(commands)
    recipes = commands.add_parser("recipes", help="list the study recipes")
    recipes.add_argument("--recipes-file", help="also list the recipes in this YAML file")
    recipes.set_defaults(command=recipes_command)


# options several of these commands share, declared once
def add_reference(parser, default: str = "cnn and vit") -> None:
    parser.add_argument("--reference", action="append", metavar="RECIPE",
                        help=f"a recipe the others of its family are compared with (default: {default}); once per "
                             "family")


def add_exponent_prior(parser) -> None:
    parser.add_argument("--exponent-prior", type=float, default=None, metavar="STRENGTH",
                        help="penalty pulling the fitted exponent c towards 0.5 (default 5, as Hoiem et al.; 0: none)")


def add_study(commands) -> None:
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
    study.add_argument("--selection", type=name_list,
                       help="how the labelled images are chosen, e.g. random,typiclust: each recipe again per strategy "
                            "(R+typiclust, on pixel-PCA features), its worth read in labels on R's curve")
    budget = study.add_mutually_exclusive_group()
    budget.add_argument("--budget-epochs", type=int, help="epochs for every cell")
    budget.add_argument("--budget-steps", type=int, help="optimiser steps for every cell (epochs follow the size)")
    budget.add_argument("--budget-flops", type=float, help="training FLOPs for every cell, e.g. 2e15 (equal compute: "
                        "epochs follow the size and each recipe's cost per image, as `lowdata models` counts it)")
    study.add_argument("--config", help="YAML file of training settings applied to every cell")
    study.add_argument("--recipes-file", help="YAML file of your own recipes (same form as the built-in ones)")
    add_reference(study, "cnn and vit, or the recipes marked `reference: true`")
    study.add_argument("--preset", help="quick (digits, a few minutes) or cifar10-cpu (overnight on 2 cores)")
    study.add_argument("--out", required=True, help="study directory (plan, cells, results, report)")
    study.add_argument("--worker", action="store_true",
                       help="join the study in --out (plan arguments optional); run as many as you like")
    study.add_argument("--claim-timeout", type=float, default=900.0,
                       help="seconds after which another host's silent claim on a cell is taken over")
    add_backend_options(study)
    study.add_argument("--no-report", dest="report", action="store_false", help=argparse.SUPPRESS)
    study.add_argument("settings", nargs="*", metavar="key=value", help="training settings for every cell")
    study.set_defaults(command=study_command)


def add_backend_options(study) -> None:
    study.add_argument("--jobs", type=int, default=1, help="workers on this host, each with cores/N threads")
    study.add_argument("--backend", default="local", choices=["local", "ray"],
                       help="local workers (default) or Ray tasks (pip install 'lowdata[ray]')")
    study.add_argument("--address", help="with --backend ray: the Ray cluster to join (default: start one here)")
    study.add_argument("--cpus-per-cell", type=float, default=1.0, help="with --backend ray: CPUs each cell asks for")
    study.add_argument("--gpus-per-cell", type=float, default=0.0, help="with --backend ray: GPUs each cell asks for")
    study.add_argument("--retries", type=int, default=2,
                       help="with --backend ray: times a cell whose worker died is started again (from its checkpoint)")


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
                 budget_steps=args.budget_steps, budget_flops=args.budget_flops, settings=settings,
                 recipes_file=args.recipes_file, preset=args.preset, worker=args.worker,
                 claim_timeout=args.claim_timeout,
                 references=args.reference, selection=args.selection, jobs=args.jobs, backend=args.backend,
                 address=args.address,
                 cpus_per_cell=args.cpus_per_cell, gpus_per_cell=args.gpus_per_cell, retries=args.retries,
                 report=args.report)
    if not args.report:
        pass  # a --jobs child: the command that started it reports
    elif fits is None:
        print(f"study: this worker is done; other workers still hold cells in {args.out}", file=sys.stderr)
    else:
        from pathlib import Path

        from lowdata.study.render import answer_section

        report = Path(args.out) / "report.md"
        if report.is_file():  # the Answer, where it can be read
            print(answer_section(report.read_text()))
        print(f"study: report written to {args.out}/report.md and report.html (curves, tables, every cell)",
              file=sys.stderr)
    return 0


def add_report(commands) -> None:
    report = commands.add_parser("report", help="rebuild a study's CSV, fits, plot and report from its cells")
    report.add_argument("study_dir", help="a directory written by `lowdata study`")
    add_exponent_prior(report)
    report.set_defaults(command=report_command)


def report_command(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lowdata.study.report import build_report

    build_report(Path(args.study_dir), prior=exponent_prior(args.exponent_prior))
    print(f"report written to {args.study_dir}/report.md and report.html")
    return 0


def add_fit(commands) -> None:
    fitting = commands.add_parser(
        "fit", help="fit learning curves to results from any source (a CSV) and write the study's report files",
        description="Fit error(n) = a + b*n^-c per recipe to a CSV with columns recipe,labels,seed,error (error as "
                    "a fraction; accuracy accepted instead; an optional family column says cnn or vit), with the "
                    "study's own code: fits.json, curves.png, report.md and report.html in --out. A study's "
                    "results.csv is such a file.")
    fitting.add_argument("csv", help="results CSV")
    fitting.add_argument("--out", required=True, help="directory for fits.json, curves.png and the report")
    add_reference(fitting)
    fitting.add_argument("--title", default=None, help="the report's title (default: the CSV's file name)")
    add_exponent_prior(fitting)
    fitting.set_defaults(command=fit_command)


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
    from lowdata.study.recipes import LINKS, load_recipes

    import shutil
    import textwrap

    recipes = load_recipes(args.recipes_file).values()
    column = max(len(recipe.name) for recipe in recipes) + 2  # the longest name fits its column
    width = max(60, shutil.get_terminal_size((100, 24)).columns)
    for recipe in recipes:
        links = [f"{LINKS[setting]}: {name}" for setting, name in recipe.links().items()]
        pairs = [(f"{k}.{sub}", v[sub]) if isinstance(v, dict) else (k, v)  # a mapping as its dotted keys
                 for k, v in recipe.settings.items() for sub in (v if isinstance(v, dict) else [None])]
        settings = " ".join([f"{k}={v}" for k, v in pairs] + [f"({link})" for link in links])
        text = textwrap.fill(f"[{recipe.family}] {recipe.description}", width,
                             initial_indent=f"{recipe.name:<{column}}", subsequent_indent=" " * column)
        print(f"{text}\n{'':<{column}}{settings}")  # the settings on one line, to copy as they are
    return 0
