# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Geometric harmonics: Laplace–Beltrami eigenmodes of a cortical surface, averaged inside parcels.

Modes solve `A φ = λ M φ` (cotangent stiffness `A`, consistent mass `M`; see `surface_mesh`), are normalised to
`φᵀ M φ = 1` (so the first, constant mode equals `1 / sqrt(surface area)`), get deterministic signs
(`sign_convention.SIGN_RULE`) and are then averaged over the vertices of each parcel.
"""

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import eigsh

from .sign_convention import orient_columns
from .surface_mesh import laplace_beltrami_matrices

# Shift just below the spectrum: `A` is singular (constant mode, λ = 0), `A - σM` is not.
_SHIFT = -0.01


def laplace_beltrami_eigenmodes(
    vertices: np.ndarray, faces: np.ndarray, num_modes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Smallest `num_modes` eigenpairs of the Laplace–Beltrami operator (linear FEM, consistent mass).

    Solved to machine precision with shift-invert Lanczos on the sparse generalised problem; the start vector is
    fixed, so repeated calls give identical results.

    Args:
        vertices: `(num_vertices, 3)` coordinates of one connected surface (e.g. one hemisphere without the
            medial wall).
        faces: `(num_faces, 3)` vertex indices; every vertex must belong to a triangle.
        num_modes: number of modes, including the constant one.

    Returns:
        `(eigenvalues, modes)`: `(num_modes,)` ascending and `(num_vertices, num_modes)` float64, M-orthonormal,
        signs fixed by `orient_columns`.
    """
    stiffness, mass = laplace_beltrami_matrices(vertices, faces)
    num_vertices = stiffness.shape[0]
    if not 0 < num_modes < num_vertices:
        raise ValueError(f"`num_modes` must be between 1 and {num_vertices - 1} for this mesh; got {num_modes}.")
    start = np.random.default_rng(0).uniform(-1.0, 1.0, num_vertices)
    eigenvalues, modes = eigsh(stiffness, k=num_modes, M=mass, sigma=_SHIFT, which="LM", v0=start)
    order = np.argsort(eigenvalues)
    return eigenvalues[order], orient_columns(modes[:, order])


def parcel_means(values: np.ndarray, labels: np.ndarray, num_parcels: int) -> np.ndarray:
    """Plain (unweighted) mean of vertex values inside each parcel.

    Args:
        values: `(num_vertices, num_features)` vertex values.
        labels: `(num_vertices,)` integer parcel labels `1..num_parcels`; 0 marks vertices outside every parcel
            (e.g. medial wall), which are ignored.
        num_parcels: number of parcels; every label `1..num_parcels` must occur at least once.

    Returns:
        `(num_parcels, num_features)`; row `r` is the mean over vertices labelled `r + 1`.
    """
    labels = np.asarray(labels)
    if labels.shape != (len(values),):
        raise ValueError(f"`labels` must have one entry per vertex, shape ({len(values)},); got {labels.shape}.")
    if labels.min() < 0 or labels.max() > num_parcels:
        raise ValueError(
            f"labels must lie in 0..{num_parcels} (0 = unlabelled); got {labels.min()}..{labels.max()}. Shift the "
            "labels of a hemisphere so that they start at 1, or pass the right `num_parcels`."
        )
    counts = np.bincount(labels, minlength=num_parcels + 1)[1:]
    if (counts == 0).any():
        missing = (np.flatnonzero(counts == 0) + 1).tolist()
        raise ValueError(f"parcels {missing} have no vertex; check the labelling matches the mesh.")
    inside = labels > 0
    membership = sparse.csr_matrix(
        (np.ones(inside.sum()), (labels[inside] - 1, np.flatnonzero(inside))), shape=(num_parcels, len(values))
    )
    return (membership @ np.asarray(values, dtype=np.float64)) / counts[:, None]


def compute_geometric_harmonics(
    vertices: np.ndarray, faces: np.ndarray, labels: np.ndarray, num_modes: int, num_parcels: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Parcel-level geometric harmonics of one surface.

    Args:
        vertices: `(num_vertices, 3)` coordinates of one connected surface (cut the medial wall out first with
            `surface_mesh.submesh`, so that it takes no part in the eigenproblem).
        faces: `(num_faces, 3)` vertex indices.
        labels: `(num_vertices,)` parcel labels `1..num_parcels`, 0 = unlabelled (excluded from every mean).
        num_modes: number of modes, including the constant one.
        num_parcels: number of parcels; defaults to `labels.max()`.

    Returns:
        `(parcel_modes, eigenvalues)`: `(num_parcels, num_modes)` parcel means of the M-orthonormal,
        sign-fixed modes and their `(num_modes,)` ascending eigenvalues.
    """
    num_parcels = int(np.max(labels)) if num_parcels is None else num_parcels
    eigenvalues, modes = laplace_beltrami_eigenmodes(vertices, faces, num_modes)
    return parcel_means(modes, labels, num_parcels), eigenvalues
