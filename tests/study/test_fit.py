import math

import numpy as np
import pytest

from lowdata.study.fit import Curve, bootstrap_curves, crossover, fit_curve, interval, multiplier

SIZES = np.array([100, 250, 500, 1000, 2500, 5000, 10000], dtype=float)


def noisy(curve, seeds=3, noise=0.004, seed=0):
    rng = np.random.default_rng(seed)
    return [curve.error(n) + rng.normal(0, noise, seeds) for n in SIZES]


@pytest.mark.parametrize("true", [Curve(0.10, 2.0, 0.5), Curve(0.25, 5.0, 0.8), Curve(0.05, 0.6, 0.25)])
def test_fit_recovers_known_parameters_from_noisy_curves(true):
    found = fit_curve(SIZES, noisy(true))
    assert found.a == pytest.approx(true.a, abs=0.02)
    assert found.c == pytest.approx(true.c, abs=0.08)
    assert np.allclose(found.error(SIZES), true.error(SIZES), atol=0.006)


def test_exact_curve_is_fitted_exactly():
    true = Curve(0.2, 3.0, 0.6)
    found = fit_curve(SIZES, [np.array([true.error(n)]) for n in SIZES])
    assert found.c == pytest.approx(0.6, abs=0.002) and found.a == pytest.approx(0.2, abs=1e-3)


def test_bootstrap_interval_covers_the_truth_and_is_reproducible():
    true = Curve(0.10, 2.0, 0.5)
    errors = noisy(true, noise=0.01)
    curves = bootstrap_curves(SIZES, errors, seed=0, replicates=100)
    low, high = interval([c.error(20000) for c in curves])
    assert low <= true.error(20000) <= high
    again = bootstrap_curves(SIZES, errors, seed=0, replicates=100)
    assert [c.c for c in curves] == [c.c for c in again]


def test_size_for_error_inverts_the_curve():
    curve = Curve(0.1, 2.0, 0.5)
    assert curve.size_for_error(float(curve.error(1234.0))) == pytest.approx(1234.0)
    assert math.isinf(curve.size_for_error(0.05))  # below the floor: never


def test_multiplier_has_the_closed_form_answer():
    # the same exponent and floor, the remedy's b a quarter of the baseline's:
    # a + b/4 * n^-0.5 = a + b * m^-0.5  =>  m = 16 n
    baseline, remedy = Curve(0.1, 2.0, 0.5), Curve(0.1, 0.5, 0.5)
    assert multiplier(remedy, baseline, 1000) == pytest.approx(16.0)
    assert multiplier(baseline, baseline, 1000) == pytest.approx(1.0)
    assert math.isinf(multiplier(Curve(0.05, 0.5, 0.5), baseline, 1e9))


def test_crossover_is_where_the_curves_meet():
    cnn = Curve(0.2, 1.0, 0.5)  # learns fast, high floor
    vit = Curve(0.05, 4.0, 0.5)  # slow, low floor: 0.05 + 4/sqrt(n) = 0.2 + 1/sqrt(n) => sqrt(n) = 20
    assert crossover(vit, cnn) == pytest.approx(400, rel=0.02)
    assert crossover(cnn, vit) is None  # after 400 the CNN never wins again
    assert crossover(Curve(0.01, 0.1, 0.5), cnn) == 0.0  # better everywhere
