# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Warnings that point at the line of the user's code that led to them, not at this package's internals.

A fixed `stacklevel` is right for one call path only (the same check runs under `FMRIFeatureExtractor.__call__`, the
combined processor, a harness transform, ...). `warn_at_caller` walks the stack past this package's frames and the
library frames between the user and the package (transformers' `from_pretrained`, torch's module call), so the
warning names the user's file and line, and Python's default filter shows it once per such line.
"""

import sys
import warnings

# Top-level modules whose frames are skipped: this package (or, for code saved with a model, the folder transformers
# loads it from) and the libraries that call into it on the user's behalf.
_PACKAGE = __name__.split(".")[0]
_PASS_THROUGH = frozenset({_PACKAGE, "transformers", "torch"})


def warn_at_caller(message: str, category: type[Warning] = UserWarning) -> None:
    """`warnings.warn(message, category)` attributed to the first frame outside this package and the libraries
    calling into it."""
    frame, level = sys._getframe(0), 1
    while frame.f_back is not None and frame.f_globals.get("__name__", "").split(".")[0] in _PASS_THROUGH:
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
