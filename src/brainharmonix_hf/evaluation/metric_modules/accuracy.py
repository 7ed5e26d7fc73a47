# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Accuracy of the arg-max class of class scores."""

import evaluate
import numpy as np

from brainharmonix_hf.evaluation.metric_info import metric_info


class Accuracy(evaluate.Metric):
    def _info(self):
        return metric_info(__doc__, "class_scores")

    def _compute(self, predictions, references):
        predicted = np.asarray(predictions, dtype=np.float64).argmax(axis=1)
        return {"accuracy": float(np.mean(predicted == np.asarray(references)))}
