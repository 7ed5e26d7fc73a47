# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Reading ROI time-series tables (`.csv`, `.tsv`, optionally gzipped) in a declared layout, never a guessed one.

- `layout="rois_first"` (the default ROI CSV): one row per ROI, optionally a first column of ROI labels, then one
  column per frame; optionally a header row of column names.
- `layout="time_first"` (e.g. XCP-D `*_timeseries.tsv`): one column per ROI, a header row of ROI labels, one row per
  frame.

A header row is detected (a row whose value cells are not all numbers, or that numbers the frames 0.. or 1..), never
assumed; a label column is detected (non-numeric first cells, or the ROI numbers 1..N in row order). Files are only
read.
"""

import csv
import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .atlases import identify_schaefer400, normalize_label, numbered_labels

TABLE_LAYOUTS = ("rois_first", "time_first")
# File names this module reads.
ROI_TABLE_SUFFIXES = (".csv", ".tsv", ".csv.gz", ".tsv.gz")
MISSING_VALUES = ("n/a", "nan", "NaN", "NA", "")


@dataclass(frozen=True)
class RoiTable:
    """ROI series read from a file.

    Attributes:
        series: float64 `(num_rois, num_timepoints)`, ROI-first whatever the file's layout.
        labels: the ROI labels in row order, or `None` when the file has none.
    """

    series: np.ndarray
    labels: list[str] | None


def _number(text: str) -> float | None:
    text = text.strip()
    if text in MISSING_VALUES:
        return float("nan")
    try:
        return float(text)
    except ValueError:
        return None


def _numeric(cells) -> bool:
    return all(_number(cell) is not None for cell in cells)


def _counts_frames(cells) -> bool:
    """Cells that number frames `0, 1, ...` or `1, 2, ...` (a header of frame indices)."""
    numbers = [_number(cell) for cell in cells]
    if len(numbers) < 2 or any(number is None or number != number for number in numbers):
        return False
    return numbers in (list(range(len(numbers))), list(range(1, len(numbers) + 1)))


def _read_rows(path: Path) -> list[list[str]]:
    opener = gzip.open if path.name.endswith(".gz") else open
    delimiter = "\t" if path.name.removesuffix(".gz").endswith(".tsv") else ","
    with opener(path, "rt", newline="") as handle:
        rows = [row for row in csv.reader(handle, delimiter=delimiter) if any(cell.strip() for cell in row)]
    if not rows:
        raise ValueError(f"{path} is empty. Expected ROI time series: one row per ROI, one column per frame.")
    first_line = delimiter.join(rows[0])
    if ";" in first_line:
        raise ValueError(
            f"{path} is semicolon-separated ({first_line[:40]!r}...); the reader expects commas (`.csv`) or tabs "
            "(`.tsv`) with '.' as the decimal mark. Re-save it, e.g. pandas.read_csv(path, sep=';', decimal=',')"
            ".to_csv(new_path, index=False)."
        )
    lengths = {len(row) for row in rows}
    if len(lengths) != 1:
        raise ValueError(f"{path} has rows of different lengths {sorted(lengths)}; every row needs the same columns.")
    return rows


def read_roi_table(path: str | os.PathLike, layout: str = "rois_first") -> RoiTable:
    """Read ROI time series from a `.csv`/`.tsv` (optionally `.gz`) file in the declared `layout`.

    Raises:
        ValueError: unknown layout, semicolon-separated file, ragged rows, non-numeric values, or a rows-first file
            whose header names ROIs (it is time-first).
    """
    if layout not in TABLE_LAYOUTS:
        raise ValueError(f"layout must be one of {TABLE_LAYOUTS}, got {layout!r}: a file's axis order is not guessed.")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No ROI table at {path}. Check the path (relative paths start at {Path.cwd()}).")
    rows = _read_rows(path)
    if layout == "time_first":
        return _time_first_table(path, rows)
    return _rois_first_table(path, rows)


def _rois_first_table(path: Path, rows: list[list[str]]) -> RoiTable:
    first = rows[0]
    header = not _numeric(first[1:]) or (_counts_frames(first[1:]) and not _counts_frames(rows[-1][1:]))
    if header and len(rows) > 1 and identify_schaefer400([normalize_label(cell) for cell in first[1:]]):
        raise ValueError(
            f"{path} looks time-first: its header names Schaefer-400 parcels, one per column. Read it with "
            "layout='time_first' (columns = ROIs, rows = frames)."
        )
    body = rows[1:] if header else rows
    if not body:
        raise ValueError(f"{path} holds a header and no ROI rows. Expected one row per ROI, one column per frame.")
    first_column = [row[0] for row in body]
    has_labels = not _numeric(first_column) or [normalize_label(cell) for cell in first_column] == numbered_labels(
        len(body)
    )
    values = _values(
        path, [row[1:] if has_labels else row for row in body], "after the label column" if has_labels else ""
    )
    return RoiTable(values, [normalize_label(cell) for cell in first_column] if has_labels else None)


def _time_first_table(path: Path, rows: list[list[str]]) -> RoiTable:
    header = not _numeric(rows[0])
    body = rows[1:] if header else rows
    if not body:
        raise ValueError(f"{path} holds a header and no frames. Expected one row per frame, one column per ROI.")
    if not _numeric(row[0] for row in body):
        raise ValueError(
            f"{path} looks ROI-first: its first column holds labels ({body[0][0]!r}, ...), one row per ROI. Read it "
            "with layout='rois_first' (`.tsv` tables are read time-first unless declared otherwise: save ROI-first "
            "tables as `.csv`)."
        )
    values = _values(path, body, "")
    return RoiTable(values.T, [normalize_label(cell) for cell in rows[0]] if header else None)


def _values(path: Path, rows: list[list[str]], where: str) -> np.ndarray:
    parsed = [[_number(cell) for cell in row] for row in rows]
    for row_index, row in enumerate(parsed):
        if None in row:
            column = row.index(None)
            place = f"{' ' + where if where else ''} (data row {row_index}, column {column})"
            raise ValueError(
                f"{path} holds a non-numeric value {rows[row_index][column]!r}{place}. Expected numbers only, with at "
                "most one header row and one label column."
            )
    return np.asarray(parsed, dtype=np.float64)
