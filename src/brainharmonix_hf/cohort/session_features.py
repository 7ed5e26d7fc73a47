# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Model inputs of single rows, and batches of them where rows differ in modalities and series length."""

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ..file_hashes import sha256_of
from ..processing.fmri_files import fmri_file_kind
from ..processing.nifti_io import load_image
from ..processing.processing_brainharmonix import BrainHarmonixProcessor
from .session_inputs import SessionInputs

INPUT_FIELDS = ("t1", "fmri")
# Processed T1 volumes kept per process: a session's T1 serves all its runs, and rows come sorted by session.
T1_VOLUMES_KEPT = 2


@dataclass(frozen=True)
class SessionFailure:
    """Why a row was not embedded: the error, and the file and field at fault (`t1`, `fmri`, `RepetitionTime`,
    `json`; `model` for an error of the forward pass)."""

    error_type: str
    message: str
    file: str | None
    field: str


@dataclass
class PreparedSession:
    """One row's processor outputs (without the batch axis) and input fingerprints, or why it could not be prepared.

    Attributes:
        session: the inputs.
        features: `pixel_values` `(1, *volume_size)` when a T1 is given; `fmri_values` `(num_rois, num_timepoints)`,
            `attention_mask` `(num_timepoints,)`, `repetition_time` when fMRI is given.
        checksums: sha256 hex digest of each input file, by modality (`t1`, `fmri`).
        stats: `"size:mtime_ns"` of each input file when read, by modality.
        failure: why preparation failed.
    """

    session: SessionInputs
    features: dict[str, np.ndarray] = field(default_factory=dict)
    checksums: dict[str, str] = field(default_factory=dict)
    stats: dict[str, str] = field(default_factory=dict)
    failure: SessionFailure | None = None


class InputFiles:
    """Fingerprints and prepared T1 volumes of input files, and the atlas label image of NIfTI runs, each computed
    once per file version in this process (a session's T1 serves all its runs, the label image every run). Loaded
    images are not pickled: each DataLoader worker loads its own."""

    def __init__(self):
        self._checksums: dict[tuple, str] = {}
        self._t1_volumes: dict[tuple, np.ndarray] = {}
        self._label_images: dict[tuple, object] = {}

    def __getstate__(self) -> dict:
        return self.__dict__ | {"_t1_volumes": {}, "_label_images": {}}

    def fingerprint(self, path: str) -> tuple[str, str]:
        """`(stat, sha256)`: the file's `"size:mtime_ns"` and its content hash (hashed once per stat)."""
        stat = file_stat(path)
        key = (os.path.realpath(path), stat)
        if key not in self._checksums:
            self._checksums[key] = sha256_of(path)
        return stat, self._checksums[key]

    def t1_volume(self, processor: BrainHarmonixProcessor, path: str) -> np.ndarray:
        """The processed `(1, *volume_size)` T1 volume of `path`."""
        key = (os.path.realpath(path), file_stat(path))
        if key not in self._t1_volumes:
            if len(self._t1_volumes) >= T1_VOLUMES_KEPT:
                self._t1_volumes.pop(next(iter(self._t1_volumes)))
            self._t1_volumes[key] = processor(t1=path, return_tensors="np")["pixel_values"][0]
        return self._t1_volumes[key]

    def label_image(self, source):
        """The checked label image (`load_image`) of a path, loaded once per file version; an image is checked (once:
        `load_image` returns an image it checked as it is)."""
        if not isinstance(source, (str, os.PathLike)):
            return load_image(source)
        key = (os.path.realpath(source), file_stat(source))
        if key not in self._label_images:
            self._label_images = {key: load_image(source)}  # one atlas per run: drop another version
        return self._label_images[key]


def file_stat(path: str) -> str:
    """`"size:mtime_ns"` of a file (through links): a cheap test of whether it changed since it was read."""
    stat = os.stat(path)
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def prepare_session(
    processor: BrainHarmonixProcessor,
    session: SessionInputs,
    fmri_atlas_image=None,
    fmri_atlas: str | None = None,
    files: InputFiles | None = None,
) -> PreparedSession:
    """Run the processor on one row's files. Errors are caught and returned, never raised, so one broken row does
    not stop a cohort (and results can cross DataLoader worker processes); each names the file and field at fault.

    fMRI files are read by `FMRIFeatureExtractor.read_fmri_file` (ROI tables in their kind's layout, `.npy` arrays,
    4D NIfTI runs with `fmri_atlas_image`), honouring the atlas the row declares, else `fmri_atlas`.
    """
    files = files or InputFiles()
    if session.problem is not None:
        problem = session.problem
        return PreparedSession(
            session, failure=SessionFailure("ValueError", problem.message, problem.file, problem.field)
        )
    prepared = PreparedSession(session)
    for name in INPUT_FIELDS:
        path = getattr(session, name)
        if path is None:
            continue
        try:
            prepared.stats[name], prepared.checksums[name] = files.fingerprint(path)
            if name == "t1":
                prepared.features["pixel_values"] = files.t1_volume(processor, path)
            else:
                prepared.features |= _fmri_features(processor, session, fmri_atlas_image, fmri_atlas, files)
        except Exception as error:
            field_name = "RepetitionTime" if isinstance(error, MissingRepetitionTime) else name
            prepared.failure = SessionFailure(type(error).__name__, str(error), path, field_name)
            return prepared
    return prepared


class MissingRepetitionTime(ValueError):
    """A table or array whose TR no sidecar or manifest gives."""


def _fmri_features(
    processor, session: SessionInputs, fmri_atlas_image, fmri_atlas, files: InputFiles
) -> dict[str, np.ndarray]:
    is_nifti = fmri_file_kind(session.fmri) == "nifti"
    if session.repetition_time is None and not is_nifti:
        raise MissingRepetitionTime(
            f"No repetition time for {session.fmri}: add RepetitionTime (seconds) to its JSON sidecar or the BOLD "
            "run's, or give a repetition_time column in the manifest."
        )
    outputs = processor(
        fmri=session.fmri,
        repetition_time=session.repetition_time,
        atlas=session.atlas or fmri_atlas,
        fmri_atlas_image=files.label_image(fmri_atlas_image) if is_nifti and fmri_atlas_image is not None else None,
        return_tensors="np",
    )
    return {name: value[0] for name, value in outputs.items() if not name.startswith("has_")}


def collate_sessions(prepared: Sequence[PreparedSession]) -> dict[str, torch.Tensor]:
    """Batch prepared rows (none failed) into `BrainHarmonixModel` inputs.

    A modality no row has is left out; rows without it get zeros and `has_t1` / `has_fmri` False. fMRI series are
    right-padded with zeros to the longest one, with `attention_mask` 0 on the padding.

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
