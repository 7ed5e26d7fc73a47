# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Inputs and `MetricInfo` shared by the package's `evaluate` metric modules (`metric_modules/`), by kind of input:

- `class_scores`: `predictions` `(num_samples, num_classes)` logits or probabilities, `references` `(num_samples,)`
  class indices (accuracy, balanced accuracy, F1, AUROC);
- `regression`: `predictions` and `references` `(num_samples,)` floats (MSE, MAE, Pearson r);
- `identification`: per query, `predictions` its similarity to each candidate (queries may have different numbers of
  candidates) and `references` the index of the candidate from the same subject.
"""

import datasets
import evaluate

INPUTS = {
    "class_scores": (
        datasets.Features(
            {"predictions": datasets.List(datasets.Value("float64")), "references": datasets.Value("int64")}
        ),
        "predictions: (num_samples, num_classes) class scores (logits or probabilities); references: (num_samples,) "
        "class indices.",
    ),
    "regression": (
        datasets.Features({"predictions": datasets.Value("float64"), "references": datasets.Value("float64")}),
        "predictions, references: (num_samples,) floats.",
    ),
    "identification": (
        datasets.Features(
            {"predictions": datasets.List(datasets.Value("float64")), "references": datasets.Value("int64")}
        ),
        "predictions: per query, its similarity to each candidate; references: per query, the index of the candidate "
        "from the same subject.",
    ),
}


def metric_info(description: str, kind: str) -> evaluate.MetricInfo:
    """The `evaluate.MetricInfo` of a package metric module taking inputs of `kind` (a key of `INPUTS`)."""
    features, inputs_description = INPUTS[kind]
    return evaluate.MetricInfo(
        description=description, citation="", inputs_description=inputs_description, features=features
    )


__all__ = ["INPUTS", "metric_info"]
