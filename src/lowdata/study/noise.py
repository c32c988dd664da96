"""What a study's test set can tell apart: the binomial noise of an accuracy measured on n test images, beside the
seeds' spread. 48 test images measure 40 % to within ±12 points (90 % interval): two recipes 10 points apart on
them are not told apart, and neither is a recipe at 43 % from guessing among three classes.

Hand-written because it is three lines of the normal approximation and Wilson's score interval (statsmodels'
proportion_confint computes the same but would be a dependency for one formula)."""
from __future__ import annotations

import math
from typing import Any

Z90 = 1.645  # the report's intervals are 90 % intervals
TWO_SE = 2.0  # a difference under two standard errors of itself is not told apart from noise
FLOOR = 0.02  # never call a difference under 2 points a difference, however large the test set


def binomial_se(accuracy: float, test_images: int | None) -> float:
    """The standard error of an accuracy measured on `test_images` images (0 when the count is unknown)."""
    if not test_images:
        return 0.0
    return math.sqrt(max(accuracy * (1 - accuracy), 0.0) / test_images)


def wilson(accuracy: float, test_images: int, z: float = Z90) -> tuple[float, float]:
    """Wilson's score interval for an accuracy on `test_images` images (sound near 0 and 1, unlike p ± z·se)."""
    n = test_images
    centre = (accuracy + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(accuracy * (1 - accuracy) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def noise_of(measured: dict[str, Any]) -> float:
    """One size's noise as a standard error: the seeds' spread and the test set's binomial noise together."""
    accuracy = 1 - measured["error_mean"]
    seeds = measured["error_std"] if measured["seeds"] > 1 else 0.0
    return math.hypot(seeds, binomial_se(accuracy, measured.get("test_images")))


def knows_noise(measured: dict[str, Any]) -> bool:
    """Whether anything measures this size's noise: several seeds, or the test set's size."""
    return measured["seeds"] > 1 or bool(measured.get("test_images"))


def sources(measured: dict[str, Any]) -> str:
    """Whose noise a size's comparison read, in the Answer's words."""
    said = (["the seeds'"] if measured["seeds"] > 1 else []) + \
        (["the test set's"] if measured.get("test_images") else [])
    return " and ".join(said) or "no"


def within_noise(best: dict[str, Any], other: dict[str, Any]) -> bool | None:
    """Whether `other`'s mean error is within the noise of `best`'s (the seeds' spreads and the test set's
    binomial noise); None when neither is measured (one seed, test set size unknown)."""
    if not (knows_noise(best) and knows_noise(other)):
        return None
    bound = max(TWO_SE * math.hypot(noise_of(best), noise_of(other)), FLOOR)
    return other["error_mean"] - best["error_mean"] <= bound


def near_chance(measured: dict[str, Any], chance: float) -> bool:
    """Accuracy within noise of guessing: less than two standard errors (the seeds' spread and a guesser's
    binomial noise on this test set), and at least 2 points, above chance."""
    guesser = binomial_se(chance, measured.get("test_images"))
    seeds = measured["error_std"] if measured["seeds"] > 1 else 0.0
    return (1 - measured["error_mean"]) - chance < max(TWO_SE * math.hypot(seeds, guesser), FLOOR)


def interval_text(measured: dict[str, Any]) -> str:
    """' [38.1%, 52.0%]': the 90 % binomial interval of the test set alone, or '' when its size is unknown."""
    n = measured.get("test_images")
    if not n:
        return ""
    low, high = wilson(1 - measured["error_mean"], int(n))
    return f" [{low:.1%}, {high:.1%}]"
