# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Cohorts: find each subject-session-run's inputs (BIDS derivatives or a manifest) and embed them into a table.

The names below are imported on first use (`lazy_exports`): `brainharmonix embed --help` imports this package."""

from ..lazy_exports import lazy_exports

EXPORTS = {
    "EmbeddingRun": ".embed",
    "EmbeddingStore": ".embedding_store",
    "OutputFolderBusy": ".folder_lock",
    "OutputFolderMismatch": ".folder_settings",
    "RunSelection": ".run_selection",
    "SessionInputs": ".session_inputs",
    "embed_cohort": ".embed",
    "find_bids_sessions": ".bids_discovery",
    "load_embeddings": ".embedding_store",
    "load_failures": ".embedding_store",
    "select_runs": ".run_selection",
    "select_sessions": ".session_inputs",
    "sessions_from_manifest": ".session_inputs",
    "write_sample_derivatives": ".sample_tree",
}
__all__ = sorted(EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
