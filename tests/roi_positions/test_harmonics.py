"""Laplace–Beltrami FEM, eigenmodes, sign rule and parcel means on small hand-built meshes."""

import numpy as np
import pytest

from brainharmonix_hf.roi_positions.harmonics import (
    compute_geometric_harmonics,
    laplace_beltrami_eigenmodes,
    parcel_means,
)
from brainharmonix_hf.roi_positions.sign_convention import orient_columns
from brainharmonix_hf.roi_positions.surface_mesh import laplace_beltrami_matrices, submesh, triangle_areas


def icosphere(subdivisions: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit sphere: an icosahedron whose triangles are split in four `subdivisions` times, projected outwards."""
    golden = (1 + 5**0.5) / 2
    vertices = [
        (-1, golden, 0), (1, golden, 0), (-1, -golden, 0), (1, -golden, 0),
        (0, -1, golden), (0, 1, golden), (0, -1, -golden), (0, 1, -golden),
        (golden, 0, -1), (golden, 0, 1), (-golden, 0, -1), (-golden, 0, 1),
    ]  # fmt: skip
    faces = [
        (0, 11, 5), (0, 5, 1), (0, 1, 7), (0, 7, 10), (0, 10, 11), (1, 5, 9), (5, 11, 4), (11, 10, 2), (10, 7, 6),
        (7, 1, 8), (3, 9, 4), (3, 4, 2), (3, 2, 6), (3, 6, 8), (3, 8, 9), (4, 9, 5), (2, 4, 11), (6, 2, 10),
        (8, 6, 7), (9, 8, 1),
    ]  # fmt: skip
    vertices = [np.array(v, dtype=np.float64) / np.linalg.norm(v) for v in vertices]
    for _ in range(subdivisions):
        faces = split_triangles(vertices, faces)
    return np.array(vertices), np.array(faces, dtype=np.int64)


def split_triangles(vertices: list, faces: list) -> list:
    """Split every triangle in four through its edge midpoints (appended to `vertices`, on the unit sphere)."""
    midpoints = {}

    def midpoint(a, b):
        key = (min(a, b), max(a, b))
        if key not in midpoints:
            middle = vertices[a] + vertices[b]
            vertices.append(middle / np.linalg.norm(middle))
            midpoints[key] = len(vertices) - 1
        return midpoints[key]

    split = []
    for a, b, c in faces:
        ab, bc, ca = midpoint(a, b), midpoint(b, c), midpoint(c, a)
        split += [(a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca)]
    return split


def bumpy_sphere() -> tuple[np.ndarray, np.ndarray]:
    """An irregular closed surface (ellipsoid with radial noise): every eigenvalue is simple."""
    vertices, faces = icosphere(3)
    radius = 1 + 0.05 * np.random.default_rng(0).standard_normal(len(vertices))
    return vertices * radius[:, None] * np.array([1.0, 1.3, 0.8]), faces


def grid_plane(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat `size x size` vertex grid in the z = 0 plane, each square split into two triangles."""
    x, y = np.meshgrid(np.arange(size, dtype=np.float64), np.arange(size, dtype=np.float64) * 0.7)
    vertices = np.stack([x.ravel(), y.ravel(), np.zeros(size * size)], axis=1)
    corner = (np.arange(size - 1)[:, None] * size + np.arange(size - 1)[None, :]).ravel()
    faces = np.concatenate(
        [np.stack([corner, corner + 1, corner + size + 1], 1), np.stack([corner, corner + size + 1, corner + size], 1)]
    )
    return vertices, faces


def test_fem_matrices_integrate_area_and_reproduce_linear_functions():
    vertices, faces = grid_plane(6)
    stiffness, mass = laplace_beltrami_matrices(vertices, faces)
    area = 5 * 5 * 0.7
    assert mass.sum() == pytest.approx(area)
    np.testing.assert_allclose(abs(stiffness - stiffness.T).max(), 0, atol=1e-12)
    np.testing.assert_allclose(stiffness @ np.ones(len(vertices)), 0, atol=1e-12)
    # A linear function is harmonic: its FEM Laplacian vanishes away from the boundary.
    interior = (vertices[:, 0] > 0) & (vertices[:, 0] < 5) & (vertices[:, 1] > 0) & (vertices[:, 1] < 5 * 0.7)
    linear = 2.0 * vertices[:, 0] - 3.0 * vertices[:, 1]
    np.testing.assert_allclose((stiffness @ linear)[interior], 0, atol=1e-12)
    # Dirichlet energy of f = x on the rectangle: ∫|∇f|² = area.
    assert vertices[:, 0] @ stiffness @ vertices[:, 0] == pytest.approx(area)


def test_constant_mode_is_inverse_sqrt_area_and_modes_are_mass_orthonormal():
    vertices, faces = bumpy_sphere()
    eigenvalues, modes = laplace_beltrami_eigenmodes(vertices, faces, 10)
    area = triangle_areas(vertices, faces).sum()
    assert abs(eigenvalues[0]) < 1e-10
    np.testing.assert_allclose(modes[:, 0], 1 / np.sqrt(area), rtol=1e-8)
    _, mass = laplace_beltrami_matrices(vertices, faces)
    np.testing.assert_allclose(modes.T @ mass @ modes, np.eye(10), atol=1e-9)
    assert np.all(np.diff(eigenvalues) > 0)


def test_unit_sphere_spectrum_is_l_times_l_plus_one_with_multiplicities_1_3_5_7():
    vertices, faces = icosphere(4)
    eigenvalues, _ = laplace_beltrami_eigenmodes(vertices, faces, 16)
    expected = np.repeat([0, 2, 6, 12], [1, 3, 5, 7])
    np.testing.assert_allclose(eigenvalues, expected, rtol=0.01, atol=1e-10)


def test_eigenmodes_agree_with_lapy():
    lapy = pytest.importorskip("lapy")
    vertices, faces = bumpy_sphere()
    lapy_eigenvalues, lapy_modes = lapy.Solver(lapy.TriaMesh(vertices, faces), lump=False).eigs(k=12)
    eigenvalues, modes = laplace_beltrami_eigenmodes(vertices, faces, 12)
    np.testing.assert_allclose(eigenvalues, lapy_eigenvalues, rtol=1e-9, atol=1e-12)
    signs = np.sign(np.sum(modes * lapy_modes, axis=0))
    np.testing.assert_allclose(modes, lapy_modes * signs, atol=1e-8)


def test_sign_rule_ignores_solver_sign_and_vertex_order():
    vectors = np.random.default_rng(1).standard_normal((50, 4))
    oriented = orient_columns(vectors)
    assert np.all(oriented[np.abs(oriented).argmax(axis=0), np.arange(4)] > 0)
    np.testing.assert_array_equal(orient_columns(vectors * np.array([-1, 1, -1, 1])), oriented)
    permutation = np.random.default_rng(2).permutation(50)
    np.testing.assert_array_equal(orient_columns(vectors[permutation]), oriented[permutation])


def test_eigenmodes_follow_a_relabelling_of_the_mesh_vertices():
    vertices, faces = bumpy_sphere()
    _, modes = laplace_beltrami_eigenmodes(vertices, faces, 6)
    permutation = np.random.default_rng(3).permutation(len(vertices))
    new_label = np.argsort(permutation)  # vertex v becomes vertex new_label[v]
    _, relabelled_modes = laplace_beltrami_eigenmodes(vertices[permutation], new_label[faces], 6)
    np.testing.assert_allclose(relabelled_modes, modes[permutation], atol=1e-9)


def test_parcel_means_average_each_label_and_skip_label_zero():
    values = np.array([[1.0, 10.0], [3.0, 30.0], [5.0, 50.0], [100.0, 100.0], [7.0, 70.0]])
    labels = np.array([1, 1, 2, 0, 2])
    np.testing.assert_allclose(parcel_means(values, labels, 2), [[2.0, 20.0], [6.0, 60.0]])


@pytest.mark.parametrize(
    "labels, num_parcels, message",
    [
        ([1, 1, 1, 0], 2, r"parcels \[2\] have no vertex"),
        ([1, 3, 2, 0], 2, "labels must lie in 0..2"),
        ([1, 2], 2, "one entry per vertex"),
    ],
)
def test_parcel_means_reject_inconsistent_labels(labels, num_parcels, message):
    with pytest.raises(ValueError, match=message):
        parcel_means(np.ones((4, 1)), np.array(labels), num_parcels)


def test_submesh_keeps_whole_triangles_and_maps_vertices_back():
    vertices, faces = grid_plane(4)
    keep = vertices[:, 0] < 2.5  # columns x = 0, 1, 2
    sub_vertices, sub_faces, vertex_index = submesh(vertices, faces, keep)
    np.testing.assert_array_equal(vertex_index, np.flatnonzero(keep))
    np.testing.assert_array_equal(sub_vertices, vertices[keep])
    assert len(sub_faces) == 2 * 2 * 3
    np.testing.assert_array_equal(vertex_index[sub_faces], faces[keep[faces].all(axis=1)])
    # A vertex whose triangles are all cut away is dropped too.
    lone = keep.copy()
    lone[3] = True  # the corner (x=3, y=0) touches no fully kept triangle
    np.testing.assert_array_equal(submesh(vertices, faces, lone)[2], np.flatnonzero(keep))


def test_fem_rejects_isolated_vertices():
    vertices, faces = grid_plane(3)
    with pytest.raises(ValueError, match="belong to no triangle; remove them first with `submesh"):
        laplace_beltrami_matrices(np.vstack([vertices, [[9.0, 9.0, 9.0]]]), faces)


def test_geometric_harmonics_of_two_caps_split_the_sphere_on_the_first_nonconstant_mode():
    vertices, faces = bumpy_sphere()
    labels = np.where(vertices[:, 1] > 0.3, 1, np.where(vertices[:, 1] < -0.3, 2, 0))
    parcel_modes, eigenvalues = compute_geometric_harmonics(vertices, faces, labels, 4)
    assert parcel_modes.shape == (2, 4)
    np.testing.assert_allclose(parcel_modes[:, 0], 1 / np.sqrt(triangle_areas(vertices, faces).sum()), rtol=1e-8)
    # The ellipsoid is longest along y, so the slowest non-constant mode runs from one cap to the other.
    assert parcel_modes[0, 1] * parcel_modes[1, 1] < 0
    assert eigenvalues[1] < eigenvalues[2]
