# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Area under the ROC curve of class scores (softmax probabilities): of class 1 for two classes, one-vs-rest macro
otherwise; NaN when the references hold a single class."""

import evaluate
import numpy as np
from scipy.special import softmax
from sklearn.metrics import roc_auc_score

from brainharmonix_hf.evaluation.metric_info import metric_info


class Auroc(evaluate.Metric):
    def _info(self):
        return metric_info(__doc__, "class_scores")

    def _compute(self, predictions, references):
        probabilities = softmax(np.asarray(predictions, dtype=np.float64), axis=1)
        num_classes = probabilities.shape[1]
        if np.unique(references).size < 2:
            return {"auroc": float("nan")}
        if num_classes == 2:
            return {"auroc": float(roc_auc_score(references, probabilities[:, 1]))}
        auroc = roc_auc_score(
            references, probabilities, multi_class="ovr", average="macro", labels=np.arange(num_classes)
        )
        return {"auroc": float(auroc)}
