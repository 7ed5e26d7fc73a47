# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Mean absolute error of regression predictions."""

import evaluate
import numpy as np

from brainharmonix_hf.evaluation.metric_info import metric_info


class MeanAbsoluteError(evaluate.Metric):
    def _info(self):
        return metric_info(__doc__, "regression")

    def _compute(self, predictions, references):
        errors = np.asarray(predictions, dtype=np.float64) - np.asarray(references, dtype=np.float64)
        return {"mae": float(np.mean(np.abs(errors)))}
