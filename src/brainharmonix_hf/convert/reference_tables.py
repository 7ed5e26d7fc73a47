# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""The reference release's ROI position tables (CSV files beside its code), read for the converter.

The geometric-harmonics file has a header row (`Mode_1, ...`) and a label column (`ROI_1, ...`); the gradient file is
numbers only. Both are read the same way: a first row or first column that is not numeric is a header or labels
and is dropped, everything else must be finite numbers in a `(num_rois, num_columns)` table. Rows are kept in the
file's order: the converted model stores the tables exactly as the reference used them.
"""

import csv
from pathlib import Path

import numpy as np
import torch

from .key_mapping import ConversionError


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_reference_table(path: str | Path, shape: tuple[int, int], name: str) -> torch.Tensor:
    """Read one ROI table.

    Args:
        path: the CSV file.
        shape: the `(num_rois, num_columns)` the model expects.
        name: what the table is, for messages (e.g. "geometric harmonics").

    Returns:
        `(num_rois, num_columns)` float32 tensor, rows in file order.

    Raises:
        FileNotFoundError, ConversionError: missing file, non-numeric cells, wrong shape, NaN/Inf.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No {name} table at {path}. Pass the reference CSV file.")
    with open(path, newline="") as handle:
        rows = [row for row in csv.reader(handle) if row]
    if rows and not all(_is_number(cell) for cell in rows[0]):
        rows = rows[1:]
    if rows and not all(_is_number(row[0]) for row in rows):
        rows = [row[1:] for row in rows]
    lengths = sorted({len(row) for row in rows})
    if len(lengths) > 1:
        raise ConversionError(f"{path}: the {name} table has rows of different lengths {lengths}.")
    try:
        values = np.array([[float(cell) for cell in row] for row in rows], dtype=np.float64)
    except ValueError as error:
        raise ConversionError(
            f"{path}: the {name} table holds a non-numeric cell ({error}); expected numbers with at most a header row "
            "and a label column."
        ) from error
    if values.shape != tuple(shape):
        raise ConversionError(
            f"{path}: the {name} table is {values.shape[0]} × {values.shape[1] if values.ndim == 2 else 0} but the "
            f"model needs {shape[0]} ROIs × {shape[1]} columns. Check that the file is the reference {name} CSV."
        )
    if not np.all(np.isfinite(values)):
        raise ConversionError(f"{path}: the {name} table holds NaN or infinite values.")
    return torch.from_numpy(values).float()
