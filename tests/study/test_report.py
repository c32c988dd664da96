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
