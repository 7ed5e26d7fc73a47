# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Embeddings (one per subject or per session) in their first two principal components, coloured by a label column."""

import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def principal_components(embeddings: np.ndarray, num_components: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """PCA by SVD of the centred `(num_subjects, hidden_size)` matrix.

    Returns:
        `(num_subjects, num_components)` coordinates and each component's explained-variance ratio. Signs follow
        scikit-learn's rule (largest-magnitude loading of each component positive), so coordinates match its `PCA`.
    """
    embeddings = np.asarray(embeddings, dtype=np.float64)
    if embeddings.ndim != 2 or len(embeddings) < 2:
        raise ValueError(f"Need a (num_subjects >= 2, hidden_size) matrix of embeddings, got shape {embeddings.shape}.")
    centred = embeddings - embeddings.mean(0)
    left, singular, right = np.linalg.svd(centred, full_matrices=False)
    signs = np.sign(right[np.arange(len(right)), np.abs(right).argmax(1)])
    left = left * signs
    variance = singular**2
    return (left * singular)[:, :num_components], (variance / variance.sum())[:num_components]


def plot_embedding_scatter(
    embeddings: np.ndarray,
    labels: Sequence | None = None,
    output: str | os.PathLike | None = None,
    label_name: str = "label",
    dpi: int = 100,
    unit: str = "subject",
):
    """Scatter of the first two principal components; categorical labels get one colour each (legend), numeric
    labels a colour scale.

    Args:
        unit: what one row of `embeddings` is, for the title: `"subject"`, or `"session"` for a `brainharmonix embed`
            table (one row per subject-session).

    Returns:
        the matplotlib Figure; its axis's collections hold the points (`get_offsets()` = PCA coordinates).
    """
    coordinates, ratios = principal_components(embeddings)
    figure, axis = plt.subplots(figsize=(5, 4))
    if labels is None:
        axis.scatter(*coordinates.T, s=25)
    else:
        labels = pd.Series(list(labels))
        if pd.api.types.is_numeric_dtype(labels) and labels.nunique() > 10:
            points = axis.scatter(*coordinates.T, c=labels.to_numpy(dtype=float), s=25, cmap="viridis")
            figure.colorbar(points, ax=axis).set_label(label_name)
        else:
            for value in sorted(labels.unique(), key=str):
                chosen = (labels == value).to_numpy()
                axis.scatter(*coordinates[chosen].T, s=25, label=str(value))
            axis.legend(title=label_name, fontsize=8)
    axis.set_xlabel(f"PC1 ({ratios[0]:.0%} of variance)")
    axis.set_ylabel(f"PC2 ({ratios[1]:.0%} of variance)")
    axis.set_title(f"{len(coordinates)} {unit} embeddings")
    figure.tight_layout()
    if output is not None:
        figure.savefig(Path(output), dpi=dpi)
    return figure
