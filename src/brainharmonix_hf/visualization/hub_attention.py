# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Where the hub tokens look: Harmonizer attention of each hub token over the fMRI tokens, summed per ROI."""

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from ..modeling.modeling_brainharmonix import BrainHarmonixModel
from ..sample_data import SCHAEFER400_ATLAS
from .surface_panels import draw_parcel_maps


@torch.no_grad()
def hub_attention_per_roi(model: BrainHarmonixModel, inputs: Mapping, layer: int = -1) -> np.ndarray:
    """Attention of each hub token over each ROI's fMRI tokens for one subject.

    The Harmonizer runs with eager attention (the only one that returns weights) and `output_attentions=True`; the
    attention matrix of `layer` is averaged over heads, and each hub token's weights on the valid fMRI tokens of an ROI
    (all its time patches) are summed: the fraction of that hub token's attention spent on the ROI.

    Args:
        model: a `BrainHarmonixModel`.
        inputs: processor outputs of ONE subject with fMRI (`fmri_values` `(1, num_rois, T)`, `repetition_time`,
            `attention_mask`, and optionally `pixel_values`), as torch tensors.
        layer: Harmonizer layer whose attention is read (default the last).

    Returns:
        `(num_hub_tokens, num_rois)` float array; each row sums to at most 1 (the rest goes to T1, CLS and hub tokens).
    """
    fmri_values = inputs.get("fmri_values")
    if fmri_values is None or fmri_values.shape[0] != 1:
        raise ValueError("hub_attention_per_roi needs the processor outputs of one subject with fMRI (batch size 1).")
    names = ("pixel_values", "fmri_values", "repetition_time", "attention_mask", "has_t1", "has_fmri")
    latents = model.eval().encode_modalities(**{name: inputs.get(name) for name in names})
    harmonizer = model.harmonizer
    previous = harmonizer.config._attn_implementation
    harmonizer.set_attn_implementation("eager")
    try:
        attentions = harmonizer(**latents, output_attentions=True).attentions
    finally:
        harmonizer.set_attn_implementation(previous)
    config = harmonizer.config
    num_hub = config.num_hub_tokens
    fmri_tokens = torch.nonzero(latents.fmri_token_mask[0]).squeeze(1)  # packed tokens keep this order
    weights = attentions[layer][0].float().mean(0)[1 : 1 + num_hub, 1 + num_hub : 1 + num_hub + len(fmri_tokens)]
    num_rois = model.config.function_config.num_rois
    rois = fmri_tokens // (config.num_fmri_tokens // num_rois)
    per_roi = torch.zeros(num_hub, num_rois).index_add_(1, rois.cpu(), weights.cpu())
    return per_roi.numpy()


def plot_hub_attention(
    attention: np.ndarray,
    output: str | os.PathLike | None = None,
    hub_tokens: Sequence[int] = (0, 1, 2),
    atlas: str = SCHAEFER400_ATLAS,
    dpi: int = 100,
):
    """Draw the mean over hub tokens and the chosen hub tokens' ROI attention on the cortex, and save a PNG.

    Args:
        attention: `(num_hub_tokens, 400)` from `hub_attention_per_roi` (Schaefer-400, 7-network order).
        output: PNG path (not saved when `None`).
        hub_tokens: indices of the hub tokens drawn after the mean.
        atlas: ROI order of `attention`'s columns (the model's `function_config.atlas`); the surface labels are in
            Schaefer-400 7-network order, so other orders are refused rather than drawn in the wrong places.

    Returns:
        the matplotlib Figure (close it when done). Rows: mean, then each hub token, on one colour scale centred on
        uniform attention (each ROI `1 / 400` of the hub token's attention: white; more red, less blue); in each view
        the `tripcolor` collection's array holds the ROI values of its faces.
    """
    if atlas != SCHAEFER400_ATLAS or attention.shape[1] != 400:
        raise ValueError(
            f"The cortex is labelled in {SCHAEFER400_ATLAS} order (400 ROIs); got attention of shape {attention.shape} "
            f"in {atlas!r} order. Reorder its columns to {SCHAEFER400_ATLAS} and pass atlas={SCHAEFER400_ATLAS!r}."
        )
    maps = np.concatenate([attention.mean(0, keepdims=True), attention[list(hub_tokens)]])
    titles = ["mean of hub tokens", *(f"hub token {index}" for index in hub_tokens)]
    num_rois = attention.shape[1]
    figure = draw_parcel_maps(
        maps,
        titles,
        "share of the hub token's attention",
        reference=1.0 / num_rois,
        reference_label=f"uniform\n1/{num_rois}",
    )
    figure.suptitle(
        f"Harmonizer hub-token attention over fMRI tokens, per Schaefer-400 ROI (white: uniform, 1/{num_rois})",
        fontsize=10,
    )
    if output is not None:
        figure.savefig(Path(output), dpi=dpi)
    return figure
