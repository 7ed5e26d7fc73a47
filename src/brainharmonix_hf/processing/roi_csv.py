# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Reading ROI time-series CSV files: one row per ROI, the ROI label in the first column, then one column per frame."""

import csv
import gzip
import os
from pathlib import Path

import numpy as np


def read_roi_csv(path: str | os.PathLike, has_header: bool = True) -> tuple[np.ndarray, list[str]]:
    """Read a `.csv` or `.csv.gz` file of ROI time series.

    Args:
        path: the file.
        has_header (`bool`, *optional*, defaults to `True`): skip the first line (column names).

    Returns:
        `tuple(np.ndarray, list[str])`: float64 series `(num_rois, num_timepoints)` and the ROI labels in row order.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No ROI CSV file at {path}. Check the path (relative paths start at {Path.cwd()}).")
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", newline="") as handle:
        rows = [row for row in csv.reader(handle) if row]
    rows = rows[1:] if has_header else rows
    if not rows:
        raise ValueError(f"{path} holds no ROI rows. Expected one row per ROI: label, then one value per frame.")
    lengths = {len(row) for row in rows}
    if len(lengths) != 1:
        raise ValueError(f"{path} has rows of different lengths {sorted(lengths)}; every ROI needs the same frames.")
    labels = [row[0] for row in rows]
    try:
        values = np.array([[float(value) for value in row[1:]] for row in rows], dtype=np.float64)
    except ValueError as error:
        hint = "" if has_header else " If the first line holds column names, pass has_header=True."
        raise ValueError(
            f"{path} holds a non-numeric value after the label column ({error}). Expected rows = ROIs, first column "
            f"= ROI labels, then numbers.{hint}"
        ) from error
    return values, labels
