# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""F1 of the arg-max class of class scores: of class 1 for two classes, macro over all classes otherwise (a class never
predicted nor present scores 0)."""

import evaluate
import numpy as np
from sklearn.metrics import f1_score

from brainharmonix_hf.evaluation.metric_info import metric_info


class F1(evaluate.Metric):
    def _info(self):
        return metric_info(__doc__, "class_scores")

    def _compute(self, predictions, references):
        scores = np.asarray(predictions, dtype=np.float64)
        predicted, num_classes = scores.argmax(axis=1), scores.shape[1]
        if num_classes == 2:
            f1 = f1_score(references, predicted, average="binary", zero_division=0.0)
        else:
            f1 = f1_score(references, predicted, average="macro", labels=np.arange(num_classes), zero_division=0.0)
        return {"f1": float(f1)}
