# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Geometric harmonics of an atlas known only by its region centres (many volumetric atlases ship only those).

Method: the centres are the nodes of a graph whose edge weights fall off with distance, and the table holds the
graph's smoothest vibration modes, the point-cloud counterpart of the surface Laplace–Beltrami modes of the shipped
tables (Laplacian eigenmaps, Belkin & Niyogi 2003):

1. Weights `w_ij = exp(-d_ij² / (2 σ²))` between every pair of centres, `d_ij` in mm and `σ` the median distance from
   a centre to its `num_neighbours`-th nearest centre (the scale of the atlas's spacing, so the weights do not depend
   on the parcels' density); weights below 1e-8 are dropped.
2. The random-walk Laplacian eigenproblem `(D - W) v = λ D v` (`D` = row sums of `W`), solved exactly through its
   symmetric form; the `num_modes` eigenvectors of the smallest eigenvalues, the constant one first, D-orthonormal.
3. Signs by `sign_convention.SIGN_RULE`.

Limits, stated: the modes describe the layout of the centres only, not the folded cortical sheet, the parcels' shapes
or sizes, or the connections between them; the two hemispheres are one graph (joined where their centres lie within
a few σ of each other across the midline), unlike the shipped tables, whose modes are solved per hemisphere; a graph
of `R` centres has `R` modes at most, and modes beyond a few tens resolve distances smaller than the centres' spacing
(noise). The centres must be in one space in millimetres (e.g. MNI). Use a label image or surface labels when the
atlas has them (`table_sources`).
"""

import numpy as np
from scipy.sparse.csgraph import connected_components

from .sign_convention import orient_columns

DEFAULT_NUM_NEIGHBOURS = 8
_SMALLEST_WEIGHT = 1e-8


def centre_harmonics(centres: np.ndarray, num_modes: int, num_neighbours: int = DEFAULT_NUM_NEIGHBOURS) -> np.ndarray:
    """Graph harmonics of region centres (method in the module docstring).

    Args:
        centres: `(num_regions, 3)` coordinates in mm, rows in model ROI order.
        num_modes: columns of the table (the config's `num_geometric_modes`), at most `num_regions`.
        num_neighbours: the neighbour whose median distance sets the kernel width σ.

    Returns:
        `(num_regions, num_modes)` float64, the constant mode first.
    """
    centres = np.asarray(centres, dtype=np.float64)
    if centres.ndim != 2 or centres.shape[1] != 3 or not np.isfinite(centres).all():
        raise ValueError(f"Region centres must be a finite (num_regions, 3) array in mm, got shape {centres.shape}.")
    num_regions = centres.shape[0]
    if not 0 < num_modes <= num_regions:
        raise ValueError(
            f"{num_regions} region centres give at most {num_regions} harmonics, but num_geometric_modes = "
            f"{num_modes}: set num_geometric_modes to at most {num_regions}."
        )
    distances = np.linalg.norm(centres[:, None] - centres[None], axis=-1)
    if (distances[~np.eye(num_regions, dtype=bool)] == 0).any():
        raise ValueError("Two region centres coincide: every region needs its own centre.")
    neighbour = min(num_neighbours, num_regions - 1)
    sigma = float(np.median(np.sort(distances, axis=1)[:, neighbour]))
    weights = np.exp(-(distances**2) / (2 * sigma**2))
    np.fill_diagonal(weights, 0.0)
    weights[weights < _SMALLEST_WEIGHT] = 0.0
    num_pieces, pieces = connected_components(weights > 0, directed=False)
    if num_pieces > 1:
        sizes = sorted(np.bincount(pieces).tolist(), reverse=True)
        raise ValueError(
            f"The region centres fall into {num_pieces} groups of {', '.join(map(str, sizes[:-1][:9]))} and "
            f"{sizes[-1]} centres, farther apart than the graph's kernel reaches (σ = {sigma:.1f} mm, from the "
            f"distances to the {neighbour} nearest centres), so they have no common harmonics. Check that "
            "all centres are in one space in millimetres (e.g. MNI, not voxel indices); an atlas whose regions do lie "
            "that far apart needs its label image or fs_LR surface labels instead of centres (--roi_table_source "
            "label_image or surface_labels, or RoiTableSource('label_image', ...))."
        )
    degree = weights.sum(axis=1)
    scale = 1.0 / np.sqrt(degree)
    symmetric = np.eye(num_regions) - scale[:, None] * weights * scale[None]
    _, vectors = np.linalg.eigh(symmetric)
    modes = scale[:, None] * vectors[:, :num_modes]  # D-orthonormal eigenvectors of the random-walk problem
    return orient_columns(modes)


__all__ = ["centre_harmonics"]
