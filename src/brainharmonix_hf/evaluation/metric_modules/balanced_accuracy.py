# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Balanced accuracy (mean recall over the classes present in the references) of the arg-max class of class scores."""

import evaluate
import numpy as np
from sklearn.metrics import balanced_accuracy_score

from brainharmonix_hf.evaluation.metric_info import metric_info


class BalancedAccuracy(evaluate.Metric):
    def _info(self):
        return metric_info(__doc__, "class_scores")

    def _compute(self, predictions, references):
        predicted = np.asarray(predictions, dtype=np.float64).argmax(axis=1)
        return {"balanced_accuracy": float(balanced_accuracy_score(references, predicted))}
