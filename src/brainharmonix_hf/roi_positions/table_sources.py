# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""ROI position tables of any atlas from what the atlas ships: one resolver for every source kind.

A source (`RoiTableSource`) names a kind and a file:

- `tables`: precomputed tables, a `.safetensors` file written by `tables.save_roi_tables` (both tables; nothing is
  computed).
- `label_image`: an MNI-space label NIfTI (labels `1..R`, or the integer ROI labels of the config, in model order);
  parcels are carried to the HCP fs_LR 32k midthickness and its Laplace–Beltrami modes are averaged per parcel
  (`volume_harmonics.volume_labels_on_fs_lr`, then `atlas_tables.fs_lr_geometric_harmonics`).
- `surface_labels`: labels on the fs_LR 32k vertices, left hemisphere first (`2 × 32492` values, `.csv`/`.txt` one
  per line as brainspace ships them, or `.npy`); `atlas_tables.fs_lr_geometric_harmonics`.
- `centres`: region centres in mm (a CSV with `x`, `y`, `z` columns, in model order, or a `.npy` `(R, 3)` array);
  graph harmonics of the centres (`centre_harmonics`, whose docstring states the method and its limits).

Functional gradients (all kinds but `tables`): the diffusion-map gradients (`gradients.compute_gradients`) of a
connectivity matrix, `connectivity` (an `(R, R)` `.csv`/`.npy` file in model order) when given, else the group
connectivity of the training cohort that the caller passes (`group_connectivity` of its series).
"""

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..processing.nifti_io import as_3d, load_image
from .atlas_tables import FS_LR_VERTICES_PER_HEMISPHERE, fs_lr_geometric_harmonics
from .centre_harmonics import centre_harmonics
from .gradients import compute_gradients
from .tables import read_roi_tables
from .volume_harmonics import volume_labels_on_fs_lr

TABLE_SOURCE_KINDS = ("tables", "label_image", "surface_labels", "centres")


@dataclass(frozen=True)
class RoiTableSource:
    """Where an atlas's ROI position tables come from.

    Attributes:
        kind: one of `TABLE_SOURCE_KINDS`.
        path: the file of that kind.
        connectivity: an `(R, R)` connectivity matrix file for the gradients; the cohort's group connectivity when
            `None` (not used by `tables`).
    """

    kind: str
    path: str
    connectivity: str | None = None

    def __post_init__(self):
        if self.kind not in TABLE_SOURCE_KINDS:
            raise ValueError(f"ROI table source must be one of {TABLE_SOURCE_KINDS}, got {self.kind!r}.")
        for name in ("path", "connectivity"):
            value = getattr(self, name)
            if value is not None and not Path(value).is_file():
                raise ValueError(f"The ROI table source's {name} {value} does not exist.")


def group_connectivity(series: Iterable[np.ndarray]) -> np.ndarray:
    """`(R, R)` group functional connectivity of `(R, T)` ROI series: the tanh of the mean Fisher z of each series'
    Pearson correlations (diagonal 1)."""
    total, count = None, 0
    for values in series:
        correlation = np.corrcoef(np.asarray(values, dtype=np.float64))
        if not np.isfinite(correlation).all():
            raise ValueError("A series has a constant ROI: its correlations are undefined; drop or fix that ROI.")
        z = np.arctanh(np.clip(correlation, -0.999999, 0.999999))
        total, count = (z if total is None else total + z), count + 1
    if count == 0:
        raise ValueError("No series to compute the group connectivity from.")
    connectivity = np.tanh(total / count)
    np.fill_diagonal(connectivity, 1.0)
    return connectivity


def _read_array(path: str) -> np.ndarray:
    if path.endswith(".npy"):
        return np.load(path)
    return np.loadtxt(path, delimiter="," if path.endswith(".csv") else None)


def read_centres(path: str) -> np.ndarray:
    """`(R, 3)` centres from a `.npy` array or a CSV/TSV with `x`, `y`, `z` columns (any case; other columns
    ignored)."""
    if path.endswith(".npy"):
        return np.load(path).astype(np.float64)
    table = pd.read_csv(path, sep=None, engine="python")
    columns = {column.strip().lower(): column for column in table.columns}
    missing = [axis for axis in "xyz" if axis not in columns]
    if missing:
        raise ValueError(f"{path} needs x, y and z columns (region centres in mm); it has {list(table.columns)}.")
    return table[[columns[axis] for axis in "xyz"]].to_numpy(dtype=np.float64)


def _label_values(num_rois: int, roi_labels) -> np.ndarray:
    """The image/surface label of each ROI row: the config's integer ROI labels, else `1..R`."""
    if roi_labels is not None and all(str(label).strip().isdigit() for label in roi_labels):
        return np.array([int(label) for label in roi_labels])
    return np.arange(1, num_rois + 1)


def _relabel(labels: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Integer labels -> row numbers `1..R` in the order of `values` (0 elsewhere)."""
    labels = np.asarray(labels).astype(np.int64)
    rows = np.zeros(max(int(labels.max()), int(values.max())) + 1, dtype=np.int64)
    rows[values] = np.arange(1, len(values) + 1)
    return rows[np.clip(labels, 0, None)]


def geometric_harmonics_from_source(source: RoiTableSource, num_rois: int, num_modes: int, roi_labels=None):
    """`(num_rois, num_modes)` float64 geometric harmonics of a `label_image`, `surface_labels` or `centres` source."""
    values = _label_values(num_rois, roi_labels)
    if source.kind == "centres":
        centres = read_centres(source.path)
        if centres.shape[0] != num_rois:
            raise ValueError(f"{source.path} lists {centres.shape[0]} region centres for an atlas of {num_rois} ROIs.")
        return centre_harmonics(centres, num_modes)
    if source.kind == "surface_labels":
        labels = _read_array(source.path).reshape(-1)
        if labels.shape != (2 * FS_LR_VERTICES_PER_HEMISPHERE,):
            raise ValueError(
                f"{source.path} holds {labels.size} labels; fs_LR 32k surface labels have one per vertex, "
                f"{2 * FS_LR_VERTICES_PER_HEMISPHERE} (left hemisphere first)."
            )
        return fs_lr_geometric_harmonics(_relabel(labels, values), num_modes)
    image = as_3d(load_image(source.path), name=source.path)
    label_volume = np.asarray(image.dataobj).astype(np.int64)
    return fs_lr_geometric_harmonics(volume_labels_on_fs_lr(label_volume, image.affine, values), num_modes)


def resolve_roi_tables(
    source: RoiTableSource, config, cohort_connectivity: np.ndarray | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The `(geometric_harmonics, functional_gradients)` float32 tables that `source` gives for a `FunctionJEPAConfig`
    (its `num_rois`, `num_geometric_modes`, `num_gradient_components`, `roi_labels`), ready for
    `model.set_roi_tables`.

    Args:
        source: where the tables come from.
        config: the model config they are for.
        cohort_connectivity: `(R, R)` group connectivity of the training cohort, for the gradients when the source
            names no connectivity file.
    """
    shapes = ((config.num_rois, config.num_geometric_modes), (config.num_rois, config.num_gradient_components))
    if source.kind == "tables":
        tables = read_roi_tables(source.path)
        found = (tuple(tables.geometric_harmonics.shape), tuple(tables.functional_gradients.shape))
        if found != shapes:
            raise ValueError(
                f"{source.path} holds tables of shapes {found[0]} and {found[1]}, but the model config asks for "
                f"{shapes[0]} and {shapes[1]}: set num_rois, num_geometric_modes and num_gradient_components to match."
            )
        return tables.geometric_harmonics, tables.functional_gradients
    if source.connectivity is not None:
        connectivity = _read_array(source.connectivity)
    elif cohort_connectivity is not None:
        connectivity = cohort_connectivity
    else:
        raise ValueError(
            f"The {source.kind} source gives geometric harmonics only: pass a connectivity matrix file for the "
            "gradients, or the cohort's series to compute its group connectivity."
        )
    if connectivity.shape != (config.num_rois, config.num_rois):
        raise ValueError(f"The connectivity matrix is {connectivity.shape}; the atlas has {config.num_rois} ROIs.")
    harmonics = geometric_harmonics_from_source(source, config.num_rois, config.num_geometric_modes, config.roi_labels)
    gradients, _ = compute_gradients(connectivity, config.num_gradient_components)
    return torch.from_numpy(harmonics).float(), torch.from_numpy(gradients).float()


__all__ = [
    "TABLE_SOURCE_KINDS",
    "RoiTableSource",
    "geometric_harmonics_from_source",
    "group_connectivity",
    "read_centres",
    "resolve_roi_tables",
]
