# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Summaries of a metric over repeated splits: mean, sd, a confidence interval inside the metric's range, and the
paired test between two models on the same splits.

The J = repeats × folds splits share training data, so their values are not independent: the variance of the mean is
the Nadeau & Bengio (2003) corrected `(1/J + n_test/n_train) · sd²` rather than `sd²/J`.

Interval. A plain `mean ± t · se` can leave the metric's range (an accuracy interval up to 1.14). The interval is built
on a scale where the metric is unbounded and mapped back: logit for metrics in [0, 1] (accuracy, balanced accuracy,
F1, AUROC, identification accuracy), Fisher z (artanh) for correlations in [-1, 1], log for errors in [0, ∞). With
`g` the transform, `se` the corrected standard error and `t = t(0.975, J - 1)`:
`[g⁻¹(g(mean) - t · se · g'(mean)), g⁻¹(g(mean) + t · se · g'(mean))]` (the delta-method standard error on the
transformed scale). It always holds the mean, stays strictly inside the range, and is close to the plain interval
when the mean is far from the bounds. When every split gives the same value the interval is that value.

Paired test: the corrected resampled t-test of Nadeau & Bengio on the per-split differences (two-sided, J - 1 degrees
of freedom).
"""

import math

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
INTERVAL_METHOD = (
    "95% t interval (J - 1 degrees of freedom) with the Nadeau-Bengio corrected variance "
    "(1/J + n_test/n_train) * sd^2, computed on the logit scale for metrics in [0, 1], the Fisher z scale for "
    "correlations and the log scale for errors (delta-method standard error), then mapped back, so it stays inside "
    "the metric's range"
)
PAIRED_TEST_METHOD = "corrected resampled t-test (Nadeau & Bengio 2003) on per-split metric differences, two-sided"

# (transform, its inverse, its derivative) by the range of a metric's values.
_TRANSFORMS = {
    "unit": (lambda x: math.log(x / (1 - x)), lambda y: 1 / (1 + math.exp(-y)), lambda x: 1 / (x * (1 - x))),
    "correlation": (math.atanh, math.tanh, lambda x: 1 / (1 - x * x)),
    "positive": (math.log, math.exp, lambda x: 1 / x),
}
METRIC_RANGES = {
    "accuracy": "unit",
    "balanced_accuracy": "unit",
    "f1": "unit",
    "auroc": "unit",
    "identification_accuracy": "unit",
    "pearson_r": "correlation",
    "mse": "positive",
    "mae": "positive",
}
LOWER_IS_BETTER = frozenset({"mse", "mae", "mean_rank"})


def summarise(values, n_train: float, n_test: float, metric: str) -> dict[str, float]:
    """Mean, sd and the 95% interval of one metric over the splits (see the module docstring).

    Args:
        values: the metric on each split.
        n_train, n_test: mean training (training + validation) and test set sizes of the splits.
        metric: its name, which selects the transform (`METRIC_RANGES`).
    """
    values = np.asarray(values, dtype=np.float64)
    count = values.size
    mean = float(values.mean())
    sd = float(values.std(ddof=1)) if count > 1 else float("nan")
    if sd == 0.0:
        return {"mean": mean, "sd": sd, "ci_low": mean, "ci_high": mean}
    transform, inverse, derivative = _TRANSFORMS[METRIC_RANGES[metric]]
    if not math.isfinite(mean) or not math.isfinite(sd):
        return {"mean": mean, "sd": sd, "ci_low": float("nan"), "ci_high": float("nan")}
    standard_error = math.sqrt((1 / count + n_test / n_train) * sd**2)
    half_width = stats.t.ppf(0.5 + CONFIDENCE / 2, count - 1) * standard_error * derivative(mean)
    centre = transform(mean)
    return {"mean": mean, "sd": sd, "ci_low": inverse(centre - half_width), "ci_high": inverse(centre + half_width)}


def corrected_paired_t_test(first, second, n_train: float, n_test: float) -> dict[str, float]:
    """Nadeau-Bengio corrected resampled t-test of `first - second` over the same splits (two-sided)."""
    differences = np.asarray(first, dtype=np.float64) - np.asarray(second, dtype=np.float64)
    count = differences.size
    mean = float(differences.mean())
    variance = float(differences.var(ddof=1))
    corrected = (1 / count + n_test / n_train) * variance
    if corrected == 0.0:
        t_value = 0.0 if mean == 0.0 else math.copysign(math.inf, mean)
    else:
        t_value = mean / math.sqrt(corrected)
    p_value = float(2 * stats.t.sf(abs(t_value), count - 1))
    return {"mean_difference": mean, "t": t_value, "df": count - 1, "p_value": p_value}


__all__ = [
    "INTERVAL_METHOD",
    "LOWER_IS_BETTER",
    "METRIC_RANGES",
    "PAIRED_TEST_METHOD",
    "corrected_paired_t_test",
    "summarise",
]
