import pytest

from lowdata.study.noise import near_chance, wilson, within_noise
from lowdata.study.plot import accuracy_limits
from lowdata.study.render import render_markdown
from lowdata.study.report import Layout, conclusion, fit_all


def test_wilson_interval_against_its_closed_form():
    # p = 0.5, n = 100, z = 1.645: centre 0.5, half-width z·sqrt(p(1-p)/n + z²/4n²) / (1 + z²/n) = 0.08116
    low, high = wilson(0.5, 100)
    assert low == pytest.approx(0.41884, abs=1e-4) and high == pytest.approx(0.58116, abs=1e-4)
    low, high = wilson(1.0, 48)  # never past 100 %, and not a zero-width interval at the edge
    assert high == 1.0 and 0.93 < low < 0.96


def cell(accuracy, seeds=1, std=0.0, test_images=None):
    return {"error_mean": 1 - accuracy, "error_std": std, "seeds": seeds, "test_images": test_images}


def test_the_test_sets_own_noise_decides_what_is_a_difference():
    # the case: 48 test images, one seed each
    assert within_noise(cell(0.438, test_images=48), cell(0.333, test_images=48)) is True
    assert within_noise(cell(0.438, test_images=10_000), cell(0.333, test_images=10_000)) is False
    assert within_noise(cell(0.438), cell(0.333)) is None  # one seed, test set unknown: nothing measures noise
    assert within_noise(cell(0.50, 3, 0.01), cell(0.49, 3, 0.01)) is True  # seeds alone
    assert near_chance(cell(0.438, test_images=48), 1 / 3)  # a guesser on 48 images: ±6.8 points
    assert not near_chance(cell(0.438, test_images=2_000), 1 / 3)


def test_an_answer_on_a_small_test_set_never_recommends_from_noise():
    layout = Layout("photos", {"cnn": "cnn", "cct-2": "vit"}, {"cnn": "cnn", "vit": "cct-2"}, [30, 60, 120], [0],
                    6, num_classes=3)
    accuracies = {"cnn": (0.354, 0.333, 0.417), "cct-2": (0.375, 0.438, 0.375)}
    rows = [{"recipe": r, "labels": n, "seed": 0, "test_error": 1 - a, "test_images": 48}
            for r, per in accuracies.items() for n, a in zip((30, 60, 120), per)]
    lines = conclusion(layout, fit_all(layout, rows))
    assert lines[0].startswith("- **Warning**: cnn, cct-2 stay within noise of chance (33.3% for 3 classes)")
    assert not any("use **" in line for line in lines)
    assert "- With 60 labels no recipe is named: even the best (cct-2, 43.8%) is within noise of chance (33.3%)." \
        in lines
    on_many = [{**row, "test_images": 10_000} for row in rows]  # the same figures on 10,000 images are signal
    lines = conclusion(layout, fit_all(layout, on_many))
    assert ("- With 60 labels, use **cct-2** (measured, one seed: the seeds' spread unmeasured): it beats cnn beyond "
            "the test set's noise (43.8% vs 33.3% on 10,000 test images).") in lines
    level = [{**row, "test_error": row["test_error"] - (0.3 if row["recipe"] == "cnn" else 0.24)} for row in rows]
    lines = conclusion(layout, fit_all(layout, level))  # 63.3 % vs 67.8 % on 48 images: level
    assert ("- With 60 labels no recipe is named: cct-2 and cnn are level within the test set's noise (67.8% vs "
            "63.3% on 48 test images).") in lines


def test_the_report_gives_each_accuracy_its_test_count_and_interval(tmp_path):
    layout = Layout("t", {"cnn": "cnn", "vit": "vit"}, {"cnn": "cnn", "vit": "vit"}, [50, 100, 200], [0], 6,
                    num_classes=10)
    rows = [{"recipe": r, "labels": n, "seed": 0, "test_error": e, "test_images": 100, "run": f"cells/{r}{n}"}
            for r, e in (("cnn", 0.5), ("vit", 0.6)) for n in (50, 100, 200)]
    markdown = render_markdown(layout, rows, fit_all(layout, rows), image="curves.png")
    assert "On 100 test images; in brackets the 90 % binomial interval" in markdown
    assert "| cnn | 50.0% [41.9%, 58.1%] | 50.0% [41.9%, 58.1%] |" in markdown
    assert "| cnn | 50 | 0 | 50.0% | 100 |" in markdown
    assert "exponent prior" not in markdown.split("## Answer")[0]  # the first screen is the answer, not the fit


@pytest.mark.parametrize("points, chance, expected", [
    ([40.0, 42.0], 100 / 3, (100 / 3 - 5, 100 / 3 + 25)),  # 2 points of noise drawn in a 30-point axis, chance in
    ([85.0, 97.0], 10.0, (5.0, 100.0)),  # chance always inside
    ([60.0, 99.0], None, (55.0, 100.0)),
])
def test_the_curves_axis_holds_chance_and_never_zooms_into_noise(points, chance, expected):
    low, high = accuracy_limits(points, chance)
    assert (low, high) == pytest.approx(expected) and high - low >= 30
