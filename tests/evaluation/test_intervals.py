"""Confidence intervals stay inside each metric's range (the plain t interval gave accuracy up to 1.142)."""

import numpy as np
import pytest
from scipy import stats

from brainharmonix_hf.evaluation.statistics import summarise

# Per-split accuracies of a small cohort (9 splits, 4 test subjects each) that put the plain interval above 1.
NEAR_PERFECT = np.array([1.0, 1.0, 0.5, 1.0, 1.0, 0.75, 1.0, 1.0, 1.0])


def plain_interval(values, n_train, n_test):
    half = stats.t.ppf(0.975, values.size - 1) * np.sqrt((1 / values.size + n_test / n_train) * values.var(ddof=1))
    return values.mean() - half, values.mean() + half


def test_accuracy_interval_stays_below_one():
    assert plain_interval(NEAR_PERFECT, 8, 4)[1] > 1.1  # what the old report printed
    summary = summarise(NEAR_PERFECT, n_train=8, n_test=4, metric="accuracy")
    assert 0.0 < summary["ci_low"] < summary["mean"] < summary["ci_high"] < 1.0
    assert summary["mean"] == pytest.approx(NEAR_PERFECT.mean())


@pytest.mark.parametrize(
    ("metric", "values", "low", "high"),
    [
        ("auroc", 1 - NEAR_PERFECT * 0.999, 0.0, 1.0),  # near 0
        ("pearson_r", np.array([0.99, 0.5, 0.98, 0.97, 0.2]), -1.0, 1.0),
        ("pearson_r", -np.array([0.99, 0.5, 0.98, 0.97, 0.2]), -1.0, 1.0),
        ("mae", np.array([0.01, 0.5, 0.02, 0.01, 0.03]), 0.0, np.inf),
        ("mse", np.array([0.001, 0.4, 0.002, 0.001, 0.003]), 0.0, np.inf),
    ],
)
def test_every_interval_inside_the_range(metric, values, low, high):
    plain_low, plain_high = plain_interval(values, 20, 5)
    assert plain_low < low or plain_high > high  # the plain interval leaves the range here
    summary = summarise(values, n_train=20, n_test=5, metric=metric)
    assert low < summary["ci_low"] < summary["mean"] < summary["ci_high"] < high


def test_interval_near_the_middle_matches_the_plain_one_and_constant_values_collapse():
    values = np.array([0.49, 0.51, 0.5, 0.52, 0.48])
    summary = summarise(values, n_train=80, n_test=20, metric="accuracy")
    assert (summary["ci_low"], summary["ci_high"]) == pytest.approx(plain_interval(values, 80, 20), abs=2e-4)
    assert summarise(np.ones(4), 8, 2, "accuracy") == {"mean": 1.0, "sd": 0.0, "ci_low": 1.0, "ci_high": 1.0}
