# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Names of the FunctionJEPA token readouts (`evaluation.fmri_readouts`), importable without numpy or torch so that
`brainharmonix evaluate --help` lists them without loading the stack."""

FMRI_READOUTS = ("roi_similarity", "token_connectivity", "mean")
DEFAULT_FMRI_READOUT = "roi_similarity"
