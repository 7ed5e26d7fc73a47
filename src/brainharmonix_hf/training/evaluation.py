# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Evaluation protocol: repeated stratified (optionally site-grouped) splits, whole-set metrics, intervals and a paired
test between models on the same splits.

Splits. Repeat r (seed `seed + r`) shuffles the subjects into `num_folds` stratified folds (`StratifiedKFold`; with
groups, `StratifiedGroupKFold`, so no group, e.g. a site, is in two parts of one split). Each fold is the test set
once; the rest is split again the same way into `num_validation_folds` folds, one of which is the validation set and
the others the training set. Regression targets are stratified by quantile bins. So every model sees the same
(train, validation, test) index triples.

Discipline. A model is fitted on the training set, its settings are chosen on the validation set only, and its
test-set predictions are asked for once per split; metrics are computed over the whole test set of the split.

Statistics, over the J = num_repeats × num_folds splits of one metric: mean and sample standard deviation; a 95%
confidence interval `mean ± t(0.975, J-1) · sqrt((1/J + n_test/n_train) · sd²)`, the Nadeau & Bengio (2003) corrected
variance, as the splits share training data (the plain `sd²/J` would be too narrow); n_train counts training and
validation subjects. Two models are compared with the corrected resampled t-test of Nadeau & Bengio on the
per-split differences (two-sided, J-1 degrees of freedom).
"""

import dataclasses
import math
from collections.abc import Callable, Mapping

import numpy as np
from scipy import stats
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
from sklearn.preprocessing import StandardScaler

from .metrics import CLASSIFICATION_METRICS, REGRESSION_METRICS, task_metrics

CONFIDENCE = 0.95
PROTOCOL_DESCRIPTION = {
    "splits": "repeated stratified k-fold (StratifiedGroupKFold when grouped); validation carved from the non-test "
    "part the same way; regression targets stratified by quantile bins",
    "model_selection": "on the validation set only; the test set is predicted once per split",
    "metrics": "computed over the whole test set of each split",
    "confidence_interval": "95% t interval with the Nadeau-Bengio corrected variance (1/J + n_test/n_train) * sd^2, "
    "J - 1 degrees of freedom",
    "paired_test": "corrected resampled t-test (Nadeau & Bengio 2003) on per-split metric differences, two-sided",
}


@dataclasses.dataclass(frozen=True)
class Split:
    """Index arrays of one split of a cohort (disjoint, covering it)."""

    repeat: int
    fold: int
    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray


Predictor = Callable[[Split], np.ndarray]


def stratification_target(labels: np.ndarray, regression: bool, num_bins: int = 5) -> np.ndarray:
    """Class labels, or quantile-bin indices of regression targets."""
    labels = np.asarray(labels)
    if not regression:
        return labels
    edges = np.quantile(labels.astype(np.float64), np.linspace(0, 1, num_bins + 1)[1:-1])
    return np.digitize(labels.astype(np.float64), edges)


def repeated_splits(
    labels,
    *,
    groups=None,
    num_repeats: int = 5,
    num_folds: int = 5,
    num_validation_folds: int = 4,
    seed: int = 0,
    regression: bool = False,
) -> list[Split]:
    """`num_repeats × num_folds` (train, validation, test) splits, stratified by label and grouped by `groups`.

    Args:
        labels: one label (or regression target) per subject.
        groups: one group (e.g. site) per subject, or `None`; a group never spans two parts of a split.
        num_repeats, num_folds: repeats of the outer k-fold and its folds (the test sets).
        num_validation_folds: the non-test part is cut the same way into this many folds; one is the validation set.
        seed: repeat r uses `seed + r`.
        regression: stratify continuous targets by quantile bins.
    """
    target = stratification_target(labels, regression)
    grouped = groups is not None
    groups = np.asarray(groups) if grouped else None

    def splitter(folds: int, random_state: int):
        kind = StratifiedGroupKFold if grouped else StratifiedKFold
        return kind(n_splits=folds, shuffle=True, random_state=random_state)

    splits = []
    for repeat in range(num_repeats):
        outer = splitter(num_folds, seed + repeat)
        for fold, (rest, test) in enumerate(outer.split(np.zeros(len(target)), target, groups)):
            inner = splitter(num_validation_folds, seed + repeat)
            train, validation = next(
                inner.split(np.zeros(len(rest)), target[rest], None if groups is None else groups[rest])
            )
            splits.append(Split(repeat, fold, np.sort(rest[train]), np.sort(rest[validation]), np.sort(test)))
    return splits


def summarise(values, n_train: float, n_test: float) -> dict[str, float]:
    """Mean, sd and the corrected 95% t interval of one metric over the splits (see the module docstring)."""
    values = np.asarray(values, dtype=np.float64)
    count = values.size
    mean = float(values.mean())
    sd = float(values.std(ddof=1)) if count > 1 else float("nan")
    half_width = stats.t.ppf(0.5 + CONFIDENCE / 2, count - 1) * math.sqrt((1 / count + n_test / n_train) * sd**2)
    return {"mean": mean, "sd": sd, "ci_low": mean - half_width, "ci_high": mean + half_width}


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


def run_protocol(
    splits: list[Split],
    labels,
    predictors: Mapping[str, Predictor],
    *,
    regression: bool = False,
    settings: Mapping | None = None,
) -> dict:
    """Score every predictor on every split and build the JSON-ready report.

    Args:
        splits: from `repeated_splits`.
        labels: class indices (or regression targets) of all subjects.
        predictors: name -> function of a `Split` returning the test-set scores: `(n_test, num_classes)` logits or
            probabilities, or `(n_test,)` regression predictions. It may read labels of the training and
            validation subjects only; it is called once per split.
        regression: regression metrics.
        settings: recorded in the report (e.g. repeats, folds, seed, group column).

    Returns:
        `{"protocol", "settings", "num_subjects", "models": {name: {"splits", "summary"}}, "comparison"}`; the
        comparison (first model minus second, per metric) is there when two predictors are given.
    """
    labels = np.asarray(labels)
    names = CLASSIFICATION_METRICS if not regression else REGRESSION_METRICS
    n_test = float(np.mean([len(split.test) for split in splits]))
    n_train = float(np.mean([len(split.train) + len(split.validation) for split in splits]))
    per_model = {}
    for name, predict in predictors.items():
        rows = []
        for split in splits:
            scores = np.asarray(predict(split))
            metrics = task_metrics(scores, labels[split.test], regression)
            rows.append(
                {
                    "repeat": split.repeat,
                    "fold": split.fold,
                    "num_train": len(split.train),
                    "num_validation": len(split.validation),
                    "num_test": len(split.test),
                    **metrics,
                }
            )
        summary = {metric: summarise([row[metric] for row in rows], n_train, n_test) for metric in names}
        per_model[name] = {"splits": rows, "summary": summary}
    report = {
        "protocol": PROTOCOL_DESCRIPTION,
        "settings": dict(settings or {}),
        "num_subjects": len(labels),
        "models": per_model,
    }
    if len(per_model) == 2:
        first, second = per_model
        comparison = {"first": first, "second": second, "difference": "first - second"}
        for metric in names:
            result = corrected_paired_t_test(
                [row[metric] for row in per_model[first]["splits"]],
                [row[metric] for row in per_model[second]["splits"]],
                n_train,
                n_test,
            )
            lower_is_better = metric in ("mse", "mae")
            if result["mean_difference"] == 0:
                better = None
            else:
                better = first if (result["mean_difference"] > 0) != lower_is_better else second
            comparison[metric] = result | {"better": better}
        report["comparison"] = comparison
    return report


class EmbeddingProbe:
    """A linear model on fixed embeddings, as a protocol predictor: standardisation fitted on the training set, then
    logistic regression (classification) or ridge regression, its regularisation chosen on the validation set
    (F1 / MSE) among `strengths`, and the chosen model (fitted on the training set) scores the test set once.

    Args:
        embeddings: `(num_subjects, dim)`.
        labels: class indices or regression targets of all subjects.
        regression: ridge regression instead of logistic regression.
        strengths: inverse regularisation strengths C for logistic regression; ridge uses alpha = 1 / C.
    """

    def __init__(self, embeddings, labels, regression: bool = False, strengths=(0.01, 0.1, 1.0, 10.0)):
        self.embeddings = np.asarray(embeddings, dtype=np.float64)
        self.labels = np.asarray(labels)
        self.regression = regression
        self.strengths = tuple(strengths)

    def _fit(self, strength: float, features: np.ndarray, labels: np.ndarray):
        if self.regression:
            return Ridge(alpha=1.0 / strength).fit(features, labels.astype(np.float64))
        return LogisticRegression(C=strength, max_iter=2000).fit(features, labels)

    def _scores(self, model, features: np.ndarray) -> np.ndarray:
        if self.regression:
            return model.predict(features)
        # Log-probabilities over every class of the cohort (softmax gives the probabilities back); a class missing
        # from the training set gets probability 1e-12.
        probabilities = np.full((len(features), int(self.labels.max()) + 1), 1e-12)
        probabilities[:, model.classes_] = np.maximum(model.predict_proba(features), 1e-12)
        return np.log(probabilities)

    def __call__(self, split: Split) -> np.ndarray:
        scaler = StandardScaler().fit(self.embeddings[split.train])
        train, validation, test = (
            scaler.transform(self.embeddings[part]) for part in (split.train, split.validation, split.test)
        )
        selection = "mse" if self.regression else "f1"
        best = None
        for strength in self.strengths:
            model = self._fit(strength, train, self.labels[split.train])
            value = task_metrics(self._scores(model, validation), self.labels[split.validation], self.regression)[
                selection
            ]
            value = -value if self.regression else value
            if best is None or value > best[0]:
                best = (value, model)
        return self._scores(best[1], test)


__all__ = [
    "PROTOCOL_DESCRIPTION",
    "EmbeddingProbe",
    "Split",
    "corrected_paired_t_test",
    "repeated_splits",
    "run_protocol",
    "stratification_target",
    "summarise",
]
