# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Disjoint windows of each run of a manifest, and their fMRI-only embeddings: the inputs of identification across
windows of one scan (`identification`).

Windows are embedded from fMRI alone: a T1 is the same in every window of a subject and would identify it trivially.
"""

from collections.abc import Callable, Sequence

import numpy as np
import torch

from ..training.data import load_fmri_series
from ..training.manifest import ManifestSource, load_manifest
from .identification import cut_windows


def manifest_windows(manifest: ManifestSource, extractor, num_windows: int) -> dict:
    """Every fMRI run of a manifest cut into `num_windows` disjoint windows (`cut_windows`).

    Args:
        manifest: a cohort manifest (see `training.manifest.load_manifest`); rows without fMRI are skipped.
        extractor: the `FMRIFeatureExtractor` that reads ROI tables into the model's ROI order.
        num_windows: windows per run.

    Returns:
        `{"series": [(num_rois, window_frames)], "subjects", "sessions", "repetition_times"}`, one entry per window;
        a window's session is `w<k>` (its index in the run), prefixed by the row's session when it has one.
    """
    rows = load_manifest(manifest)
    windows = {"series": [], "subjects": [], "sessions": [], "repetition_times": []}
    for row in rows:
        if row["fmri"] is None:
            continue
        series = load_fmri_series(row["fmri"], extractor, row["atlas"])[0]
        for index, window in enumerate(cut_windows(series, num_windows)):
            windows["series"].append(window)
            windows["subjects"].append(row["subject"])
            windows["sessions"].append(f"{row['session']}:w{index}" if row["session"] else f"w{index}")
            windows["repetition_times"].append(row["repetition_time"])
    if not windows["series"]:
        raise ValueError("The manifest lists no fMRI run to cut into windows.")
    return windows


def pooled_output(outputs, model) -> np.ndarray:
    """The default representation of `embed_series`: `pooler_output` (a BrainHarmonixModel's pooled hub tokens, a
    FunctionJEPAModel's mean valid token) as float32 `(batch, hidden_size)`."""
    return outputs.pooler_output.float().cpu().numpy()


def embed_series(
    model,
    processor,
    series: Sequence[np.ndarray],
    repetition_times: Sequence[float] | float,
    batch_size: int = 8,
    device="cpu",
    represent: Callable[..., np.ndarray] = pooled_output,
) -> np.ndarray:
    """`(num_series, features)` representations of ROI-first `(num_rois, num_timepoints)` series, fMRI only.

    Args:
        model: a `BrainHarmonixModel`, or a `FunctionJEPAModel` encoder.
        processor: its processor (`BrainHarmonixProcessor` or `FMRIFeatureExtractor`).
        series: ROI-first series, in the model's ROI order.
        repetition_times: one TR in seconds per series, or one for all.
        batch_size: series per forward pass.
        device: where the model runs.
        represent: `represent(outputs, model) -> (batch, features)` array of one batch's outputs; `pooled_output` by
            default (`evaluation.fmri_readouts.readout_of` reads a FunctionJEPA encoder's tokens).
    """
    model = model.to(device).eval()
    if isinstance(repetition_times, int | float):
        repetition_times = [float(repetition_times)] * len(series)
    embeddings = []
    with torch.inference_mode():
        for start in range(0, len(series), batch_size):
            inputs = processor(
                fmri=list(series[start : start + batch_size]),
                repetition_time=list(repetition_times[start : start + batch_size]),
                layout="rois_first",
                return_tensors="pt",
            )
            outputs = model(**{name: value.to(device) for name, value in inputs.items()})
            embeddings.append(represent(outputs, model))
    return np.concatenate(embeddings)


__all__ = ["embed_series", "manifest_windows", "pooled_output"]
