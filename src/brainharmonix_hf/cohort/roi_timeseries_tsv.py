# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""XCP-D-style parcellated time series tables: `*_atlas-<name>_timeseries.tsv`, one column per ROI headed by its label,
one row per frame."""

import os

import numpy as np
import pandas as pd


def read_roi_timeseries_tsv(path: str | os.PathLike) -> tuple[np.ndarray, list[str]]:
    """Read a parcellated time series table.

    Args:
        path: tab-separated file whose header row holds the ROI labels and whose rows are frames.

    Returns:
        `(series, labels)`: `(num_rois, num_timepoints)` float32 (ROI-first, the layout `"rois_first"`) and the
        column labels in file order. Empty cells (ROIs without coverage, written `n/a` by XCP-D) become 0.
    """
    table = pd.read_csv(path, sep="\t", na_values=["n/a"])
    if table.shape[1] < 2 or table.shape[0] < 1:
        raise ValueError(
            f"{path} has {table.shape[1]} column(s) and {table.shape[0]} row(s); a parcellated time series table has a "
            "header row of ROI labels, one column per ROI and one row per frame, tab-separated."
        )
    non_numeric = [str(name) for name, dtype in table.dtypes.items() if not pd.api.types.is_numeric_dtype(dtype)]
    if non_numeric:
        raise ValueError(
            f"{path}: columns {non_numeric[:5]} hold non-numeric values; every column must be one ROI's time series."
        )
    series = table.to_numpy(dtype=np.float32).T
    return np.nan_to_num(series, nan=0.0), [str(name) for name in table.columns]
