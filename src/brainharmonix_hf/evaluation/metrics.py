# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Downstream metrics over a whole evaluation set, through the package's `evaluate` modules (`metric_modules/`,
loaded from the package, never from the Hub).

`Trainer` gathers every prediction of the evaluation set before calling `compute_metrics`, so F1 and AUROC here are
whole-set values (the reference averaged per-batch F1, which depends on the batch size and order).

Classification: accuracy, balanced accuracy, F1 (binary: of class 1; more classes: macro) and AUROC (binary: of the
class-1 probability; more classes: one-vs-rest macro over softmax probabilities; NaN when the labels hold one class).
Regression: MSE, MAE and Pearson r (NaN when predictions or targets are constant).
"""

import functools
from collections.abc import Callable
from pathlib import Path

import evaluate
import numpy as np
from transformers import EvalPrediction

METRIC_MODULES = Path(__file__).parent / "metric_modules"
CLASSIFICATION_METRICS = ("accuracy", "balanced_accuracy", "f1", "auroc")
REGRESSION_METRICS = ("mse", "mae", "pearson_r")


def metric_module_path(name: str) -> str:
    """The path of the package's `evaluate` module script `name` (for `evaluate.load`)."""
    path = METRIC_MODULES / f"{name}.py"
    if not path.is_file():
        known = sorted(file.stem for file in METRIC_MODULES.glob("*.py") if file.stem != "__init__")
        raise ValueError(f"No metric module {name!r}; the package ships {', '.join(known)}.")
    return str(path)


@functools.cache
def load_metric(name: str) -> evaluate.EvaluationModule:
    """The package's `evaluate` metric `name`, loaded once per process from its script (kept in memory)."""
    return evaluate.load(metric_module_path(name), keep_in_memory=True)


def compute_metrics_of(names, predictions, references) -> dict[str, float]:
    """The metrics `names` of `predictions` against `references`, each through its `evaluate` module."""
    results = {}
    for name in names:
        results |= load_metric(name).compute(predictions=predictions, references=references)
    return results


def classification_metrics(logits: np.ndarray, labels: np.ndarray, names=CLASSIFICATION_METRICS) -> dict[str, float]:
    """Metrics of `(num_samples, num_classes)` logits (or probabilities) against `(num_samples,)` class indices."""
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    if logits.ndim != 2 or logits.shape[0] != labels.shape[0] or logits.shape[1] < 2:
        raise ValueError(
            f"Expected (num_samples, num_classes >= 2) logits for {labels.shape[0]} labels, got {logits.shape}."
        )
    return compute_metrics_of(names, logits, labels)


def regression_metrics(predictions: np.ndarray, targets: np.ndarray, names=REGRESSION_METRICS) -> dict[str, float]:
    """MSE, MAE and Pearson r of `(num_samples,)` or `(num_samples, 1)` predictions against targets."""
    predictions = np.asarray(predictions, dtype=np.float64).reshape(-1)
    targets = np.asarray(targets, dtype=np.float64).reshape(-1)
    if predictions.shape != targets.shape:
        raise ValueError(f"Got {predictions.size} predictions for {targets.size} targets.")
    return compute_metrics_of(names, predictions, targets)


def task_metrics(scores: np.ndarray, labels: np.ndarray, regression: bool, names=None) -> dict[str, float]:
    """`regression_metrics` or `classification_metrics`, by task (all of the task's metrics, or `names`)."""
    if regression:
        return regression_metrics(scores, labels, names or REGRESSION_METRICS)
    return classification_metrics(scores, labels, names or CLASSIFICATION_METRICS)


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
    "compute_metrics_of",
    "load_metric",
    "metric_module_path",
    "regression_metrics",
    "task_metrics",
]
