# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""ROI position harmonics for a volumetric atlas (a 3-D label image in MNI space) with subcortical parcels.

Stated rule:

- Cortical parcels go through the surface: the label image is sampled at the vertices of the HCP S1200 fs_LR 32k
  midthickness (an MNI-space group surface; the voxel that contains each vertex gives its label), a vertex keeps a
  label only when the parcel's voxel centroid lies in the vertex's hemisphere (x < 0 left), and a parcel that covers
  no cortex vertex takes the unlabelled cortex vertex nearest its centroid. Their modes are the fs_LR
  Laplace–Beltrami eigenmodes averaged per parcel (`atlas_tables.fs_lr_geometric_harmonics`).
- Subcortical parcels get the eigenmodes of the volumetric Laplacian of a connected voxel domain you pass (the
  6-neighbour graph Laplacian on the voxel grid: the finite-difference Laplace–Beltrami operator of the volume with
  Neumann boundary), averaged over the parcel's voxels inside the domain.
- The table has `num_cortical_modes + num_subcortical_modes` columns: cortical modes in the first block (zero on
  subcortical rows), subcortical modes in the second (zero on cortical rows); rows follow the order of
  `parcel_labels`. Signs follow `sign_convention.SIGN_RULE`.
"""

import nibabel as nib
import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import eigsh

from .atlas_tables import fs_lr_geometric_harmonics, fs_lr_midthickness
from .harmonics import _SHIFT, parcel_means
from .sign_convention import orient_columns


def voxel_laplacian(domain: np.ndarray) -> sparse.csc_matrix:
    """6-neighbour graph Laplacian `D - W` of the voxels of `domain` (Neumann boundary: no edge leaves the domain).

    Args:
        domain: `(X, Y, Z)` boolean mask.

    Returns:
        `(num_voxels, num_voxels)` sparse Laplacian, voxels in `np.flatnonzero(domain)` order.
    """
    index = np.full(domain.shape, -1, dtype=np.int64)
    index[domain] = np.arange(int(domain.sum()))
    rows, cols = [], []
    for axis in range(3):
        shifted = np.moveaxis(index, axis, 0)
        first, second = shifted[:-1], shifted[1:]
        both = (first >= 0) & (second >= 0)
        rows.append(first[both])
        cols.append(second[both])
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    num_voxels = int(domain.sum())
    adjacency = sparse.coo_matrix((np.ones(rows.size), (rows, cols)), shape=(num_voxels, num_voxels))
    adjacency = (adjacency + adjacency.T).tocsr()
    return (sparse.diags(np.asarray(adjacency.sum(axis=1)).ravel()) - adjacency).tocsc()


def volume_eigenmodes(domain: np.ndarray, num_modes: int) -> tuple[np.ndarray, np.ndarray]:
    """Smallest `num_modes` eigenpairs of `voxel_laplacian(domain)` (shift-invert Lanczos, fixed start vector).

    Returns:
        `(eigenvalues, modes)`: `(num_modes,)` ascending and `(num_voxels, num_modes)` orthonormal modes, voxels in
        `np.flatnonzero(domain)` order, signs fixed by `orient_columns`.
    """
    domain = np.asarray(domain, dtype=bool)
    if domain.ndim != 3:
        raise ValueError(f"The domain must be a 3-D boolean voxel mask; got shape {domain.shape}.")
    laplacian = voxel_laplacian(domain)
    num_voxels = laplacian.shape[0]
    if not 0 < num_modes < num_voxels:
        raise ValueError(f"`num_modes` must be between 1 and {num_voxels - 1} for this domain; got {num_modes}.")
    num_groups, groups = connected_components(laplacian, directed=False)
    if num_groups > 1:
        raise ValueError(
            f"The domain falls into {num_groups} 6-connected pieces (sizes {np.bincount(groups)[:10].tolist()}), so "
            "its low modes are not unique; keep its largest piece or fill the gaps."
        )
    start = np.random.default_rng(0).uniform(-1.0, 1.0, num_voxels)
    eigenvalues, modes = eigsh(laplacian, k=num_modes, sigma=_SHIFT, which="LM", v0=start)
    order = np.argsort(eigenvalues)
    return eigenvalues[order], orient_columns(modes[:, order])


def volume_geometric_harmonics(
    label_volume: np.ndarray, domain: np.ndarray, parcel_labels: np.ndarray, num_modes: int
) -> np.ndarray:
    """Volumetric eigenmodes of `domain` averaged over each parcel's voxels inside it.

    Args:
        label_volume: `(X, Y, Z)` integer labels, 0 = background.
        domain: `(X, Y, Z)` boolean mask on the same grid, one 6-connected piece.
        parcel_labels: `(P,)` label values, in row order.
        num_modes: eigenmodes (including the constant one).

    Returns:
        `(P, num_modes)` float64.
    """
    label_volume, domain = np.asarray(label_volume), np.asarray(domain, dtype=bool)
    if label_volume.shape != domain.shape:
        raise ValueError(f"The labels {label_volume.shape} and the domain {domain.shape} must share one voxel grid.")
    _, modes = volume_eigenmodes(domain, num_modes)
    rows = np.zeros(max(int(label_volume.max()), int(np.max(parcel_labels))) + 1, dtype=np.int64)
    rows[np.asarray(parcel_labels)] = np.arange(1, len(parcel_labels) + 1)
    domain_labels = rows[label_volume[domain]]
    counts = np.bincount(domain_labels, minlength=len(parcel_labels) + 1)[1:]
    if (counts == 0).any():
        missing = np.asarray(parcel_labels)[counts == 0][:10].tolist()
        raise ValueError(f"Parcels {missing} have no voxel inside the domain; use a domain that covers them.")
    return parcel_means(modes, domain_labels, len(parcel_labels))


def volume_labels_on_fs_lr(label_volume: np.ndarray, affine: np.ndarray, cortical_labels: np.ndarray) -> np.ndarray:
    """Cortical parcels of an MNI-space label image carried onto the fs_LR 32k vertices (rule in the module docstring).

    Args:
        label_volume: `(X, Y, Z)` integer labels (0 and negative values: background).
        affine: `(4, 4)` voxel-to-MNI (mm) affine of `label_volume`.
        cortical_labels: `(C,)` label values of the cortical parcels.

    Returns:
        `(2 * 32492,)` labels `1..C` (row `c` of the cortical block is label `c + 1`), left hemisphere first.
    """
    cortical_labels = np.asarray(cortical_labels)
    rows = np.zeros(max(int(label_volume.max()), int(cortical_labels.max())) + 1, dtype=np.int64)
    rows[cortical_labels] = np.arange(1, len(cortical_labels) + 1)
    voxel_rows = rows[np.clip(label_volume, 0, None)]  # negative labels are background, like 0
    voxels = np.argwhere(voxel_rows > 0)
    if np.unique(voxel_rows[tuple(voxels.T)]).size < len(cortical_labels):
        absent = np.setdiff1d(cortical_labels, label_volume[tuple(voxels.T)])
        raise ValueError(f"Cortical labels {absent[:10].tolist()} have no voxel in the label image.")
    centroids = parcel_means(
        nib.affines.apply_affine(affine, voxels), voxel_rows[tuple(voxels.T)], len(cortical_labels)
    )
    inverse = np.linalg.inv(affine)
    surface_labels = []
    for side, (vertices, _, cortex) in enumerate(fs_lr_midthickness()):
        ijk = np.rint(nib.affines.apply_affine(inverse, vertices)).astype(np.int64)
        inside = cortex & np.all((ijk >= 0) & (ijk < np.array(label_volume.shape)), axis=1)
        labels = np.zeros(len(vertices), dtype=np.int64)
        labels[inside] = voxel_rows[tuple(ijk[inside].T)]
        on_this_side = (centroids[:, 0] < 0) if side == 0 else (centroids[:, 0] >= 0)
        labels[labels > 0] *= on_this_side[labels[labels > 0] - 1]
        for row in np.flatnonzero(on_this_side & ~np.isin(np.arange(1, len(cortical_labels) + 1), labels)):
            free = np.flatnonzero(cortex & (labels == 0))
            labels[free[np.linalg.norm(vertices[free] - centroids[row], axis=1).argmin()]] = row + 1
        surface_labels.append(labels)
    return np.concatenate(surface_labels)


def volumetric_atlas_harmonics(
    label_volume: np.ndarray,
    affine: np.ndarray,
    parcel_labels: np.ndarray,
    is_subcortical: np.ndarray,
    subcortical_domain: np.ndarray,
    num_cortical_modes: int,
    num_subcortical_modes: int,
) -> np.ndarray:
    """Geometric-harmonics table of a volumetric atlas with cortical and subcortical parcels (module docstring rule).

    Args:
        label_volume: `(X, Y, Z)` integer labels in MNI space, 0 = background.
        affine: `(4, 4)` voxel-to-MNI (mm) affine.
        parcel_labels: `(R,)` label values in model ROI order.
        is_subcortical: `(R,)` booleans, True for the subcortical parcels.
        subcortical_domain: `(X, Y, Z)` boolean mask, one 6-connected piece holding the subcortical parcels.
        num_cortical_modes: fs_LR eigenmodes per hemisphere (first column block).
        num_subcortical_modes: volumetric eigenmodes (second column block).

    Returns:
        `(R, num_cortical_modes + num_subcortical_modes)` float64; set the config's `num_geometric_modes` to the sum.
    """
    label_volume = np.asarray(label_volume).astype(np.int64)
    parcel_labels, is_subcortical = np.asarray(parcel_labels), np.asarray(is_subcortical, dtype=bool)
    if label_volume.ndim != 3 or parcel_labels.shape != is_subcortical.shape:
        raise ValueError(
            f"Need a 3-D label image and one `is_subcortical` flag per parcel label; got shapes {label_volume.shape},"
            f" {parcel_labels.shape} and {is_subcortical.shape}."
        )
    table = np.zeros((len(parcel_labels), num_cortical_modes + num_subcortical_modes))
    cortical = parcel_labels[~is_subcortical]
    surface_labels = volume_labels_on_fs_lr(label_volume, affine, cortical)
    table[~is_subcortical, :num_cortical_modes] = fs_lr_geometric_harmonics(surface_labels, num_cortical_modes)
    table[is_subcortical, num_cortical_modes:] = volume_geometric_harmonics(
        label_volume, subcortical_domain, parcel_labels[is_subcortical], num_subcortical_modes
    )
    return table
