# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Evaluation that cannot flatter a model: splits by subject, the probe protocol with intervals inside each metric's
range, metrics as `evaluate` modules shipped in the package, and identification with its chance level and a
functional-connectivity baseline, from embeddings or from readouts of FunctionJEPA tokens."""

from .embedding_tables import read_embedding_table
from .fmri_readouts import DEFAULT_FMRI_READOUT, FMRI_READOUTS, embed_fmri_series, fmri_readout, whiten_tokens
from .identification import (
    correlation_similarity,
    cut_windows,
    functional_connectivity,
    identification_report,
    identify,
)
from .metrics import (
    CLASSIFICATION_METRICS,
    REGRESSION_METRICS,
    build_compute_metrics,
    classification_metrics,
    load_metric,
    metric_module_path,
    regression_metrics,
    task_metrics,
)
from .protocol import PROTOCOL_DESCRIPTION, EmbeddingProbe, chance_levels, run_protocol
from .splits import Split, repeated_splits, split_units, stratification_target, subjects_in_two_parts
from .statistics import corrected_paired_t_test, summarise

__all__ = [
    "CLASSIFICATION_METRICS",
    "DEFAULT_FMRI_READOUT",
    "FMRI_READOUTS",
    "PROTOCOL_DESCRIPTION",
    "REGRESSION_METRICS",
    "EmbeddingProbe",
    "Split",
    "build_compute_metrics",
    "chance_levels",
    "classification_metrics",
    "corrected_paired_t_test",
    "correlation_similarity",
    "cut_windows",
    "embed_fmri_series",
    "fmri_readout",
    "functional_connectivity",
    "identification_report",
    "identify",
    "load_metric",
    "metric_module_path",
    "read_embedding_table",
    "regression_metrics",
    "repeated_splits",
    "run_protocol",
    "split_units",
    "stratification_target",
    "subjects_in_two_parts",
    "summarise",
    "task_metrics",
    "whiten_tokens",
]
