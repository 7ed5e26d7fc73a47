# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Pearson correlation of regression predictions with their targets; NaN when either is constant."""

import evaluate
import numpy as np

from brainharmonix_hf.evaluation.metric_info import metric_info


class PearsonR(evaluate.Metric):
    def _info(self):
        return metric_info(__doc__, "regression")

    def _compute(self, predictions, references):
        predictions = np.asarray(predictions, dtype=np.float64)
        references = np.asarray(references, dtype=np.float64)
        if np.ptp(predictions) == 0 or np.ptp(references) == 0:
            return {"pearson_r": float("nan")}
        return {"pearson_r": float(np.corrcoef(predictions, references)[0, 1])}
