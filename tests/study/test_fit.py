import math

import numpy as np
import pytest
from scipy.optimize import nnls

from lowdata.study import fit
from lowdata.study.fit import Curve, crossover, fit_curve, fit_learning_curve, interval, multiplier

SIZES = np.array([50, 100, 200, 400, 800, 1600, 3200], dtype=float)


def seed_curves(curve, sizes=SIZES, seeds=3, v0=1e-5, v1=0.02, rng=None):
    """(seeds, sizes) errors around `curve`, with the heteroscedastic spread var(n) = v0 + v1/n of real runs."""
    rng = rng or np.random.default_rng(0)
    return curve.error(sizes)[None, :] + rng.standard_normal((seeds, len(sizes))) * np.sqrt(v0 + v1 / sizes)


@pytest.mark.parametrize("true", [Curve(0.10, 2.0, 0.5), Curve(0.25, 5.0, 0.8), Curve(0.05, 0.6, 0.25)])
def test_fit_recovers_known_parameters_from_heteroscedastic_noise(true):
    # 30 repeats of 7 sizes x 3 seeds, noise 2 points at 50 labels, 0.4 at 3,200: the median fit lies within
    # these tolerances of the truth (the prior pulls a shallow c = 0.25 up to about 0.30, and a with it)
    rng = np.random.default_rng(1)
    found = [fit_learning_curve(SIZES, seed_curves(true, rng=rng), replicates=0).curve for _ in range(30)]
    assert np.median([f.a for f in found]) == pytest.approx(true.a, abs=0.025)
    assert np.median([f.c for f in found]) == pytest.approx(true.c, abs=0.06)
    worst = [np.abs(f.error(SIZES) - true.error(SIZES)).max() for f in found]
    assert np.percentile(worst, 90) < 0.02  # the fitted curve stays within 2 points over the measured sizes


def test_exact_curve_is_fitted_exactly():
    true = Curve(0.2, 3.0, 0.6)
    found = fit_curve(SIZES, [np.array([true.error(n)]) for n in SIZES])
    assert found.c == pytest.approx(0.6, abs=0.003) and found.a == pytest.approx(0.2, abs=1e-3)


def test_the_prior_pulls_an_undetermined_exponent_towards_one_half():
    # three noisy sizes cannot tell c from a: without the prior c runs off towards a bound of the grid
    rng = np.random.default_rng(3)
    sizes = np.array([100, 200, 400.0])
    matrices = [seed_curves(Curve(0.1, 2.0, 0.5), sizes, v1=0.05, rng=rng) for _ in range(40)]
    free = [fit_learning_curve(sizes, m, prior=0.0, replicates=0).curve.c for m in matrices]
    held = [fit_learning_curve(sizes, m, replicates=0).curve.c for m in matrices]
    assert np.mean(np.abs(np.array(held) - 0.5)) < 0.5 * np.mean(np.abs(np.array(free) - 0.5))


def test_nonnegative_line_matches_scipy_nnls():
    rng = np.random.default_rng(4)
    for _ in range(200):
        x, y, w = rng.uniform(0, 1, 6), rng.normal(0, 1, 6), rng.uniform(0.1, 3, 6)
        a, b, residual = fit.nonnegative_line(w.sum(), (w * x).sum(), (w * y).sum(), (w * x * x).sum(),
                                              (w * x * y).sum(), (w * y * y).sum())
        (a_ref, b_ref), norm = nnls(np.stack([np.ones(6), x], 1) * np.sqrt(w)[:, None], y * np.sqrt(w))
        assert residual == pytest.approx(norm ** 2, abs=1e-9)
        assert (a, b) == pytest.approx((a_ref, b_ref), abs=1e-6)


def test_variance_model_recovers_its_parameters_from_exact_variances():
    sizes = np.array([25, 100, 400, 1600.0])
    v0, v1 = fit.variance_from_seeds(sizes, (2e-4 + 0.05 / sizes)[None, :], np.full((1, 4), 2))
    assert v0[0] == pytest.approx(2e-4, rel=1e-6) and v1[0] == pytest.approx(0.05, rel=1e-6)


def test_variance_model_is_not_decided_by_the_smallest_size_alone():
    # sample variances of 3 seeds around var(n) = 1e-5 + 0.05/n (seed noise falling with n, as measured): over
    # many draws the weighted model is closer to the truth at every size, on a log scale, than the unweighted one
    rng = np.random.default_rng(5)
    truth = 1e-5 + 0.05 / SIZES
    weighted, unweighted = [], []
    for _ in range(300):
        variances = truth * rng.chisquare(2, (1, len(SIZES))) / 2
        v0, v1 = fit.variance_from_seeds(SIZES, variances, np.full((1, len(SIZES)), 2))
        weighted.append(np.abs(np.log((v0[0] + v1[0] / SIZES) / truth)).mean())
        (u0, u1), _ = nnls(np.stack([np.ones_like(SIZES), 1 / SIZES], 1), variances[0])
        unweighted.append(np.abs(np.log(np.maximum(u0 + u1 / SIZES, 1e-12) / truth)).mean())
    assert np.mean(weighted) < 0.8 * np.mean(unweighted)


def test_bounds_are_reported():
    # the data keep falling fast and flatten at zero error: a = 0 and, without the prior, c at the grid maximum
    sizes = np.array([10, 20, 40, 80.0])
    steep = fit_learning_curve(sizes, (3.0 * sizes ** -1.5)[None, :], prior=0.0, replicates=0)
    assert steep.curve.a == 0 and steep.curve.c == fit.EXPONENTS[-1]
    assert any(b.startswith("a = 0") for b in steep.at_bound)
    assert any("grid's maximum" in b for b in steep.at_bound)
    assert fit_learning_curve(SIZES, seed_curves(Curve(0.1, 2.0, 0.5)), replicates=0).at_bound == []


def coverage(experiments: int, seeds: int, sizes: np.ndarray) -> tuple[float, float]:
    """Share of seeded synthetic experiments whose 90 % interval for the error at twice the largest size
    covers the truth, and the intervals' median width."""
    rng = np.random.default_rng(7)
    hits, widths = 0, []
    for index in range(experiments):
        true = Curve(rng.uniform(0.05, 0.3), rng.uniform(1.0, 6.0), rng.uniform(0.3, 0.7))
        matrix = seed_curves(true, sizes, seeds, v0=rng.uniform(1e-5, 1e-4), v1=rng.uniform(0.05, 0.5), rng=rng)
        fitted = fit_learning_curve(sizes, matrix, seed=index, replicates=200)
        low, high = interval([float(c.error(2 * sizes[-1])) for c in fitted.replicates])
        hits += low <= true.error(2 * sizes[-1]) <= high
        widths.append(high - low)
    return hits / experiments, float(np.median(widths))


def test_intervals_hold_their_coverage_with_five_sizes_and_three_seeds():
    covered, width = coverage(200, 3, np.array([50, 100, 200, 400, 800.0]))
    print(f"coverage {covered:.3f}, median width {width:.4f}")
    assert covered >= 0.8
    assert width < 0.15  # and they are not simply as wide as the error range


def test_intervals_hold_their_coverage_with_one_seed_and_five_sizes():
    covered, _ = coverage(100, 1, np.array([50, 100, 200, 400, 800.0]))
    assert covered >= 0.8


def test_three_sizes_and_one_seed_give_no_interval_but_say_why():
    sizes = np.array([100, 300, 1000.0])
    fitted = fit_learning_curve(sizes, seed_curves(Curve(0.1, 2.0, 0.5), sizes, seeds=1))
    assert fitted.replicates is None
    assert fitted.note.startswith("interval not estimable: add seeds")
    assert fit_learning_curve(sizes, seed_curves(Curve(0.1, 2.0, 0.5), sizes, seeds=2)).replicates


def test_fewer_than_three_sizes_are_refused():
    with pytest.raises(ValueError, match="at least 3 sizes"):
        fit_learning_curve(np.array([10, 20.0]), np.ones((2, 2)))


def test_whole_seed_curves_are_resampled_and_reproducibly():
    matrix = seed_curves(Curve(0.1, 2.0, 0.5), seeds=4)
    drawn = fit.resample_seed_curves(matrix, 50, np.random.default_rng(0))
    means = matrix.mean(0)
    # each replicate row is one original seed's deviations, rescaled by a single factor per replicate
    for replicate in drawn:
        ratio = (replicate - means) / (matrix[:, None, :] - means)  # (original seed, row, size)
        assert any(np.allclose(ratio[k, row], ratio[k, row, 0]) for row in range(4) for k in range(4))
    a = fit_learning_curve(SIZES, matrix, seed=3, replicates=50)
    b = fit_learning_curve(SIZES, matrix, seed=3, replicates=50)
    assert [c.c for c in a.replicates] == [c.c for c in b.replicates]


def test_missing_cells_leave_holes_not_zeros():
    matrix = seed_curves(Curve(0.1, 2.0, 0.5))
    holed = matrix.copy()
    holed[2, 3] = np.nan  # seed 2 never finished size 400
    fitted = fit_learning_curve(SIZES, holed, replicates=100)
    assert abs(fitted.curve.error(400) - np.nanmean(holed[:, 3])) < 0.02
    assert all(np.isfinite(c.a) for c in fitted.replicates)


def test_holdout_prediction_is_at_least_as_good_as_the_unpenalised_equally_weighted_fit():
    # fit 5 sizes of 3 seeds, predict the 6th (twice the largest): mean absolute error over 200 synthetic curves
    rng = np.random.default_rng(11)
    sizes = np.array([50, 100, 200, 400, 800, 1600.0])
    new, old = [], []
    for _ in range(200):
        true = Curve(rng.uniform(0.05, 0.3), rng.uniform(1.0, 6.0), rng.uniform(0.2, 0.8))
        matrix = seed_curves(true, sizes, 3, v0=rng.uniform(1e-5, 1e-4), v1=rng.uniform(0.05, 0.5), rng=rng)
        target = matrix[:, -1].mean()
        found = fit_learning_curve(sizes[:-1], matrix[:, :-1], replicates=0).curve
        a, b, c = fit.fit_means(sizes[:-1], matrix[:, :-1].mean(0)[None], np.ones((1, 5)), prior=0.0)
        new.append(abs(found.error(sizes[-1]) - target))
        old.append(abs(a[0] + b[0] * sizes[-1] ** -c[0] - target))
    print(f"hold-out mean absolute error: {np.mean(new):.4f} (new) vs {np.mean(old):.4f} (equal weights, no prior)")
    assert np.mean(new) <= np.mean(old)


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
