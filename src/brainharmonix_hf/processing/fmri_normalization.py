# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Intensity normalisation of ROI time series: none, z-score (per ROI or global), or cohort robust scaling.

All functions take one time-first series `(num_timepoints, num_rois)` of real frames (no padding) and return a
float32 array of the same shape.
"""

from collections.abc import Sequence

import numpy as np

from ..modeling.user_warnings import warn_at_caller

NORMALIZATIONS = ("none", "zscore", "robust")
ZSCORE_SCOPES = ("roi", "global")


def zscore(series: np.ndarray, scope: str = "roi") -> np.ndarray:
    """Subtract the mean and divide by the standard deviation over time (`scope="roi"`, one pair per ROI) or over
    every frame and ROI (`scope="global"`). Constant ROIs (or a constant series) become zeros, with a warning."""
    if scope not in ZSCORE_SCOPES:
        raise ValueError(f"zscore_scope must be one of {ZSCORE_SCOPES}, got {scope!r}.")
    series = np.asarray(series, dtype=np.float64)
    axis = 0 if scope == "roi" else None
    mean = series.mean(axis=axis, keepdims=True)
    std = series.std(axis=axis, keepdims=True)
    # Relative threshold: a constant float series has a rounding-level, not exactly zero, standard deviation.
    constant = std <= 1e-10 * np.abs(mean)
    if np.any(constant):
        what = (
            f"{int(constant.sum())} ROI(s) ({', '.join(str(roi) for roi in np.flatnonzero(constant)[:10])}"
            f"{' ...' if constant.sum() > 10 else ''}) are"
            if scope == "roi"
            else "the whole series is"
        )
        warn_at_caller(
            f"Z-score: {what} constant over time (zero variance) and are set to 0. Check for ROIs outside the "
            "field of view or a failed parcellation."
        )
    return ((series - mean) / np.where(constant, 1.0, std)).astype(np.float32)


def fit_robust_statistics(subject_means: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Cohort statistics for robust scaling: per ROI, the median and the interquartile range over subjects of each
    subject's temporal mean.

    Args:
        subject_means: per-subject temporal ROI means, `(num_rois,)` each, one per subject, all with the same ROIs.

    Returns:
        `tuple(np.ndarray, np.ndarray)`: float64 `median` and `iqr`, each `(num_rois,)`.
    """
    if len(subject_means) < 2:
        raise ValueError(
            f"Robust statistics need a cohort: got {len(subject_means)} series. Fit on at least two subjects (ideally "
            "the whole training cohort)."
        )
    roi_counts = {np.shape(means) for means in subject_means}
    if len(roi_counts) != 1:
        raise ValueError(f"Every series must have the same number of ROIs to fit statistics; got {sorted(roi_counts)}.")
    subject_means = np.stack([np.asarray(means, dtype=np.float64) for means in subject_means])
    median = np.median(subject_means, axis=0)
    lower, upper = np.percentile(subject_means, [25, 75], axis=0)
    iqr = upper - lower
    if np.any(iqr == 0):
        flat = np.flatnonzero(iqr == 0)
        raise ValueError(
            f"The interquartile range of the subject means is zero for {flat.size} ROI(s) (first: {flat[:10].tolist()}"
            "), so robust scaling would divide by zero. Fit on a larger cohort whose ROI means differ, or use "
            "normalization='zscore'."
        )
    return median, iqr


def check_normalized_scale(series: np.ndarray, threshold: float | None, name: str = "The series") -> None:
    """Refuse a time-first series that is raw-scale BOLD: median over ROIs of `|temporal mean|` above `threshold`.

    Normalised series (z-scored, robust-scaled, demeaned, percent change minus 100) have ROI means near 0; raw BOLD
    has means in the hundreds or thousands, which a model trained on normalised input turns into near-identical
    embeddings for every subject. `threshold=None` skips the check.
    """
    if threshold is None or len(series) == 0:
        return
    level = float(np.median(np.abs(np.asarray(series, dtype=np.float64).mean(axis=0))))
    if level > threshold:
        raise ValueError(
            f"{name} looks like raw-scale BOLD (median absolute ROI mean {level:.4g} > raw_scale_threshold="
            f"{threshold:g}) but this processor passes values unchanged (normalization='none') and the model expects "
            "normalised input. Set normalization='zscore', or 'robust' with cohort statistics (fit_robust_statistics), "
            "or normalise the series yourself; set raw_scale_threshold=None only if this scale is intended."
        )


def robust_scale(series: np.ndarray, median: np.ndarray, iqr: np.ndarray) -> np.ndarray:
    """`(series - median) / iqr` with per-ROI cohort statistics `(num_rois,)`."""
    return ((np.asarray(series, dtype=np.float64) - median) / iqr).astype(np.float32)
