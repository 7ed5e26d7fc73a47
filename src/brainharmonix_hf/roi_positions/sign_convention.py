# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Deterministic signs for eigenvectors (eigen-solvers return each vector with an arbitrary sign)."""

import numpy as np

SIGN_RULE = "each column is multiplied by +1 or -1 so that its entry with the largest absolute value is positive"


def orient_columns(vectors: np.ndarray) -> np.ndarray:
    """Flip columns so that each column's largest-magnitude entry is positive (see `SIGN_RULE`).

    The rule depends only on the values, so it gives the same output when the solver returns `-v` instead of `v`
    and when the rows are permuted (unless two entries of opposite sign tie for the largest magnitude).

    Args:
        vectors: `(num_points, num_vectors)`.

    Returns:
        A new `(num_points, num_vectors)` array.
    """
    vectors = np.asarray(vectors)
    peak = vectors[np.abs(vectors).argmax(axis=0), np.arange(vectors.shape[1])]
    return vectors * np.where(peak < 0, -1.0, 1.0)
