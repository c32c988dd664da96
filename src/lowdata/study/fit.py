"""Learning-curve fits: error(n) = a + b * n^(-c), by weighted least squares, with bootstrap intervals.

The method follows Hoiem et al., "Learning Curves for Analysis of Deep Networks" (ICML 2021): the exponent
is searched on a grid in a bounded range and, for each exponent, (a, b) solve a weighted, non-negative
least-squares problem; weights come from a variance model var(n) = v0 + v1/n fitted to the spread across
seeds. Re-implemented here (it exists only as a stand-alone script); scipy supplies the NNLS solver.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

EXPONENTS = np.linspace(0.02, 1.0, 491)  # the "sane range" for c; Hoiem et al. search gamma in [-1, 0]
BOOTSTRAPS = 200
SEARCH_SIZES = np.logspace(0, 9, 2000)  # where crossovers are looked for: 1 to 10^9 labels


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


def fit_curve(sizes: np.ndarray, errors: list[np.ndarray]) -> Curve:
    """`errors[i]` holds the per-seed test errors at `sizes[i]`."""
    from scipy.optimize import nnls

    sizes = np.asarray(sizes, dtype=float)
    means = np.array([np.mean(e) for e in errors])
    weights = np.sqrt(mean_weights(sizes, errors))
    best = None
    for c in EXPONENTS:
        design = np.stack([np.ones_like(sizes), sizes ** -c], axis=1) * weights[:, None]
        (a, b), residual = nnls(design, means * weights)
        if best is None or residual < best[0] - 1e-15:
            best = (residual, Curve(float(a), float(b), float(c)))
    return best[1]


def mean_weights(sizes: np.ndarray, errors: list[np.ndarray]) -> np.ndarray:
    """1 / variance of each size's mean error, from the variance model v0 + v1/n (equal weights when
    there is only one seed, or no spread at all)."""
    from scipy.optimize import nnls

    counts = np.array([len(e) for e in errors], dtype=float)
    if counts.min() < 2:
        return np.ones_like(sizes)
    variances = np.array([np.var(e, ddof=1) for e in errors])
    (v0, v1), _ = nnls(np.stack([np.ones_like(sizes), 1.0 / sizes], axis=1), variances)
    modelled = v0 + v1 / sizes
    if modelled.max() <= 0:
        return np.ones_like(sizes)
    floor = 1e-3 * modelled.max()  # no size may weigh more than a thousand times another
    return counts / np.maximum(modelled, floor)


def bootstrap_errors(errors: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """One bootstrap replicate: the seeds at each size drawn again with replacement."""
    return [e[rng.integers(0, len(e), len(e))] for e in errors]


def bootstrap_curves(sizes: np.ndarray, errors: list[np.ndarray], seed: int = 0,
                     replicates: int = BOOTSTRAPS) -> list[Curve]:
    """Refits on resampled data. With a single seed per size there is no spread to resample, so the fit's
    residuals are redrawn across sizes instead."""
    rng = np.random.default_rng(seed)
    if min(len(e) for e in errors) >= 2:
        return [fit_curve(sizes, bootstrap_errors(errors, rng)) for _ in range(replicates)]
    fitted = fit_curve(sizes, errors)
    means = np.array([np.mean(e) for e in errors])
    residuals = means - fitted.error(np.asarray(sizes, float))
    return [fit_curve(sizes, [np.array([m]) for m in fitted.error(np.asarray(sizes, float)) +
                              rng.choice(residuals, len(residuals))]) for _ in range(replicates)]


def interval(values: list[float], level: float = 0.9) -> tuple[float, float]:
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
