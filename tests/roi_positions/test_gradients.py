"""Diffusion-map gradients: eigen-relations, block structure, recipe agreement, input checks."""

import importlib.util

import numpy as np
import pytest

from brainharmonix_hf.roi_positions.gradients import affinity_matrix, compute_gradients


def two_block_connectivity(sizes=(12, 18), seed=0) -> np.ndarray:
    """Correlation matrix of regions driven by one of two independent sources plus noise (block structure)."""
    rng = np.random.default_rng(seed)
    sources = rng.standard_normal((2, 300))
    series = np.concatenate(
        [sources[block] + 0.8 * rng.standard_normal((size, 300)) for block, size in enumerate(sizes)]
    )
    return np.corrcoef(series)


def markov_matrix(fc: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """`P = D_α^-1 W_α` and the degrees `d_α`, written out densely as the reference for the embedding."""
    affinity = affinity_matrix(fc, sparsity=0.5, kernel="normalized_angle")
    degree = affinity.sum(axis=1)
    anisotropic = affinity / np.outer(degree**alpha, degree**alpha)
    return anisotropic / anisotropic.sum(axis=1, keepdims=True), anisotropic.sum(axis=1)


def test_gradients_are_scaled_right_eigenvectors_of_the_diffusion_operator():
    fc = two_block_connectivity()
    gradients, scales = compute_gradients(fc, 5, sparsity=0.5)
    markov, degree = markov_matrix(fc, alpha=0.5)
    eigenvalues = scales / (1 + scales)
    np.testing.assert_allclose(markov @ gradients, gradients * eigenvalues, atol=1e-10)
    assert np.all(np.diff(scales) < 0) and np.all(scales > 0)
    # Eigenvectors are scaled so the trivial one is all ones: ψᵀ D_α ψ = Σ d_α, orthogonal under D_α.
    unit = gradients / scales
    np.testing.assert_allclose(unit.T @ (degree[:, None] * unit), degree.sum() * np.eye(5), atol=1e-8)
    np.testing.assert_allclose(unit.T @ degree, 0, atol=1e-8)


def test_first_gradient_separates_two_blocks():
    fc = two_block_connectivity(sizes=(12, 18))
    gradients, _ = compute_gradients(fc, 3, sparsity=0.5)
    first = gradients[:, 0]
    assert (np.all(first[:12] > 0) and np.all(first[12:] < 0)) or (np.all(first[:12] < 0) and np.all(first[12:] > 0))


def test_gradients_are_deterministic_and_follow_a_reordering_of_regions():
    fc = two_block_connectivity()
    gradients, scales = compute_gradients(fc, 4, sparsity=0.5)
    largest = np.abs(gradients).argmax(axis=0)
    assert np.all(gradients[largest, np.arange(4)] > 0)
    permutation = np.random.default_rng(1).permutation(len(fc))
    permuted, permuted_scales = compute_gradients(fc[np.ix_(permutation, permutation)], 4, sparsity=0.5)
    np.testing.assert_allclose(permuted_scales, scales, rtol=1e-10)
    np.testing.assert_allclose(permuted, gradients[permutation], atol=1e-10)


@pytest.mark.skipif(importlib.util.find_spec("brainspace") is None, reason="brainspace data files not installed")
def test_recipe_matches_the_brainspace_tutorial_embedding_on_hcp_group_connectivity():
    """Same sparsity, kernel, alpha, diffusion time and scaling as brainspace's own embedding of this matrix."""
    from brainspace.gradient.embedding import diffusion_mapping
    from brainspace.gradient.kernels import compute_affinity

    root = importlib.util.find_spec("brainspace").submodule_search_locations[0]
    fc = np.loadtxt(f"{root}/datasets/matrices/main_group/schaefer_400_mean_connectivity_matrix.csv", delimiter=",")
    gradients, scales = compute_gradients(fc, 10)
    reference, reference_scales = diffusion_mapping(
        compute_affinity(fc, kernel="normalized_angle", sparsity=0.9), n_components=10, random_state=0
    )
    np.testing.assert_allclose(scales, reference_scales, rtol=1e-3)
    # Its solver treats the non-symmetric Markov matrix as symmetric, so its vectors are off by up to ~1%
    # (ours solve the symmetric conjugate exactly); a different alpha, sparsity or kernel moves them by >= 10%.
    column_error = np.abs(gradients - reference).max(axis=0) / np.abs(reference).max(axis=0)
    assert column_error.max() < 0.02, column_error


@pytest.mark.parametrize(
    "fc, kwargs, message",
    [
        (np.ones((4, 5)), {}, "must be a square"),
        (np.full((6, 6), np.nan), {}, "NaN or infinite"),
        (np.eye(6), {"kernel": "gaussian"}, "unknown kernel 'gaussian'"),
        (np.eye(6), {"alpha": 2.0}, r"`alpha` must lie in \[0, 1\]"),
        (np.eye(6), {"n_components": 5}, "`n_components` must be between 1 and 4"),
        (np.eye(6), {"sparsity": 0.95}, "keeps no entry of a row"),
        (np.eye(6), {"sparsity": 0.5, "kernel": "cosine"}, "disconnected groups"),
    ],
)
def test_bad_input_is_rejected_with_the_fix(fc, kwargs, message):
    with pytest.raises(ValueError, match=message):
        compute_gradients(fc, **{"n_components": 2, **kwargs})
