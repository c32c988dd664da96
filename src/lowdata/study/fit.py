"""Learning-curve fits: error(n) = a + b * n^(-c), weighted by a variance model, with a prior on c and intervals.

The method is that of Hoiem et al., "Learning Curves for Analysis of Deep Networks" (ICML 2021):
- each size's mean error is weighted by 1 / var(n), where var(n) = v0 + v1/n is the per-seed variance, smoothed
  over sizes (the raw spread of three seeds is too noisy to weight by);
- the exponent c is searched on a grid and penalised towards 0.5 (their coefficient, 5, on a chi-square
  objective), because short curves cannot tell c from the asymptote a and an unpenalised search runs to the
  grid's bound;
- (a, b) solve the weighted least-squares problem for each c, here with a >= 0 and b >= 0; a fit that lands
  on a bound says so.
Their code is a research script, not a library, so it is re-implemented here, vectorised over the exponent grid
and over bootstrap replicates so that intervals cost milliseconds.

Intervals resample what is random in the experiment. With two or more seeds, whole seed-curves are drawn with
replacement (a seed fixes the label subset and the initialisation at every size, so its errors go together),
their deviations widened by sqrt(m / (m - 1)) so that m seeds' resampled spread is unbiased. With one seed, the
variance model comes from the fit's residuals, and curves are simulated from it (a parametric bootstrap whose
noise scale is itself drawn from its chi-square uncertainty). Three sizes and one seed leave no residual freedom:
no interval is given.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

EXPONENTS = np.round(np.arange(0.01, 1.0 + 1e-9, 0.005), 3)  # the "sane range" for c, as in Hoiem et al.
PRIOR_CENTRE = 0.5
PRIOR_STRENGTH = 5.0  # Hoiem et al.'s coefficient; 0 turns the prior off
VARIANCE_FLOOR = 1e-5  # per-seed error variance never modelled below a 0.3-point standard deviation
BOOTSTRAPS = 400
LEVEL = 0.9
SEARCH_SIZES = np.logspace(0, 9, 2000)  # where crossovers are looked for: 1 to 10^9 labels
NOT_ESTIMABLE = "interval not estimable: add seeds (one seed and three sizes leave no spread to measure)"


@dataclass(frozen=True)
class Curve:
    a: float  # error the curve tends to with unlimited labels
    b: float
    c: float  # how fast error falls with more labels

    def error(self, n: float | np.ndarray) -> float | np.ndarray:
        return self.a + self.b * np.power(n, -self.c)

    def size_for_error(self, error: float) -> float:
        """Labels needed to reach `error`; inf when the curve never gets there."""
        if error <= self.a or self.b <= 0:
            return math.inf
        return float(((error - self.a) / self.b) ** (-1.0 / self.c))


@dataclass(frozen=True)
class Fit:
    curve: Curve
    variance: tuple[float, float]  # (v0, v1) of the per-seed variance model
    variance_source: str  # "seeds" or "residuals"
    at_bound: list[str]  # parameters the fit pinned at a bound, e.g. "a = 0", "c = 1.0 (grid maximum)"
    replicates: list[Curve] | None  # bootstrap curves; None when no interval can be estimated
    interval_method: str | None = None
    note: str | None = None


def seed_matrix(sizes: np.ndarray, errors: list[np.ndarray]) -> np.ndarray:
    """(seeds, sizes) matrix of errors, NaN where a seed has no finished cell at a size. Without seed ids the
    i-th error at each size is taken to be seed i's."""
    width = max(len(e) for e in errors)
    matrix = np.full((width, len(sizes)), np.nan)
    for column, values in enumerate(errors):
        matrix[: len(values), column] = values
    return matrix


def fit_curve(sizes: np.ndarray, errors: list[np.ndarray], prior: float = PRIOR_STRENGTH) -> Curve:
    """`errors[i]` holds the per-seed test errors at `sizes[i]`."""
    return fit_learning_curve(sizes, seed_matrix(np.asarray(sizes, float), errors), prior, replicates=0).curve


def fit_learning_curve(sizes: np.ndarray, matrix: np.ndarray, prior: float = PRIOR_STRENGTH,
                       replicates: int = BOOTSTRAPS, seed: int = 0) -> Fit:
    """Fit one recipe: `matrix[k, i]` is seed k's error at `sizes[i]` (NaN: not measured)."""
    sizes = np.asarray(sizes, dtype=float)
    if len(sizes) < 3:
        raise ValueError(f"a curve a + b*n^-c needs at least 3 sizes, got {len(sizes)}")
    matrix = np.asarray(matrix, dtype=float)[None]  # one "replicate": the data itself
    a, b, c, v0, v1 = fit_replicates(sizes, matrix, prior)
    curve = Curve(float(a[0]), float(b[0]), float(c[0]))
    counts = np.sum(~np.isnan(matrix[0]), axis=0)
    source = "seeds" if counts.max() >= 2 else "residuals"
    at_bound = bounds_hit(curve)
    if replicates <= 0:
        return Fit(curve, (float(v0[0]), float(v1[0])), source, at_bound, None)
    rng = np.random.default_rng(seed)
    if source == "seeds":
        drawn = resample_seed_curves(matrix[0], replicates, rng)
        method = f"{replicates} resamples of whole seed-curves"
    elif len(sizes) > 3:
        drawn = simulate_single_seed(sizes, curve, float(v1[0]), replicates, rng)
        method = f"{replicates} curves simulated from the residual variance model"
    else:
        return Fit(curve, (float(v0[0]), float(v1[0])), source, at_bound, None, note=NOT_ESTIMABLE)
    ra, rb, rc, _, _ = fit_replicates(sizes, drawn, prior)
    usable = np.isfinite(ra)
    curves = [Curve(float(x), float(y), float(z)) for x, y, z in zip(ra[usable], rb[usable], rc[usable])]
    return Fit(curve, (float(v0[0]), float(v1[0])), source, at_bound, curves, method)


def bounds_hit(curve: Curve) -> list[str]:
    hit = []
    if curve.a == 0:
        hit.append("a = 0 (the asymptote's lower bound)")
    if curve.b == 0:
        hit.append("b = 0 (a flat curve)")
    if curve.c <= EXPONENTS[0]:
        hit.append(f"c = {EXPONENTS[0]} (the exponent grid's minimum)")
    if curve.c >= EXPONENTS[-1]:
        hit.append(f"c = {EXPONENTS[-1]} (the exponent grid's maximum)")
    return hit


def fit_replicates(sizes: np.ndarray, matrices: np.ndarray, prior: float
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fit every (seeds, sizes) matrix in `matrices` (shape R x K x S) at once; returns a, b, c, v0, v1 (each
    R long; NaN for a replicate with fewer than 3 measured sizes)."""
    present = ~np.isnan(matrices)
    counts = present.sum(axis=1)  # (R, S)
    values = np.where(present, matrices, 0.0)
    means = values.sum(axis=1) / np.maximum(counts, 1)
    squares = (np.where(present, matrices - means[:, None, :], 0.0) ** 2).sum(axis=1)
    dof = np.maximum(counts - 1, 0)
    measured = counts > 0
    if (dof > 0).any():
        v0, v1 = variance_from_seeds(sizes, squares / np.maximum(dof, 1), dof)
        a, b, c = fit_means(sizes, means, measured / (v0[:, None] + v1[:, None] / sizes), prior)
    else:
        a, b, c, v0, v1 = fit_with_residual_variance(sizes, means, measured, prior)
    bad = measured.sum(axis=1) < 3
    return tuple(np.where(bad, np.nan, x) for x in (a, b, c, v0, v1))  # type: ignore[return-value]


def fit_means(sizes: np.ndarray, means: np.ndarray, weights: np.ndarray, prior: float
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimise sum_i w_i (mean_i - a - b n_i^-c)^2 + prior * |c - 0.5| over the grid of c, a >= 0, b >= 0,
    for each row of `means` / `weights` (R x S)."""
    x = sizes[None, :] ** -EXPONENTS[:, None]  # (G, S)
    w, y = weights[:, None, :], means[:, None, :]  # (R, 1, S)
    sums = dict(sw=w.sum(-1), sx=(w * x).sum(-1), sy=(w * y).sum(-1), sxx=(w * x * x).sum(-1),
                sxy=(w * x * y).sum(-1), syy=(w * y * y).sum(-1))
    a, b, residual = nonnegative_line(**sums)  # each (R, G)
    objective = residual + prior * np.abs(EXPONENTS - PRIOR_CENTRE)[None, :]
    best = np.argmin(objective, axis=1)
    rows = np.arange(len(best))
    return a[rows, best], b[rows, best], EXPONENTS[best]


def nonnegative_line(sw, sx, sy, sxx, sxy, syy):
    """Weighted least squares of y on a + b*x with a >= 0, b >= 0, from the weighted sums (any shape). The
    problem is convex, so the answer is the unconstrained optimum when it is feasible, else the better of the
    two edges a = 0 and b = 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        det = sw * sxx - sx * sx
        b_free = (sw * sxy - sx * sy) / det
        a_free = (sy - b_free * sx) / sw
        b_edge = np.maximum(np.where(sxx > 0, sxy / sxx, 0.0), 0.0)  # a = 0
        a_edge = np.maximum(np.where(sw > 0, sy / sw, 0.0), 0.0)  # b = 0

    def residual(a, b):
        return syy - 2 * a * sy - 2 * b * sxy + a * a * sw + 2 * a * b * sx + b * b * sxx

    feasible = (det > 1e-12 * sw * sxx) & (a_free >= 0) & (b_free >= 0)
    free = np.where(feasible, residual(np.where(feasible, a_free, 0), np.where(feasible, b_free, 0)), np.inf)
    on_a, on_b = residual(0.0, b_edge), residual(a_edge, 0.0)
    a = np.where(free <= np.minimum(on_a, on_b), a_free, np.where(on_a <= on_b, 0.0, a_edge))
    b = np.where(free <= np.minimum(on_a, on_b), b_free, np.where(on_a <= on_b, b_edge, 0.0))
    return a, b, np.maximum(np.minimum(free, np.minimum(on_a, on_b)), 0.0)


def variance_from_seeds(sizes: np.ndarray, variances: np.ndarray, dof: np.ndarray, rounds: int = 5
                        ) -> tuple[np.ndarray, np.ndarray]:
    """v0 >= floor and v1 >= 0 of var(n) = v0 + v1/n fitted to the sample variances (R x S). A sample variance
    with d degrees of freedom has variance 2 var^2 / d, so each size is weighted by d / var(n)^2 (iterated
    from equal weights); the unweighted fit let the noisy, large variance of the smallest size decide."""
    x = np.broadcast_to(1.0 / sizes, variances.shape)
    y = variances - VARIANCE_FLOOR
    model = np.broadcast_to(np.maximum((variances * dof).sum(1, keepdims=True) /
                                       np.maximum(dof.sum(1, keepdims=True), 1), VARIANCE_FLOOR), variances.shape)
    for _ in range(rounds):
        w = dof / model ** 2
        a, b, _ = nonnegative_line((w).sum(1), (w * x).sum(1), (w * y).sum(1), (w * x * x).sum(1),
                                   (w * x * y).sum(1), (w * y * y).sum(1))
        model = VARIANCE_FLOOR + a[:, None] + b[:, None] * x
    return VARIANCE_FLOOR + a, b


def fit_with_residual_variance(sizes: np.ndarray, means: np.ndarray, measured: np.ndarray, prior: float,
                               rounds: int = 3):
    """One seed: var(n) = floor + v1/n with v1 from the fit's residuals (moment estimate on S - 3 degrees of
    freedom), refitted with those weights. With exactly 3 sizes the residuals are ~0 and v1 stays 0."""
    free = np.maximum(measured.sum(1) - 3, 0)
    v1 = np.zeros(len(means))
    weights = measured * 1.0
    for _ in range(rounds):
        a, b, c = fit_means(sizes, means, weights, prior)
        residuals = means - (a[:, None] + b[:, None] * sizes[None, :] ** -c[:, None])
        v1 = np.where(free > 0, (measured * residuals ** 2 * sizes).sum(1) / np.maximum(free, 1), 0.0)
        weights = measured / (VARIANCE_FLOOR + v1[:, None] / sizes)
    a, b, c = fit_means(sizes, means, weights, prior)
    return a, b, c, np.full(len(means), VARIANCE_FLOOR), v1


def resample_seed_curves(matrix: np.ndarray, replicates: int, rng: np.random.Generator) -> np.ndarray:
    """R x K x S: K whole seed-curves drawn with replacement, deviations from each size's mean widened by
    sqrt(m / (m - 1)) (m = that size's seeds), the usual correction for the bootstrap's shrunken spread."""
    present = ~np.isnan(matrix)
    counts = present.sum(0)
    means = np.nanmean(np.where(present, matrix, np.nan), axis=0) if present.any() else np.zeros(matrix.shape[1])
    widen = np.sqrt(counts / np.maximum(counts - 1, 1))
    seeds = matrix.shape[0]
    picks = rng.integers(0, seeds, size=(replicates, seeds))
    # the spread of K seeds is itself known on K - 1 degrees of freedom: each replicate's deviations are
    # scaled by a draw of that uncertainty, which turns the bootstrap's normal-like interval into a t-like one
    scale = np.sqrt((seeds - 1) / rng.chisquare(seeds - 1, size=(replicates, 1, 1)))
    return means + (matrix[picks] - means) * widen * scale  # NaN stays NaN


def simulate_single_seed(sizes: np.ndarray, curve: Curve, v1: float, replicates: int,
                         rng: np.random.Generator) -> np.ndarray:
    """R x 1 x S: one simulated seed-curve per replicate around the fit. The noise scale is drawn from its own
    uncertainty (v1 estimated on S - 3 degrees of freedom: scaled chi-square), so that few sizes give wide
    intervals rather than falsely confident ones."""
    free = len(sizes) - 3
    scale = free / rng.chisquare(free, size=(replicates, 1))
    std = np.sqrt((VARIANCE_FLOOR + v1 * scale / sizes[None, :]))
    simulated = curve.error(sizes)[None, :] + rng.standard_normal((replicates, len(sizes))) * std
    return simulated[:, None, :]


def interval(values: list[float], level: float = LEVEL) -> tuple[float, float]:
    """Central percentile interval; infinities (a curve that never gets there) count as large values."""
    array = np.array(values, dtype=float)
    low, high = np.percentile(array, [50 * (1 - level), 50 * (1 + level)], method="nearest")
    return float(low), float(high)


def crossover(challenger: Curve, reference: Curve) -> float | None:
    """Smallest n from which `challenger` has lower error than `reference` for good (None: never under the
    fits, up to 10^9 labels; 0.0: already lower at one label)."""
    better = challenger.error(SEARCH_SIZES) < reference.error(SEARCH_SIZES)
    if better.all():
        return 0.0
    if not better[-1]:
        return None
    last_worse = np.nonzero(~better)[0][-1]
    return float(SEARCH_SIZES[last_worse + 1])


def multiplier(remedy: Curve, baseline: Curve, n: float) -> float:
    """How many times more labels than `n` the baseline needs to match the remedy's error at `n`."""
    return baseline.size_for_error(float(remedy.error(n))) / n
