# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Identification (fingerprinting) of queries among candidates by similarity: top-1 accuracy (the most similar
candidate is the query's own subject), mean rank of the true candidate (1 = most similar; ties share the mean of
their ranks), and both at chance (1 / candidates and (candidates + 1) / 2, averaged over the queries)."""

import evaluate
import numpy as np

from brainharmonix_hf.evaluation.metric_info import metric_info


class IdentificationAccuracy(evaluate.Metric):
    def _info(self):
        return metric_info(__doc__, "identification")

    def _compute(self, predictions, references):
        ranks, candidates = [], []
        for similarities, true_index in zip(predictions, references, strict=True):
            similarities = np.asarray(similarities, dtype=np.float64)
            true_value = similarities[true_index]
            ties = np.sum(similarities == true_value) - 1
            ranks.append(1 + np.sum(similarities > true_value) + ties / 2)
            candidates.append(similarities.size)
        ranks, candidates = np.asarray(ranks), np.asarray(candidates, dtype=np.float64)
        return {
            "identification_accuracy": float(np.mean(ranks == 1)),
            "mean_rank": float(np.mean(ranks)),
            "chance_identification_accuracy": float(np.mean(1 / candidates)),
            "chance_mean_rank": float(np.mean((candidates + 1) / 2)),
        }
