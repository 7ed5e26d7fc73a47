# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""The fMRI file kinds every caller reads (`FMRIFeatureExtractor.read_fmri_file` reads them all):

| kind | names | layout when none is declared |
|---|---|---|
| ROI table | `.csv`, `.tsv`, optionally `.gz` | `.tsv` time-first (BIDS, XCP-D: a column per ROI), `.csv` ROI-first |
| array | `.npy`, one 2D series | ROI-first `(num_rois, num_timepoints)` |
| 4D NIfTI run | `.nii`, `.nii.gz` (or a nibabel image) | parcellated with a label image on the run's grid |
"""

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .nifti_io import NIFTI_SUFFIXES, load_header
from .roi_csv import ROI_TABLE_SUFFIXES, read_roi_table

NPY_SUFFIX = ".npy"
TIME_FIRST_TABLE_SUFFIXES = (".tsv", ".tsv.gz")


@dataclass(frozen=True)
class FMRIFileSeries:
    """One fMRI file read and checked.

    Attributes:
        series: float64 `(num_timepoints, num_rois)` in the model's ROI order.
        header_repetition_time: the TR a NIfTI header states (seconds), `None` for tables and arrays.
    """

    series: np.ndarray
    header_repetition_time: float | None = None


def fmri_file_kind(source) -> str:
    """`"roi_table"`, `"npy"` or `"nifti"` for a path (by its name) or a nibabel image; refuses anything else."""
    if hasattr(source, "affine") and hasattr(source, "header"):
        return "nifti"
    name = Path(source).name.lower()
    if name.endswith(ROI_TABLE_SUFFIXES):
        return "roi_table"
    if name.endswith(NPY_SUFFIX):
        return "npy"
    if name.endswith(NIFTI_SUFFIXES):
        return "nifti"
    raise ValueError(
        f"Cannot tell what the fMRI file {source} holds from its name: use an ROI table (.csv/.tsv, optionally .gz), "
        "a .npy array (rows = ROIs) or a 4D NIfTI run (.nii/.nii.gz), or load it and pass the series as an array."
    )


def default_layout(path: str | os.PathLike) -> str:
    """The axis order of an fMRI file whose layout is not declared: `"time_first"` for `.tsv` tables (BIDS and XCP-D
    write one column per ROI), `"rois_first"` for `.csv` tables and `.npy` arrays."""
    return "time_first" if str(path).lower().endswith(TIME_FIRST_TABLE_SUFFIXES) else "rois_first"


def load_npy_series(path: str | os.PathLike) -> np.ndarray:
    """The 2D array of a `.npy` file (never a pickle)."""
    try:
        series = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise FileNotFoundError(f"No fMRI array at {path}. Check the path.") from None
    except ValueError as error:
        raise ValueError(f"{path} is not a numeric .npy array ({error}).") from None
    if series.ndim != 2:
        raise ValueError(f"{path} holds an array of shape {series.shape}; save one 2D series per file.")
    return series


def count_frames(path: str | os.PathLike) -> int:
    """Frames of an fMRI file in its default layout (`default_layout`), from its header where the kind has one
    (`.npy`, NIfTI), else by reading the table."""
    kind = fmri_file_kind(path)
    if kind == "npy":
        return int(np.load(path, mmap_mode="r").shape[1])
    if kind == "nifti":
        return int(load_header(path).shape[3])
    return int(read_roi_table(path, layout=default_layout(path)).series.shape[1])
