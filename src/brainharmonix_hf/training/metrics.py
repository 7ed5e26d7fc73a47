# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Downstream metrics over a whole evaluation set, computed locally with numpy and scikit-learn (no Hub downloads).

`Trainer` gathers every prediction of the evaluation set before calling `compute_metrics`, so F1 and AUROC here are
whole-set values (the reference averaged per-batch F1, which depends on the batch size and order).

Classification: accuracy, balanced accuracy, F1 (binary: of class 1; more classes: macro) and AUROC (binary: of the
class-1 probability; more classes: one-vs-rest macro over softmax probabilities; NaN when the labels hold one class).
Regression: MSE, MAE and Pearson r (NaN when predictions or targets are constant).
"""

from collections.abc import Callable

import numpy as np
from scipy.special import softmax
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, roc_auc_score
from transformers import EvalPrediction

CLASSIFICATION_METRICS = ("accuracy", "balanced_accuracy", "f1", "auroc")
REGRESSION_METRICS = ("mse", "mae", "pearson_r")


def classification_metrics(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Metrics of `(num_samples, num_classes)` logits (or probabilities) against `(num_samples,)` class indices."""
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    if logits.ndim != 2 or logits.shape[0] != labels.shape[0] or logits.shape[1] < 2:
        raise ValueError(
            f"Expected (num_samples, num_classes >= 2) logits for {labels.shape[0]} labels, got {logits.shape}."
        )
    num_classes = logits.shape[1]
    predictions = logits.argmax(axis=1)
    probabilities = softmax(logits, axis=1)
    binary = num_classes == 2
    if binary:
        f1 = f1_score(labels, predictions, average="binary", zero_division=0.0)
    else:
        f1 = f1_score(labels, predictions, average="macro", labels=np.arange(num_classes), zero_division=0.0)
    if np.unique(labels).size < 2:
        auroc = float("nan")
    elif binary:
        auroc = roc_auc_score(labels, probabilities[:, 1])
    else:
        auroc = roc_auc_score(labels, probabilities, multi_class="ovr", average="macro", labels=np.arange(num_classes))
    return {
        "accuracy": float(accuracy_score(labels, predictions)),
        "balanced_accuracy": float(balanced_accuracy_score(labels, predictions)),
        "f1": float(f1),
        "auroc": float(auroc),
    }


def regression_metrics(predictions: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """MSE, MAE and Pearson r of `(num_samples,)` or `(num_samples, 1)` predictions against targets."""
    predictions = np.asarray(predictions, dtype=np.float64).reshape(-1)
    targets = np.asarray(targets, dtype=np.float64).reshape(-1)
    if predictions.shape != targets.shape:
        raise ValueError(f"Got {predictions.size} predictions for {targets.size} targets.")
    errors = predictions - targets
    constant = np.ptp(predictions) == 0 or np.ptp(targets) == 0
    return {
        "mse": float(np.mean(errors**2)),
        "mae": float(np.mean(np.abs(errors))),
        "pearson_r": float("nan") if constant else float(np.corrcoef(predictions, targets)[0, 1]),
    }


def task_metrics(scores: np.ndarray, labels: np.ndarray, regression: bool) -> dict[str, float]:
    """`regression_metrics` or `classification_metrics`, by task."""
    return regression_metrics(scores, labels) if regression else classification_metrics(scores, labels)


def build_compute_metrics(regression: bool = False) -> Callable[[EvalPrediction], dict[str, float]]:
    """A `compute_metrics` for `Trainer`: whole-set metrics of the model's logits."""

    def compute_metrics(prediction: EvalPrediction) -> dict[str, float]:
        logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        return task_metrics(logits, prediction.label_ids, regression)

    return compute_metrics


__all__ = [
    "CLASSIFICATION_METRICS",
    "REGRESSION_METRICS",
    "build_compute_metrics",
    "classification_metrics",
    "regression_metrics",
    "task_metrics",
]
