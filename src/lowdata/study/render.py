"""The report as Markdown (report.md) and as a self-contained HTML page with the plot embedded (report.html)."""
from __future__ import annotations

import base64
from typing import Any

from lowdata.study.answer import conclusion
from lowdata.study.noise import interval_text
from lowdata.study.spend import flops_text
from lowdata.study.layout import Layout


def render_markdown(layout: Layout, rows: list[dict[str, Any]], fits: dict[str, Any], image: str,
                    cost_image: str = "cost.png") -> str:
    """The answer first (which recipe at which budget, how sure, what each remedy is worth), then the plot,
    then the tables that back it. Accuracy in % throughout."""
    lines = [f"# Data-hunger study: {layout.title}", "",
             f"Recipes {', '.join(layout.families)} at {', '.join(f'{n:,}' for n in layout.sizes)} labels, seeds "
             f"{', '.join(map(str, layout.seeds))}; {finished(len(rows), layout.planned)}.", "",
             "## Answer", ""] + conclusion(layout, fits) + worth(layout, fits)
    one_seed = all(m["seeds"] < 2 for entry in fits["recipes"].values() for m in entry["measured"])
    lines += ["", f"![learning curves]({image})", ""]
    if has_costs(rows):
        lines += [f"![test accuracy against training cost]({cost_image})", ""]
    lines += ["## Test accuracy (one seed)" if one_seed else "## Test accuracy (mean ± std over seeds)", ""]
    counts = sorted({int(r["test_images"]) for r in rows if r.get("test_images")})
    if counts:
        lines += [f"On {' or '.join(f'{n:,}' for n in counts)} test images; in brackets the 90 % binomial interval "
                  "of the test set alone (Wilson), which more seeds do not narrow.", ""]
    lines += ["| recipe | " + " | ".join(f"{n:,}" for n in layout.sizes) + " |",
              "|---|" + "---:|" * len(layout.sizes)]
    for recipe, entry in fits["recipes"].items():
        by_size = {m["labels"]: m for m in entry["measured"]}
        cells = [mean_and_spread(by_size[n]) + interval_text(by_size[n]) if n in by_size else "–"
                 for n in layout.sizes]
        lines.append(f"| {recipe} | " + " | ".join(cells) + " |")
    pooled = sorted({(r["recipe"], r.get("pool_images") or 0) for r in rows if r.get("pool_images")})
    if pooled:
        lines += ["", "Besides its labels, a recipe may read unlabelled images (taught by its teacher); those are not "
                  "counted as labels above: " + ", ".join(f"{recipe} read from {count:,} pool images"
                                                         for recipe, count in pooled) + "."]
    lines += ["", "## Fitted learning curves: accuracy(n) = 100 % − (a + b·n^(−c))", "",
              "90 % intervals in brackets; 2× and 10× the largest size are extrapolations; the exponent c has a prior "
              f"of strength {fits['exponent_prior']['strength']:g} towards {fits['exponent_prior']['centre']:g}.", "",
              "| recipe | ceiling (100 % − a) | b | c | accuracy at 2× | accuracy at 10× |",
              "|---|---:|---:|---:|---:|---:|"]
    for recipe, entry in fits["recipes"].items():
        if entry["fit"]:
            f, p = entry["fit"], entry["predicted"]
            lines.append(f"| {recipe} | {1 - f['a']:.1%} {accuracy_bracket(f['a_interval'])} | {f['b']:.3g} | "
                         f"{f['c']:.3f} {bracket(f['c_interval'], '.3f')} | "
                         f"{1 - p['2x']['error']:.1%} {accuracy_bracket(p['2x']['interval'])} at {p['2x']['labels']:,} | "
                         f"{1 - p['10x']['error']:.1%} {accuracy_bracket(p['10x']['interval'])} at "
                         f"{p['10x']['labels']:,}{past_the_data(layout, p['10x']['labels'])} |")
        else:
            lines.append(f"| {recipe} | no fit: {entry['no_fit_reason']} | | | | |")
    notes = fit_notes(fits)
    if notes:
        lines += [""] + notes
    if fits["crossovers"]:
        lines += ["", "## Where a ViT recipe overtakes the CNN", ""]
        for recipe, c in fits["crossovers"].items():
            if c["share_never"] is None:
                spread = "; no interval: add seeds"
            elif c["interval"] is None or c["share_never"] >= 0.5:  # mostly no crossover: an interval would mislead
                spread = f"; no crossover in {c['share_never']:.0%} of bootstrap resamples"
            else:
                spread = (f"; 90 % bootstrap interval {c['interval'][0]:,.0f} to {c['interval'][1]:,.0f} labels, "
                          f"no crossover in {c['share_never']:.0%} of resamples")
            lines.append(f"- **{recipe}**: {c['text']}{spread}.")
    if fits["multipliers"]:
        lines += ["", "## Effective data multiplier against the plain ViT", "",
                  f"Labels the plain `{layout.references['vit']}` recipe would need, read from its fitted curve, to "
                  "match each recipe's "
                  "fitted error, as a multiple of the recipe's own labels (* = outside the measured range).", "",
                  "| recipe | " + " | ".join(f"{n:,}" for n in layout.sizes) + " |", "|---|" + "---:|" * len(layout.sizes)]
        for recipe, values in fits["multipliers"].items():
            lines.append(f"| {recipe} | " + " | ".join(format_multiplier(v) for v in values) + " |")
    if fits.get("against_baseline"):
        lines += ["", "## What the choice of labelled images is worth", "",
                  "Labels the same recipe with a class-balanced random budget would need, read from its fitted curve, "
                  "to match the recipe whose labelled images a strategy chose, as a multiple of its own labels "
                  "(* = outside the measured range).", "",
                  "| recipe | read against | " + " | ".join(f"{n:,}" for n in layout.sizes) + " |",
                  "|---|---|" + "---:|" * len(layout.sizes)]
        for recipe, entry in fits["against_baseline"].items():
            lines.append(f"| {recipe} | {entry['baseline']} | "
                         + " | ".join(format_multiplier(v) for v in entry["multipliers"]) + " |")
    lines += ["", "## Cells", "", "Each cell's budget and how well it fit its own labels (a low training accuracy "
              "means under-trained, not data-hungry).", "",
              "| recipe | labels | seed | test accuracy | test images | train accuracy | epochs | steps | run |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows[:CELL_ROWS_SHOWN]:
        link = f"[{r['run']}]({r['run']}/)" if r.get("run") else "–"
        tests = f"{int(r['test_images']):,}" if r.get("test_images") else "–"
        lines.append(f"| {r['recipe']} | {r['labels']:,} | {r.get('seed', 0)} | {1 - r['test_error']:.1%} | {tests} | "
                     f"{percent(r.get('train_acc'))} | {r.get('epochs') or '–'} | {r.get('steps') or '–'} | {link} |")
    if len(rows) > CELL_ROWS_SHOWN:
        lines += ["", f"… and {len(rows) - CELL_ROWS_SHOWN:,} more: every result is in results.csv."]
    return "\n".join(lines + shared_runs(layout)) + "\n"


def shared_runs(layout: Layout) -> list[str]:
    """The runs that cells share (a pretraining, a teacher), with their cost: paid once, in no cell's figures."""
    if not layout.stages:
        return []
    lines = ["", "## Shared runs", "", "Run once and read by the cells that name them (a pretraining by every "
             "budget); their training time is not in any cell's.", "",
             "| run | kind | model | images | epochs | training time | training FLOPs | img/s (device) | result |",
             "|---|---|---|---:|---:|---:|---:|---:|---|"]
    for s in layout.stages:
        kind = f"{s['kind']} ({s['method']})" if s.get("method") else s["kind"]
        result = (f"k-NN {s['knn_acc']:.1%}" if s.get("knn_acc") is not None
                  else f"test {s['test_acc']:.1%}" if s.get("test_acc") is not None else "–")
        minutes = f"{s['train_seconds'] / 60:.1f} min" if s.get("train_seconds") is not None else "–"
        speed = f"{s['images_per_second']:,.0f} ({s.get('device') or '?'})" if s.get("images_per_second") else "–"
        flops = flops_text(s["train_flops"]) if s.get("train_flops") else "–"
        lines.append(f"| [{s['id']}]({s['run']}/) | {kind} | {s.get('model') or '–'} | {s.get('images') or 0:,} | "
                     f"{s.get('epochs') or '–'} | {minutes} | {flops} | {speed} | {result} |")
    return lines


# a report of 10^5 rows took a minute to render and no one reads it; the CSV keeps every row
CELL_ROWS_SHOWN = 500


def percent(value: float | None) -> str:
    return "–" if value is None or value == "" else f"{float(value):.1%}"


def past_the_data(layout: Layout, labels: int) -> str:
    return " (more than the data set's images)" if layout.train_images and labels > layout.train_images else ""


def mean_and_spread(measured: dict[str, Any]) -> str:
    """A size's mean accuracy, with its spread over seeds where more than one seed measured it."""
    spread = f" ± {measured['error_std']:.1%}" if measured["seeds"] > 1 else ""
    return f"{1 - measured['error_mean']:.1%}{spread}"


def has_costs(rows: list[dict[str, Any]]) -> bool:
    """Whether the cells recorded their training cost (a study from before did not; a CSV may not)."""
    return any(row.get("train_flops") not in (None, "") for row in rows)


def answer_section(markdown: str) -> str:
    """The report's Answer (its heading and bullet lines), for the terminal at the end of a study."""
    lines = markdown.splitlines()
    start = lines.index("## Answer")
    end = next((i for i in range(start + 1, len(lines)) if lines[i] and not lines[i].lstrip().startswith("- ")),
               len(lines))
    return "\n".join(line for line in lines[start:end] if line)


def worth(layout: Layout, fits: dict[str, Any]) -> list[str]:
    """What each remedy is worth in labels of the plain ViT, at the largest size read inside measured ranges."""
    lines = []
    for recipe, values in fits["multipliers"].items():
        inside = [v for v in values if not v["extrapolated"] and v["multiplier"] is not None]
        if not inside:
            continue
        value = inside[-1]
        lines.append(f"- **{recipe}** at {value['labels']:,} labels is worth {format_multiplier(value)} as many labels "
                     f"for the plain {layout.references['vit']}.")
    for recipe, entry in (fits.get("against_baseline") or {}).items():
        inside = [v for v in entry["multipliers"] if not v["extrapolated"] and v["multiplier"] is not None]
        if inside:
            lines.append(f"- **{recipe}** at {inside[-1]['labels']:,} labels is worth {format_multiplier(inside[-1])} "
                         f"as many labels chosen at random for {entry['baseline']}.")
    return lines


def accuracy_bracket(errors: list[float] | None) -> str:
    """An error interval as the accuracy interval it is."""
    return bracket(None if errors is None else [1 - errors[1], 1 - errors[0]], ".1%")


def finished(results: int, planned: int | None) -> str:
    return f"{results} results" if planned is None else f"{results} of {planned} cells finished"


def fit_notes(fits: dict[str, Any]) -> list[str]:
    """One line per fit that sits on a bound of its parameters or could not estimate intervals."""
    lines = []
    for recipe, entry in fits["recipes"].items():
        fitted = entry["fit"]
        if not fitted:
            continue
        said = ([f"at a bound: {', '.join(fitted['at_bound'])}"] if fitted["at_bound"] else []) + \
               ([fitted["interval_note"]] if fitted["interval_note"] else [])
        if said:
            lines.append(f"- **{recipe}**: {'; '.join(said)}.")
    return lines


def format_multiplier(value: dict[str, Any]) -> str:
    main = f"{format_times(value['multiplier'])}{'*' if value['extrapolated'] else ''}"
    if value["interval"] is None:
        return f"{main} [not estimable]"
    low, high = (format_times(v) for v in value["interval"])
    return f"{main} [{low}, {high}]"


def bracket(values: list[float] | None, style: str) -> str:
    """A 90 % interval as [low, high], or what stands in for one that could not be estimated."""
    if values is None:
        return "[not estimable]"
    return f"[{values[0]:{style}}, {values[1]:{style}}]"


def format_times(value: float | None) -> str:
    """Multipliers past 1000x say only that: the fit is far outside anything measured."""
    if value is None:
        return "∞"
    return ">1000×" if value > 1000 else f"{value:.2f}×"


def render_html(layout: Layout, rows: list[dict[str, Any]], fits: dict[str, Any], png: bytes,
                cost_png: bytes | None = None) -> str:
    """A self-contained page: the same Markdown rendered by Python-Markdown, with the plots embedded."""
    import markdown

    image = "data:image/png;base64," + base64.b64encode(png).decode()
    cost_image = "data:image/png;base64," + base64.b64encode(cost_png or b"").decode()
    body = markdown.markdown(render_markdown(layout, rows, fits, image=image, cost_image=cost_image),
                             extensions=["tables"])
    style = ("body{font-family:sans-serif;max-width:60rem;margin:2rem auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}img{max-width:100%}")
    return ("<!doctype html><html><head><meta charset=\"utf-8\"><title>lowdata study</title>"
            f"<style>{style}</style></head><body>\n{body}\n</body></html>\n")
