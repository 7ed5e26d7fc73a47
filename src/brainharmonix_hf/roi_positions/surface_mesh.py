# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Triangle-mesh helpers: sub-mesh extraction and the linear finite-element Laplace–Beltrami matrices.

The weak form of `-Δφ = λφ` with piecewise-linear hat functions gives the generalised eigenproblem
`A φ = λ M φ`, where `A` is the cotangent stiffness matrix and `M` the consistent (not lumped) mass matrix:

- `A_ij = -(cot α_ij + cot β_ij) / 2` for an edge `ij` with opposite angles `α_ij`, `β_ij`; `A_ii = -Σ_j A_ij`.
- `M_ij = Σ_T area(T) / 12` over the triangles `T` sharing edge `ij`; `M_ii = Σ_T area(T) / 6` over those
  containing vertex `i`. `1ᵀ M 1` is the mesh area.
"""

import numpy as np
from scipy import sparse


def triangle_areas(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area of every triangle.

    Args:
        vertices: `(num_vertices, 3)` coordinates.
        faces: `(num_faces, 3)` vertex indices.

    Returns:
        `(num_faces,)` float64 areas.
    """
    corners = np.asarray(vertices, dtype=np.float64)[faces]
    return 0.5 * np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1)


def submesh(vertices: np.ndarray, faces: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut a mesh down to the triangles whose three vertices are all kept.

    Vertices that no kept triangle uses are dropped as well (an isolated vertex has no finite-element support).

    Args:
        vertices: `(num_vertices, 3)` coordinates.
        faces: `(num_faces, 3)` vertex indices.
        keep: `(num_vertices,)` boolean mask of vertices to keep (e.g. cortex, i.e. not medial wall).

    Returns:
        `(sub_vertices, sub_faces, vertex_index)` where `vertex_index[i]` is the original index of sub-mesh
        vertex `i`.
    """
    keep = np.asarray(keep, dtype=bool)
    if keep.shape != (len(vertices),):
        raise ValueError(
            f"`keep` must be a boolean mask with one entry per vertex, shape ({len(vertices)},); got {keep.shape}."
        )
    kept_faces = faces[keep[faces].all(axis=1)]
    vertex_index = np.unique(kept_faces)
    new_index = np.full(len(vertices), -1, dtype=np.int64)
    new_index[vertex_index] = np.arange(len(vertex_index))
    return np.asarray(vertices)[vertex_index], new_index[kept_faces], vertex_index


def laplace_beltrami_matrices(vertices: np.ndarray, faces: np.ndarray) -> tuple[sparse.csc_matrix, sparse.csc_matrix]:
    """Cotangent stiffness matrix `A` and consistent mass matrix `M` of a triangle mesh (linear elements).

    Args:
        vertices: `(num_vertices, 3)` coordinates.
        faces: `(num_faces, 3)` vertex indices; every vertex must belong to at least one triangle.

    Returns:
        `(A, M)`, both symmetric `(num_vertices, num_vertices)` float64 CSC matrices.
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    num_vertices = len(vertices)
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"`faces` must have shape (num_faces, 3); got {faces.shape}.")
    used = np.zeros(num_vertices, dtype=bool)
    used[faces] = True
    if not used.all():
        raise ValueError(
            f"{int((~used).sum())} vertices belong to no triangle; remove them first with `submesh(vertices, faces, "
            "keep)`."
        )
    areas = triangle_areas(vertices, faces)
    if (areas <= 0).any():
        raise ValueError(f"{int((areas <= 0).sum())} triangles have zero area; the mesh is degenerate.")

    rows, cols, stiffness = [], [], []
    for corner in range(3):
        # The angle at `corner` is opposite the edge joining the two other corners.
        i, j = faces[:, (corner + 1) % 3], faces[:, (corner + 2) % 3]
        edge_a = vertices[i] - vertices[faces[:, corner]]
        edge_b = vertices[j] - vertices[faces[:, corner]]
        half_cot = 0.5 * np.einsum("ij,ij->i", edge_a, edge_b) / (2.0 * areas)
        rows += [i, j]
        cols += [j, i]
        stiffness += [-half_cot, -half_cot]
    off_diagonal = sparse.coo_matrix(
        (np.concatenate(stiffness), (np.concatenate(rows), np.concatenate(cols))), shape=(num_vertices, num_vertices)
    ).tocsc()
    stiffness_matrix = off_diagonal - sparse.diags(np.asarray(off_diagonal.sum(axis=1)).ravel())

    pair_rows = np.concatenate([faces[:, a] for a in range(3) for b in range(3)])
    pair_cols = np.concatenate([faces[:, b] for a in range(3) for b in range(3)])
    pair_mass = np.concatenate([areas / (6.0 if a == b else 12.0) for a in range(3) for b in range(3)])
    mass_matrix = sparse.coo_matrix((pair_mass, (pair_rows, pair_cols)), shape=(num_vertices, num_vertices)).tocsc()
    return stiffness_matrix.tocsc(), mass_matrix
