# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Evaluation protocol: repeated stratified splits by subject (`splits`), whole-set metrics, intervals inside each
metric's range and a paired test between models on the same splits (`statistics`).

Discipline. A model is fitted on the training set, its settings are chosen on the validation set only, and its
test-set predictions are asked for once per split; metrics are computed over the whole test set of the split. No
subject has rows in two parts of a split (checked on every split given), so a subject's other session never teaches
the model the answer.
"""

from collections.abc import Callable, Mapping

import numpy as np
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.preprocessing import StandardScaler

from .metrics import CLASSIFICATION_METRICS, REGRESSION_METRICS, task_metrics
from .splits import Split, subjects_in_two_parts
from .statistics import INTERVAL_METHOD, LOWER_IS_BETTER, PAIRED_TEST_METHOD, corrected_paired_t_test, summarise

PROTOCOL_DESCRIPTION = {
    "splits": "repeated stratified k-fold by subject (StratifiedGroupKFold; the groups are the subjects, or a coarser "
    "group column such as site): a subject's sessions never straddle train, validation and test; validation carved "
    "from the non-test part the same way; regression targets stratified by quantile bins",
    "model_selection": "on the validation set only; the test set is predicted once per split",
    "metrics": "computed over the whole test set of each split, through the package's evaluate modules",
    "confidence_interval": INTERVAL_METHOD,
    "paired_test": PAIRED_TEST_METHOD,
    "chance": "accuracy: the share of the most frequent class (always predicting it); balanced accuracy: 1 / classes; "
    "AUROC: 0.5",
}

Predictor = Callable[[Split], np.ndarray]


def chance_levels(labels: np.ndarray) -> dict[str, float]:
    """Chance levels of the classification metrics on a cohort's class indices (see `PROTOCOL_DESCRIPTION`)."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64))
    present = counts[counts > 0]
    return {
        "accuracy": float(present.max() / present.sum()),
        "balanced_accuracy": 1.0 / present.size,
        "auroc": 0.5,
    }


def run_protocol(
    splits: list[Split],
    labels,
    predictors: Mapping[str, Predictor],
    *,
    subjects,
    sessions=None,
    regression: bool = False,
    settings: Mapping | None = None,
) -> dict:
    """Score every predictor on every split and build the JSON-ready report.

    Args:
        splits: from `repeated_splits` (or any splits in which no subject has rows in two parts: checked).
        labels: class indices (or regression targets), one per row.
        predictors: name -> function of a `Split` returning the test-set scores: `(n_test, num_classes)` logits or
            probabilities, or `(n_test,)` regression predictions. It may read labels of the training and
            validation rows only; it is called once per split.
        subjects: subject id of each row (rows are subject-sessions, or runs).
        sessions: session id of each row, or `None` (one row per subject-session is assumed).
        regression: regression metrics.
        settings: recorded in the report (e.g. repeats, folds, seed, group column).

    Returns:
        `{"protocol", "settings", "num_subjects", "num_sessions", "chance", "models": {name: {"splits", "summary"}},
        "comparison"}`; counts of rows and subjects per part in each split row; the comparison (first model minus
        second, per metric) is there when two predictors are given; `chance` for classification.
    """
    labels = np.asarray(labels)
    subjects = np.asarray(subjects).astype(str)
    for split in splits:
        straddling = subjects_in_two_parts(split, subjects)
        if straddling:
            raise ValueError(
                f"Split (repeat {split.repeat}, fold {split.fold}) puts subjects {straddling[:10]} in two parts: "
                "make splits by subject with `repeated_splits`."
            )
    names = CLASSIFICATION_METRICS if not regression else REGRESSION_METRICS
    n_test = float(np.mean([len(split.test) for split in splits]))
    n_train = float(np.mean([len(split.train) + len(split.validation) for split in splits]))
    per_model = {}
    for name, predict in predictors.items():
        rows = []
        for split in splits:
            scores = np.asarray(predict(split))
            counts = {}
            for part in ("train", "validation", "test"):
                indices = getattr(split, part)
                counts[f"num_{part}"] = len(indices)
                counts[f"num_{part}_subjects"] = len(np.unique(subjects[indices]))
            metrics = task_metrics(scores, labels[split.test], regression)
            rows.append({"repeat": split.repeat, "fold": split.fold, **counts, **metrics})
        summary = {metric: summarise([row[metric] for row in rows], n_train, n_test, metric) for metric in names}
        per_model[name] = {"splits": rows, "summary": summary}
    num_sessions = len(labels) if sessions is None else len(set(zip(subjects, np.asarray(sessions), strict=True)))
    report = {
        "protocol": PROTOCOL_DESCRIPTION,
        "settings": dict(settings or {}),
        "num_subjects": len(np.unique(subjects)),
        "num_sessions": num_sessions,
        "num_rows": len(labels),
    }
    if not regression:
        report["chance"] = chance_levels(labels)
    report["models"] = per_model
    if len(per_model) == 2:
        report["comparison"] = compare(per_model, names, n_train, n_test)
    return report


def compare(per_model: dict, names, n_train: float, n_test: float) -> dict:
    """The paired test of the first model minus the second on each metric, with the better model named."""
    first, second = per_model
    comparison = {"first": first, "second": second, "difference": "first - second"}
    for metric in names:
        result = corrected_paired_t_test(
            [row[metric] for row in per_model[first]["splits"]],
            [row[metric] for row in per_model[second]["splits"]],
            n_train,
            n_test,
        )
        if result["mean_difference"] == 0:
            better = None
        else:
            better = first if (result["mean_difference"] > 0) != (metric in LOWER_IS_BETTER) else second
        comparison[metric] = result | {"better": better}
    return comparison


class EmbeddingProbe:
    """A linear model on fixed embeddings, as a protocol predictor: standardisation fitted on the training set, then
    logistic regression (classification) or ridge regression, its regularisation chosen on the validation set
    (F1 / MSE) among `strengths`, and the chosen model (fitted on the training set) scores the test set once.

    Args:
        embeddings: `(num_rows, dim)`.
        labels: class indices or regression targets of all rows.
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
            scores = self._scores(model, validation)
            value = task_metrics(scores, self.labels[split.validation], self.regression, names=(selection,))[selection]
            value = -value if self.regression else value
            if best is None or value > best[0]:
                best = (value, model)
        return self._scores(best[1], test)


__all__ = ["PROTOCOL_DESCRIPTION", "EmbeddingProbe", "chance_levels", "compare", "run_protocol"]
