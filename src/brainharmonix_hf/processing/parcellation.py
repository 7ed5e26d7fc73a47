# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Parcellation: average voxel or vertex time series inside atlas labels, in one pass.

Every function returns ROI-first series `(num_labels, num_timepoints)` together with the label values in row
order, so the ROI order is always explicit.
"""

from collections.abc import Sequence

import numpy as np
from scipy import sparse
from scipy.spatial import cKDTree

from .nifti_io import check_labels_on_grid, load_image, require_4d


def _integer_labels(label_values: np.ndarray, what: str) -> np.ndarray:
    """Return `label_values` as int64, refusing non-integer or non-finite labels."""
    label_values = np.asarray(label_values)
    if not np.all(np.isfinite(label_values)) or not np.array_equal(label_values, np.round(label_values)):
        raise ValueError(
            f"The {what} holds non-integer or non-finite values; an atlas must hold integer labels (0 = unlabelled). "
            "Load the atlas itself, not a probabilistic map, and resample it with nearest interpolation."
        )
    return label_values.astype(np.int64)


def _select_labels(unit_labels: np.ndarray, labels: Sequence[int] | None, what: str) -> np.ndarray:
    """The labels to average, in output order: `labels` if given (all must be present), else every non-zero one."""
    present = np.unique(unit_labels)
    present = present[present != 0]
    if labels is None:
        if present.size == 0:
            raise ValueError(f"The {what} holds no non-zero label: there is nothing to parcellate.")
        return present
    labels = np.asarray(labels, dtype=np.int64)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError("`labels` must be a non-empty 1-D sequence of integer label values.")
    if np.any(labels == 0):
        raise ValueError("Label 0 means unlabelled and cannot be requested; remove it from `labels`.")
    absent = np.setdiff1d(labels, present)
    if absent.size:
        shown = ", ".join(str(label) for label in absent[:20]) + (" ..." if absent.size > 20 else "")
        raise ValueError(
            f"{absent.size} requested label(s) are absent from the {what}: {shown}. Use the atlas the model expects "
            f"(labels present here run from {present.min() if present.size else 'none'} to "
            f"{present.max() if present.size else 'none'}), or request only the labels the atlas holds."
        )
    return labels


def average_by_label(unit_series: np.ndarray, unit_labels: np.ndarray, labels: Sequence[int] | None = None):
    """Mean time series of the units (voxels or vertices) carrying each label, as one sparse product.

    Args:
        unit_series (`np.ndarray` of shape `(num_units, num_timepoints)`): one time series per voxel or vertex.
        unit_labels (`np.ndarray` of shape `(num_units,)`): integer label of each unit, 0 = unlabelled.
        labels (`Sequence[int]`, *optional*): labels to return, in this order; default every non-zero label, sorted.

    Returns:
        `tuple(np.ndarray, np.ndarray)`: float32 series `(num_labels, num_timepoints)` and the int64 labels of its rows.
    """
    unit_labels = _integer_labels(unit_labels, "label array")
    labels = _select_labels(unit_labels, labels, "label array")
    units = np.flatnonzero(np.isin(unit_labels, labels))
    label_order = np.argsort(labels)
    rows = label_order[np.searchsorted(labels[label_order], unit_labels[units])]
    counts = np.bincount(rows, minlength=labels.size)
    # Columns span every unit (unlabelled ones stay empty), so the series are read in place, never gathered.
    averaging = sparse.csr_matrix(
        ((1.0 / counts[rows]).astype(np.float32), (rows, units)), shape=(labels.size, len(unit_labels))
    )
    series = averaging @ np.asarray(unit_series, dtype=np.float32)
    return series, labels


def parcellate_volume(img_4d, label_img, labels: Sequence[int] | None = None):
    """Mean time series inside each label of a 3D atlas that sits on the 4D image's voxel grid.

    Args:
        img_4d: a 4D NIfTI series `(x, y, z, time)`: a `.nii`/`.nii.gz` path or a nibabel image.
        label_img: a 3D integer atlas on the same voxel grid (same shape and affine), as a path or a nibabel image.
        labels (`Sequence[int]`, *optional*): labels to return, in this order; default every non-zero label, sorted.

    Returns:
        `tuple(np.ndarray, np.ndarray)`: float32 series `(num_labels, num_timepoints)` and the labels of its rows.
    """
    image = require_4d(load_image(img_4d), name="The 4D image")
    atlas = check_labels_on_grid(load_image(label_img), image)
    voxel_series = np.asarray(image.dataobj, dtype=np.float32).reshape(-1, image.shape[3])
    return average_by_label(voxel_series, np.asarray(atlas.dataobj).reshape(-1), labels)


def parcellate_surface(vertex_data: np.ndarray, vertex_labels: np.ndarray, labels: Sequence[int] | None = None):
    """Mean time series inside each label of a surface atlas.

    Args:
        vertex_data (`np.ndarray` of shape `(num_vertices, num_timepoints)`): vertex-wise series, hemispheres
            concatenated in the same order as `vertex_labels`.
        vertex_labels (`np.ndarray` of shape `(num_vertices,)`): integer label per vertex, 0 = unlabelled.
        labels (`Sequence[int]`, *optional*): labels to return, in this order; default every non-zero label, sorted.

    Returns:
        `tuple(np.ndarray, np.ndarray)`: float32 series `(num_labels, num_timepoints)` and the labels of its rows.
    """
    vertex_data = np.asarray(vertex_data)
    vertex_labels = np.asarray(vertex_labels).reshape(-1)
    if vertex_data.ndim != 2 or vertex_data.shape[0] != vertex_labels.size:
        hint = (
            " The data looks time-first: pass `vertex_data.T`."
            if vertex_data.ndim == 2 and vertex_data.shape[1] == vertex_labels.size
            else ""
        )
        raise ValueError(
            f"`vertex_data` must have shape (num_vertices={vertex_labels.size}, num_timepoints), one row per entry of "
            f"`vertex_labels`, but has shape {vertex_data.shape}.{hint}"
        )
    return average_by_label(vertex_data, vertex_labels, labels)


def transfer_labels(source_coords: np.ndarray, source_labels: np.ndarray, target_coords: np.ndarray) -> np.ndarray:
    """Label each target vertex with the label of its nearest source vertex in 3-D (one hemisphere at a time).

    Both meshes must be in the same space (e.g. two midthickness surfaces of the same template space).

    Args:
        source_coords (`np.ndarray` of shape `(num_source_vertices, 3)`): labelled mesh vertex coordinates.
        source_labels (`np.ndarray` of shape `(num_source_vertices,)`): integer labels of the source vertices.
        target_coords (`np.ndarray` of shape `(num_target_vertices, 3)`): vertex coordinates to label.

    Returns:
        `np.ndarray` of shape `(num_target_vertices,)`: int64 labels.
    """
    source_coords, target_coords = np.asarray(source_coords), np.asarray(target_coords)
    source_labels = _integer_labels(np.asarray(source_labels).reshape(-1), "source label array")
    for name, coords in (("source_coords", source_coords), ("target_coords", target_coords)):
        if coords.ndim != 2 or coords.shape[1] != 3:
            raise ValueError(f"`{name}` must have shape (num_vertices, 3), got {coords.shape}.")
    if source_coords.shape[0] != source_labels.size:
        raise ValueError(
            f"`source_labels` has {source_labels.size} entries but `source_coords` has {source_coords.shape[0]} "
            "vertices; pass the labels of this very mesh (one hemisphere at a time)."
        )
    _, nearest = cKDTree(source_coords).query(target_coords)
    return source_labels[nearest]
