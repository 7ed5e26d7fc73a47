# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Model inputs of single sessions, and batches of them where subjects differ in modalities and series length."""

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ..file_hashes import sha256_of
from ..processing.processing_brainharmonix import NIFTI_SUFFIXES, BrainHarmonixProcessor
from .session_inputs import SessionInputs

TSV_SUFFIXES = (".tsv", ".tsv.gz")


@dataclass
class PreparedSession:
    """One session's processor outputs (without the batch axis) and input checksums, or why it could not be prepared.

    Attributes:
        session: the inputs.
        features: `pixel_values` `(1, *volume_size)` when a T1 is given; `fmri_values` `(num_rois, num_timepoints)`,
            `attention_mask` `(num_timepoints,)`, `repetition_time` when fMRI is given.
        checksums: sha256 hex digest of each input file, by modality (`t1`, `fmri`).
        error: `(error type, message)` when preparation failed.
    """

    session: SessionInputs
    features: dict[str, np.ndarray] = field(default_factory=dict)
    checksums: dict[str, str] = field(default_factory=dict)
    error: tuple[str, str] | None = None


def prepare_session(
    processor: BrainHarmonixProcessor, session: SessionInputs, fmri_atlas_image=None
) -> PreparedSession:
    """Run the processor on one session's files. Errors are caught and returned, never raised, so one broken
    subject does not stop a cohort (and results can cross DataLoader worker processes).

    Every input goes to the processor as a path: parcellated `.tsv` tables (XCP-D: one column per ROI headed by its
    label, one row per frame) with `layout="time_first"`, ROI `.csv` files with `layout="rois_first"`, 4D NIfTI runs
    with `fmri_atlas_image`. The processor reads tables with `processing.roi_csv.read_roi_table` and checks their ROI
    labels against the model's atlas (a Schaefer-400 table in the other network order is permuted, any other refused).
    """
    try:
        fmri = session.fmri
        if fmri is not None and session.repetition_time is None and not fmri.lower().endswith(NIFTI_SUFFIXES):
            raise ValueError(
                f"No repetition time for {fmri}: add RepetitionTime (seconds) to its JSON sidecar or the BOLD run's, "
                "or give a repetition_time column in the manifest."
            )
        outputs = processor(
            t1=session.t1,
            fmri=fmri,
            repetition_time=session.repetition_time,
            layout=table_layout(fmri),
            fmri_atlas_image=fmri_atlas_image,
            return_tensors="np",
        )
        features = {name: value[0] for name, value in outputs.items() if not name.startswith("has_")}
        checksums = {name: sha256_of(getattr(session, name)) for name in ("t1", "fmri") if getattr(session, name)}
        return PreparedSession(session, features, checksums)
    except Exception as error:
        return PreparedSession(session, error=(type(error).__name__, str(error)))


def table_layout(path: str | None) -> str:
    """The axis order of an fMRI table by its name: `"time_first"` for `.tsv` (XCP-D), `"rois_first"` otherwise."""
    return "time_first" if path is not None and str(path).lower().endswith(TSV_SUFFIXES) else "rois_first"


def collate_sessions(prepared: Sequence[PreparedSession]) -> dict[str, torch.Tensor]:
    """Batch prepared sessions (none failed) into `BrainHarmonixModel` inputs.

    A modality no subject has is left out; subjects without it get zeros and `has_t1` / `has_fmri` False. fMRI series
    are right-padded with zeros to the longest one, with `attention_mask` 0 on the padding.

    Returns:
        dict of tensors: `pixel_values` `(batch, 1, *volume_size)`, `fmri_values` `(batch, num_rois, max_timepoints)`,
        `attention_mask` `(batch, max_timepoints)`, `repetition_time` `(batch,)` (NaN without fMRI), `has_t1`,
        `has_fmri` `(batch,)` bool.
    """
    batch = {}
    has_t1 = torch.tensor(["pixel_values" in item.features for item in prepared])
    if has_t1.any():
        shape = next(item.features["pixel_values"].shape for item in prepared if "pixel_values" in item.features)
        pixel_values = torch.zeros(len(prepared), *shape)
        for index, item in enumerate(prepared):
            if has_t1[index]:
                pixel_values[index] = torch.from_numpy(item.features["pixel_values"])
        batch |= {"pixel_values": pixel_values, "has_t1": has_t1}
    has_fmri = torch.tensor(["fmri_values" in item.features for item in prepared])
    if has_fmri.any():
        series = [item.features.get("fmri_values") for item in prepared]
        num_rois = next(values.shape[0] for values in series if values is not None)
        length = max(values.shape[1] for values in series if values is not None)
        fmri_values = torch.zeros(len(prepared), num_rois, length)
        attention_mask = torch.zeros(len(prepared), length, dtype=torch.long)
        repetition_time = torch.full((len(prepared),), float("nan"))
        for index, item in enumerate(prepared):
            if has_fmri[index]:
                frames = item.features["fmri_values"].shape[1]
                fmri_values[index, :, :frames] = torch.from_numpy(item.features["fmri_values"])
                attention_mask[index, :frames] = torch.from_numpy(item.features["attention_mask"])
                repetition_time[index] = float(item.features["repetition_time"])
        batch |= {
            "fmri_values": fmri_values,
            "attention_mask": attention_mask,
            "repetition_time": repetition_time,
            "has_fmri": has_fmri,
        }
    return batch
