# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Evaluation that cannot flatter a model: splits by subject, the probe protocol with intervals inside each metric's
range, metrics as `evaluate` modules shipped in the package, and identification with its chance level and a
functional-connectivity baseline, from embeddings or from readouts of FunctionJEPA tokens.

The names below are imported on first use (`lazy_exports`): `brainharmonix evaluate --help` imports this package."""

from ..lazy_exports import lazy_exports

EXPORTS = {
    "CLASSIFICATION_METRICS": ".metrics",
    "DEFAULT_FMRI_READOUT": ".fmri_readout_names",
    "FMRI_READOUTS": ".fmri_readout_names",
    "EmbeddingProbe": ".protocol",
    "PROTOCOL_DESCRIPTION": ".protocol",
    "REGRESSION_METRICS": ".metrics",
    "Split": ".splits",
    "build_compute_metrics": ".metrics",
    "chance_levels": ".protocol",
    "classification_metrics": ".metrics",
    "corrected_paired_t_test": ".statistics",
    "correlation_similarity": ".identification",
    "cut_windows": ".identification",
    "embed_fmri_series": ".fmri_readouts",
    "fmri_readout": ".fmri_readouts",
    "functional_connectivity": ".identification",
    "identification_report": ".identification",
    "identify": ".identification",
    "load_metric": ".metrics",
    "metric_module_path": ".metrics",
    "read_embedding_table": ".embedding_tables",
    "readout_of": ".fmri_readouts",
    "regression_metrics": ".metrics",
    "repeated_splits": ".splits",
    "run_protocol": ".protocol",
    "split_units": ".splits",
    "stratification_target": ".splits",
    "subjects_in_two_parts": ".splits",
    "summarise": ".statistics",
    "task_metrics": ".metrics",
    "whiten_tokens": ".fmri_readouts",
}
__all__ = sorted(EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
