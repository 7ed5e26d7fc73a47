# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Functional gradients: diffusion-map embedding of a functional-connectivity matrix.

Steps (the usual gradient recipe for connectomes):

1. Row-wise sparsity: in each row of the connectivity matrix keep the `(1 - sparsity)` fraction of largest
   entries (`int(n * (1 - sparsity))` of them) and zero the rest.
2. Affinity between the sparsified rows: cosine similarity `c`, turned into the normalized angle `1 - arccos(c)/π`
   (kernel "normalized_angle") or kept as is (kernel "cosine"); negative values are set to 0.
3. Anisotropic normalisation `W_α = D^-α W D^-α` (`D` = row sums of `W`, `α = alpha`), then the Markov matrix
   `P = D_α^-1 W_α`.
4. Eigenvectors `ψ` of `P`, solved exactly through its symmetric conjugate `D_α^-1/2 W_α D_α^-1/2`; the trivial
   eigenvector (eigenvalue 1) is scaled to all ones, the same factor scales the others, and the trivial pair is
   dropped.
5. Multi-scale diffusion map (all diffusion times summed): eigenvalues `λ → λ / (1 - λ)`, gradients `ψ · λ/(1 - λ)`.
6. Deterministic signs (`sign_convention.SIGN_RULE`).
"""

import numpy as np
from scipy.sparse.csgraph import connected_components

from .sign_convention import orient_columns

KERNELS = ("normalized_angle", "cosine")


def affinity_matrix(connectivity: np.ndarray, sparsity: float, kernel: str) -> np.ndarray:
    """Steps 1-2 of the module docstring: `(n, n)` non-negative affinity between the sparsified rows."""
    num_rows = connectivity.shape[0]
    num_kept = int(num_rows * (1.0 - sparsity))
    if num_kept < 1:
        raise ValueError(f"sparsity {sparsity} keeps no entry of a row of length {num_rows}; lower `sparsity`.")
    kept_columns = np.argsort(-connectivity, axis=1, kind="stable")[:, :num_kept]
    rows = np.arange(num_rows)[:, None]
    sparse_rows = np.zeros_like(connectivity)
    sparse_rows[rows, kept_columns] = connectivity[rows, kept_columns]
    norms = np.linalg.norm(sparse_rows, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ValueError("some rows of the connectivity matrix are zero after sparsification; remove those regions.")
    cosine = np.clip((sparse_rows / norms) @ (sparse_rows / norms).T, -1.0, 1.0)
    # Exact self-similarity: arccos amplifies a rounding error of 1e-16 near 1 to 1e-8.
    np.fill_diagonal(cosine, 1.0)
    affinity = 1.0 - np.arccos(cosine) / np.pi if kernel == "normalized_angle" else cosine
    return np.maximum(affinity, 0.0)


def compute_gradients(
    fc: np.ndarray,
    n_components: int,
    sparsity: float = 0.9,
    kernel: str = "normalized_angle",
    alpha: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Functional gradients of a connectivity matrix by diffusion-map embedding (see the module docstring).

    Args:
        fc: `(num_regions, num_regions)` functional connectivity (e.g. Pearson correlations).
        n_components: number of gradients returned.
        sparsity: fraction of each row zeroed before the affinity (0.9 keeps the top 10%).
        kernel: "normalized_angle" or "cosine".
        alpha: anisotropic diffusion parameter in `[0, 1]`.

    Returns:
        `(gradients, eigenvalues)`: `(num_regions, n_components)` float64 gradients, strongest first, and their
        `(n_components,)` multi-scale eigenvalues `λ / (1 - λ)`.
    """
    fc = np.asarray(fc, dtype=np.float64)
    if fc.ndim != 2 or fc.shape[0] != fc.shape[1]:
        raise ValueError(f"`fc` must be a square (num_regions, num_regions) matrix; got shape {fc.shape}.")
    if not np.isfinite(fc).all():
        raise ValueError("`fc` contains NaN or infinite values; replace them (e.g. np.nan_to_num) first.")
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; choose one of {KERNELS}.")
    if not 0 <= alpha <= 1:
        raise ValueError(f"`alpha` must lie in [0, 1]; got {alpha}.")
    if not 0 < n_components < fc.shape[0] - 1:
        raise ValueError(f"`n_components` must be between 1 and {fc.shape[0] - 2}; got {n_components}.")

    affinity = affinity_matrix(fc, sparsity, kernel)
    num_groups = connected_components(affinity, directed=False)[0]
    if num_groups > 1:
        raise ValueError(
            f"the affinity graph falls into {num_groups} disconnected groups of regions, so the embedding is not "
            "unique; lower `sparsity` to keep more connections."
        )
    degree = affinity.sum(axis=1)
    anisotropic = affinity * np.outer(degree**-alpha, degree**-alpha)
    inv_sqrt_degree = anisotropic.sum(axis=1) ** -0.5
    eigenvalues, eigenvectors = np.linalg.eigh(anisotropic * np.outer(inv_sqrt_degree, inv_sqrt_degree))
    eigenvalues, eigenvectors = eigenvalues[::-1], eigenvectors[:, ::-1]
    markov_vectors = eigenvectors * inv_sqrt_degree[:, None]
    markov_vectors /= markov_vectors[:, :1]
    eigenvalues = eigenvalues[1 : n_components + 1]
    scales = eigenvalues / (1.0 - eigenvalues)
    return orient_columns(markov_vectors[:, 1 : n_components + 1] * scales), scales
