# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Disjoint windows of each run of a manifest, and their fMRI-only embeddings: the inputs of identification across
windows of one scan (`identification`).

Windows are embedded from fMRI alone: a T1 is the same in every window of a subject and would identify it trivially.
"""

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


def embed_series(
    model, processor, series: list[np.ndarray], repetition_times: list[float], batch_size: int = 8, device="cpu"
) -> np.ndarray:
    """`(num_series, hidden_size)` pooled hub tokens of a `BrainHarmonixModel` over ROI-first series, fMRI only."""
    model = model.to(device).eval()
    embeddings = []
    with torch.inference_mode():
        for start in range(0, len(series), batch_size):
            inputs = processor(
                fmri=series[start : start + batch_size],
                repetition_time=repetition_times[start : start + batch_size],
                layout="rois_first",
                return_tensors="pt",
            )
            outputs = model(**{name: value.to(device) for name, value in inputs.items()})
            embeddings.append(outputs.pooler_output.float().cpu())
    return torch.cat(embeddings).numpy()


__all__ = ["embed_series", "manifest_windows"]
