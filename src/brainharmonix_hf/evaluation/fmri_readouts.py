# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Readouts: one representation per fMRI series from the tokens of a FunctionJEPA encoder, for identification.

A FunctionJEPA encoder returns one token per ROI and time patch. Subject identity in resting-state fMRI lives in how
ROIs relate to each other (functional connectivity), a second-order property; the mean of all tokens
(`pooler_output`) is a first-order summary of the window's state and identifies subjects barely above chance, before
or after pretraining. The readouts, applied identically to every encoder compared:

- `roi_similarity` (the default): the valid tokens of a series are whitened (below), each ROI's tokens are averaged
  over its valid time patches (one vector per ROI), and the series is represented by the Fisher z of the cosine
  similarity between every pair of ROI vectors (upper triangle, row-major): the ROI × ROI similarity of what the
  encoder holds about each ROI over the window.
- `token_connectivity`: the whitened tokens' ROI × ROI cosine similarity within each time patch, Fisher z, averaged
  over the valid time patches (upper triangle): the encoder's analogue of functional connectivity, token by token.
- `mean`: the encoder's `pooler_output`, the mean of the valid tokens (no whitening).

Whitening: the valid tokens `(num_valid, hidden)` of one series are centred and multiplied by `C_s^{-1/2}` (ZCA),
where `C_s = (1 - s) C + s (tr C / hidden) I` is their feature covariance shrunk towards a multiple of the identity by
`s = shrinkage` (0.1 by default). Feature directions of large variance that every token shares (the window's global
state, which JEPA pretraining learns first) would otherwise dominate every similarity; whitening weighs every
direction the encoder uses alike, and the shrinkage keeps directions of near-zero variance from being blown up.
Whitened tokens are centred over the window, so the similarity is the cosine (no centring over features): with
little shrinkage the readouts do not depend on the basis of the feature space (an invertible linear map of the
features leaves them unchanged).

Measured on `benchmarks/representation_learning.py` (7 HCP subjects, 4 held-out windows each, 3 seeds): the pretrained
encoder's `roi_similarity` identifies subjects far better than its initial weights' (the initial encoder's ROI
vectors are mostly the time average of random projections of the series); `token_connectivity` identifies them above
the functional-connectivity baseline for both (a near-identity initial encoder's whitened tokens are a prewhitened
copy of the series); `mean` stays near chance for both. Without whitening the pretrained `roi_similarity` falls
below the initial one's: see the benchmark's readout table.
"""

from collections.abc import Sequence

import numpy as np
import torch

from .fmri_readout_names import DEFAULT_FMRI_READOUT, FMRI_READOUTS
from .fmri_windows import embed_series
from .identification import fisher_z_upper

WHITENING_SHRINKAGE = 0.1


def whiten_tokens(tokens: np.ndarray, shrinkage: float = WHITENING_SHRINKAGE) -> np.ndarray:
    """ZCA whitening of `(num_tokens, hidden)` tokens with a shrunk covariance (see the module docstring); float64."""
    if not 0.0 < shrinkage <= 1.0:
        raise ValueError(f"shrinkage must be in (0, 1], got {shrinkage}: 1 only centres and scales the tokens.")
    centred = np.asarray(tokens, dtype=np.float64)
    centred = centred - centred.mean(axis=0)
    covariance = centred.T @ centred / max(len(centred), 1)
    scale = np.trace(covariance) / covariance.shape[0]
    if scale == 0.0:
        return centred
    shrunk = (1.0 - shrinkage) * covariance + shrinkage * scale * np.eye(covariance.shape[0])
    eigenvalues, eigenvectors = np.linalg.eigh(shrunk)
    return centred @ (eigenvectors / np.sqrt(eigenvalues)) @ eigenvectors.T


def _cosine_fisher_z(vectors: np.ndarray) -> np.ndarray:
    """`(..., num_rois, dim)` -> `(..., num_rois * (num_rois - 1) / 2)` Fisher z of the cosine similarity of every pair
    of rows (`fisher_z_upper`; a zero row has similarity 0)."""
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    unit = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
    return fisher_z_upper(unit @ np.swapaxes(unit, -1, -2))


def fmri_readout(
    last_hidden_state: torch.Tensor,
    token_mask: torch.Tensor,
    num_rois: int,
    readout: str = DEFAULT_FMRI_READOUT,
    shrinkage: float = WHITENING_SHRINKAGE,
) -> np.ndarray:
    """One representation per series from FunctionJEPA tokens (see the module docstring).

    Args:
        last_hidden_state: `(batch, num_rois * num_time_patches, hidden_size)` ROI-major tokens, as
            `FunctionJEPAModel` returns them.
        token_mask: `(batch, num_rois * num_time_patches)`, 1 for tokens holding real frames.
        num_rois: ROIs of the grid (`config.num_rois`).
        readout: one of `FMRI_READOUTS`.
        shrinkage: covariance shrinkage of the whitening.

    Returns:
        `(batch, features)` float64: `num_rois * (num_rois - 1) / 2` features for `roi_similarity` and
        `token_connectivity`, `hidden_size` for `mean`.
    """
    if readout not in FMRI_READOUTS:
        raise ValueError(f"readout must be one of {FMRI_READOUTS}, got {readout!r}.")
    batch, num_tokens, hidden = last_hidden_state.shape
    if num_tokens % num_rois:
        raise ValueError(f"{num_tokens} tokens do not form a grid of {num_rois} ROIs: pass the model's num_rois.")
    tokens = last_hidden_state.detach().double().cpu().numpy().reshape(batch, num_rois, -1, hidden)
    valid = token_mask.detach().cpu().numpy().reshape(batch, num_rois, -1).astype(bool)
    features = []
    for series_tokens, series_valid in zip(tokens, valid, strict=True):
        num_valid = int(series_valid[0].sum())  # every ROI has the same valid (leading) time patches
        if readout == "mean":
            features.append(series_tokens[:, :num_valid].mean(axis=(0, 1)))
            continue
        grid = whiten_tokens(series_tokens[:, :num_valid].reshape(-1, hidden), shrinkage)
        grid = grid.reshape(num_rois, num_valid, hidden)
        if readout == "roi_similarity":
            features.append(_cosine_fisher_z(grid.mean(axis=1)))
        else:
            features.append(_cosine_fisher_z(grid.transpose(1, 0, 2)).mean(axis=0))
    return np.stack(features)


def readout_of(readout: str = DEFAULT_FMRI_READOUT, shrinkage: float = WHITENING_SHRINKAGE):
    """The `represent(outputs, encoder)` of `fmri_windows.embed_series` that reads a FunctionJEPA encoder's tokens with
    `readout` (`fmri_readout`)."""
    if readout not in FMRI_READOUTS:
        raise ValueError(f"readout must be one of {FMRI_READOUTS}, got {readout!r}.")

    def represent(outputs, encoder) -> np.ndarray:
        return fmri_readout(outputs.last_hidden_state, outputs.token_mask, encoder.config.num_rois, readout, shrinkage)

    return represent


def embed_fmri_series(
    encoder,
    feature_extractor,
    series: Sequence[np.ndarray],
    repetition_times: Sequence[float] | float,
    readout: str = DEFAULT_FMRI_READOUT,
    batch_size: int = 8,
    device="cpu",
) -> np.ndarray:
    """`(num_series, features)` readouts (`fmri_readout`) of ROI-first `(num_rois, num_timepoints)` series by a
    `FunctionJEPAModel` and its `FMRIFeatureExtractor`: `fmri_windows.embed_series` with `readout_of(readout)`."""
    return embed_series(
        encoder, feature_extractor, series, repetition_times, batch_size, device, represent=readout_of(readout)
    )


__all__ = [
    "DEFAULT_FMRI_READOUT",
    "FMRI_READOUTS",
    "WHITENING_SHRINKAGE",
    "embed_fmri_series",
    "fmri_readout",
    "readout_of",
    "whiten_tokens",
]
