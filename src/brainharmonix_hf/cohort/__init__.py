# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Cohorts: find each subject-session-run's inputs (BIDS derivatives or a manifest) and embed them into a table."""

from .bids_discovery import find_bids_sessions
from .embed import EmbeddingRun, embed_cohort
from .embedding_store import EmbeddingStore, load_embeddings, load_failures
from .folder_lock import OutputFolderBusy
from .folder_settings import OutputFolderMismatch
from .run_selection import RunSelection, select_runs
from .sample_tree import write_sample_derivatives
from .session_inputs import SessionInputs, select_sessions, sessions_from_manifest

__all__ = [
    "EmbeddingRun",
    "EmbeddingStore",
    "OutputFolderBusy",
    "OutputFolderMismatch",
    "RunSelection",
    "SessionInputs",
    "embed_cohort",
    "find_bids_sessions",
    "load_embeddings",
    "load_failures",
    "select_runs",
    "select_sessions",
    "sessions_from_manifest",
    "write_sample_derivatives",
]
