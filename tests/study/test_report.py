import numpy as np
import pytest

from lowdata.study.fit import Curve
from lowdata.study.plan import Plan
from lowdata.study.report import describe_multiplier, fit_all

BASELINE = Curve(0.1, 2.0, 0.5)  # the plain ViT
SAME = [BASELINE] * 5  # bootstrap replicates


@pytest.mark.parametrize("remedy, n, extrapolated", [
    (Curve(0.1, 4.0, 0.5), 100, True),    # worth 0.25x: 25 labels, below the baseline's smallest (50)
    (Curve(0.1, 2.0, 0.5), 100, False),   # worth 1x: 100 labels, measured
    (Curve(0.1, 1.0, 0.5), 500, True),    # worth 4x: 2,000 labels, above the baseline's largest (800)
])
def test_multipliers_outside_the_measured_sizes_are_flagged_at_either_end(remedy, n, extrapolated):
    described = describe_multiplier(remedy, BASELINE, [remedy] * 5, SAME, n, (50.0, 800.0))
    assert described["extrapolated"] is extrapolated
    assert described["multiplier"] == pytest.approx((BASELINE.b / remedy.b) ** 2, rel=1e-3)


def test_a_recipe_with_fewer_than_three_finished_sizes_gets_no_fit_and_a_reason():
    plan = Plan("digits", [50, 100, 200], [0], {"cnn": {"family": "cnn"}, "vit": {"family": "vit"}}, {}, {}, [])
    rows = [{"recipe": "cnn", "labels": n, "test_error": float(BASELINE.error(n))} for n in (50, 100, 200)]
    rows += [{"recipe": "vit", "labels": n, "test_error": float(BASELINE.error(n)) + 0.2} for n in (50, 100)]
    fits = fit_all(plan, rows)
    assert fits["recipes"]["cnn"]["fit"] is not None
    assert all(p["extrapolated"] for p in fits["recipes"]["cnn"]["predicted"].values())
    assert fits["recipes"]["vit"]["fit"] is None
    assert fits["recipes"]["vit"]["no_fit_reason"].startswith("2 finished sizes: a curve needs at least 3")
    assert fits["crossovers"] == {} and fits["multipliers"] == {}
    assert np.isfinite(fits["recipes"]["cnn"]["fit"]["c"])


def test_a_study_at_chance_warns_and_names_no_winner():
    from lowdata.study.report import Layout, conclusion

    layout = Layout("digits", {"cnn": "cnn", "vit": "vit"}, {"cnn": "cnn", "vit": "vit"}, [50, 100, 200], [0, 1],
                    12, num_classes=10)
    rows = [{"recipe": recipe, "labels": n, "seed": seed, "test_error": 0.89 + 0.01 * seed + (0.005 if recipe == "vit" else 0)}
            for recipe in ("cnn", "vit") for n in (50, 100, 200) for seed in (0, 1)]
    lines = conclusion(layout, fit_all(layout, rows))
    assert lines[0].startswith("- **Warning**: cnn, vit stay within noise of chance (10.0% for 10 classes)")
    assert not any("use **" in line for line in lines)
    assert sum("no recipe is named" in line for line in lines) == 3
    learned = [{**row, "test_error": row["test_error"] - (0.5 if row["recipe"] == "cnn" else 0)} for row in rows]
    lines = conclusion(layout, fit_all(layout, learned))
    assert lines[0].startswith("- **Warning**: vit stays within noise") and "use **cnn**" in lines[1]


def test_the_answer_names_the_measured_hunger_and_each_remedy_by_its_gain():
    from lowdata.study.report import Layout, conclusion

    layout = Layout("digits", {"cnn": "cnn", "vit": "vit", "vit+x": "vit", "vit+y": "vit"},
                    {"cnn": "cnn", "vit": "vit"}, [50, 100, 200], [0, 1], 24, num_classes=10)
    errors = {"cnn": (0.10, 0.05, 0.02), "vit": (0.50, 0.35, 0.20), "vit+x": (0.30, 0.30, 0.25),
              "vit+y": (0.14, 0.10, 0.05)}
    rows = [{"recipe": recipe, "labels": n, "seed": seed, "test_error": error}
            for recipe, per_size in errors.items() for n, error in zip((50, 100, 200), per_size) for seed in (0, 1)]
    lines = conclusion(layout, fit_all(layout, rows))
    assert lines[0] == ("- **Data hunger** (measured): the plain vit trails cnn by 40.0 points at 50 labels "
                        "(50.0% vs 90.0%) and by 18.0 points at 200 (80.0% vs 98.0%); the gap narrows as labels grow.")
    assert lines[1] == ("- **Remedy vit+y** (measured): beats the plain vit at every size (+36.0 points at 50, "
                        "+25.0 points at 100, +15.0 points at 200); at 50 labels it closes 90% of vit's gap to cnn.")
    assert lines[2] == ("- **Remedy vit+x** (measured): beats the plain vit at 50, 100 labels only (+20.0 points "
                        "at 50, +5.0 points at 100, −5.0 points at 200); at 50 labels it closes 50% of vit's gap "
                        "to cnn.")
    assert lines[3].startswith("- With 50 labels, use **cnn**")
    assert any(line.startswith("- Where vit+x overtakes cnn (read from the fits): ") for line in lines)


def test_the_report_leads_with_its_answer_in_one_unit_and_marks_extrapolation(tmp_path):
    from lowdata.study.report import Layout, write_report

    layout = Layout("digits", {"cnn": "cnn", "vit": "vit", "vit+x": "vit"}, {"cnn": "cnn", "vit": "vit"},
                    [50, 100, 200], [0, 1], 18, num_classes=10, train_images=1_000)
    truth = {"cnn": (0.1, 2.0), "vit": (0.15, 3.0), "vit+x": (0.12, 2.5)}
    rows = [{"recipe": recipe, "labels": n, "seed": seed, "test_error": a + b * n ** -0.5 + 0.004 * seed,
             "test_acc": 1 - (a + b * n ** -0.5 + 0.004 * seed), "epochs": 5, "steps": 40, "train_acc": 0.97,
             "run": f"cells/{recipe}-n{n}-s{seed}"}
            for recipe, (a, b) in truth.items() for n in (50, 100, 200) for seed in (0, 1)]
    write_report(layout, rows, tmp_path)
    markdown = (tmp_path / "report.md").read_text()
    answer = markdown[markdown.index("## Answer"):markdown.index("![learning curves]")]
    assert "With 200 labels, use **cnn**" in answer and "**vit+x** at 100 labels is worth 1.86×" in answer  # 200 would read vit past its sizes
    assert "accuracy at 10×" in markdown and "error" not in markdown.split("## Fitted")[1].split("\n")[4]
    assert "at 2,000 (more than the data set's images)" in markdown  # 10x the largest size, past the 1,000
    assert "| vit+x | 200 | 1 | " in markdown and "| 97.0% | 5 | 40 | [cells/vit+x-n200-s1](cells/vit+x-n200-s1/) |" in markdown


def costed_rows(table):
    """Rows of a constructed study: {recipe: {labels: [(test_error, train_flops, train_acc) per seed]}}."""
    return [{"recipe": recipe, "labels": n, "seed": seed, "test_error": error, "train_flops": flops,
             "train_acc": fitted}
            for recipe, sizes in table.items() for n, cells in sizes.items()
            for seed, (error, flops, fitted) in enumerate(cells)]


def test_the_answer_names_the_cheapest_recipe_within_noise_of_the_best_and_unequal_compute():
    from lowdata.study.report import Layout, conclusion

    layout = Layout("t", {"cnn": "cnn", "vit": "vit", "cct": "vit"}, {"cnn": "cnn", "vit": "vit"}, [50, 100, 200],
                    [0, 1], 18, num_classes=10)
    table = {"cnn": {n: [(0.10, 4e12, 1.0), (0.12, 4e12, 1.0)] for n in (50, 100, 200)},  # best, dear
             "cct": {n: [(0.11, 1e12, 1.0), (0.13, 1e12, 1.0)] for n in (50, 100, 200)},  # within noise, cheap
             "vit": {n: [(0.40, 2e12, 1.0), (0.42, 2e12, 1.0)] for n in (50, 100, 200)}}  # far behind
    lines = conclusion(layout, fit_all(layout, costed_rows(table)))
    at_50 = lines.index("- With 50 labels no recipe is named: cnn and cct are level within the seeds' noise "
                        "(89.0% vs 88.0%).")
    assert lines[at_50 + 1] == ("    - Cheapest within noise of cnn at 50 labels: **cct**, 88.0% for 1 TFLOP of "
                                "training against cnn's 4 TFLOP.")
    assert ("- **Unequal compute** (measured) at 50, 100, 200 labels: cnn's cells had 4.0x cct's; the "
            "comparison above is at unequal cost: compare at equal compute with --budget-flops.") in lines
    table["cct"] = {n: [(0.11, 3.8e12, 1.0), (0.13, 3.8e12, 1.0)] for n in (50, 100, 200)}  # about as dear
    assert "    - cnn cost 4 TFLOP of training; no recipe within noise of it cost less." in \
        conclusion(layout, fit_all(layout, costed_rows(table)))
    table["cct"] = {n: [(0.30, 1e12, 1.0), (0.31, 1e12, 1.0)] for n in (50, 100, 200)}  # now clearly worse
    lines = conclusion(layout, fit_all(layout, costed_rows(table)))
    assert "    - cnn cost 4 TFLOP of training; no recipe within noise of it cost less." in lines


def test_under_training_comes_first_and_one_seed_claims_no_spread():
    from lowdata.study.render import render_markdown
    from lowdata.study.report import Layout, conclusion

    layout = Layout("t", {"cnn": "cnn", "vit": "vit"}, {"cnn": "cnn", "vit": "vit"}, [50, 100, 200], [0], 6,
                    num_classes=10)
    table = {"cnn": {50: [(0.10, 1e12, 1.0)], 100: [(0.08, 1e12, 1.0)], 200: [(0.05, 1e12, 0.99)]},
             "vit": {50: [(0.40, 1e12, 0.98)], 100: [(0.45, 1e12, 0.59)], 200: [(0.50, 1e12, 0.43)]}}
    fits = fit_all(layout, costed_rows(table))
    lines = conclusion(layout, fits)
    assert lines[0] == ("- **Under-trained** (measured): cells that fit only part of their own training images — "
                        "vit 59.0% at 100, 43.0% at 200 labels (98.0% at 50); their curves there show too few "
                        "training steps, not data hunger. Give those cells more steps (--budget-steps), a fixed "
                        "--budget-epochs or equal compute (--budget-flops) before reading the lines below.")
    assert "- With 50 labels, use **cnn** (measured, one seed: no spread): it beats vit by 30.0 points (90.0% vs " \
           "60.0%)." in lines
    assert "    - cnn cost 1 TFLOP of training; no recipe is called within noise of it: one seed measures no " \
           "spread." in lines
    assert not any("within the seed spread" in line for line in lines)
    markdown = render_markdown(layout, costed_rows(table), fits, image="curves.png")
    assert "## Test accuracy (one seed)" in markdown and "| vit | 60.0% | 55.0% | 50.0% |" in markdown
    assert "± 0.0%" not in markdown and "![test accuracy against training cost](cost.png)" in markdown
