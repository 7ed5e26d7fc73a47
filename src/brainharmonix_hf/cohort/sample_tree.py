# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""A small BIDS derivatives tree built from the bundled real data, for tests, demos and trying `brainharmonix embed`.

Every session holds nilearn's MNI152 T1 template and windows of the LEMON rest run in Schaefer-400 (TR 1.4 s) as its
fMRI runs, each with a small deterministic perturbation per session (T1 intensity scale, added noise on the series),
written as fMRIPrep / XCP-D would name them:

```
dataset_description.json
sub-<s>/ses-<t>/anat/sub-<s>_ses-<t>_space-MNI152NLin2009cAsym_desc-preproc_T1w.nii.gz
sub-<s>/ses-<t>/func/sub-<s>_ses-<t>_task-rest_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz (+ .json, TR)
sub-<s>/ses-<t>/func/sub-<s>_ses-<t>_task-rest_space-MNI152NLin2009cAsym_atlas-Schaefer400_timeseries.tsv
```

The tables head their columns with the CBIG 7-network parcel names (the run's ROI order), as XCP-D does. The BOLD run
is a small 4D image with one voxel per ROI; `atlas_image` (written beside the tree as
`atlas-Schaefer400_dseg.nii.gz`) labels those voxels 1-400, so parcellating the run gives back the table's series.
"""

import json
import os
from collections.abc import Sequence
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from ..processing.atlases import SCHAEFER400_7NETWORKS, schaefer400_roi_names
from ..sample_data import load_fmri_sample, load_t1_sample

SPACE = "MNI152NLin2009cAsym"
ATLAS = "Schaefer400"
BOLD_GRID = (8, 8, 7)


def write_sample_derivatives(
    root: str | os.PathLike,
    sessions: Sequence[tuple[str, str | None]],
    num_timepoints: int | None = None,
    runs: Sequence[tuple[str, str | None]] = (("rest", None),),
) -> Path:
    """Write a derivatives tree with the given `(subject, session)` pairs (session `None` for no session level).

    Args:
        root: folder to create the tree in.
        sessions: subject and session labels, without `sub-` / `ses-`.
        num_timepoints: keep only that many frames of the run (all 652 when `None`).
        runs: the fMRI runs of every session as `(task, run index or None)`; run `k` of a session holds the k-th
            window of `num_timepoints` frames of the LEMON run (so runs differ), with the session's noise.

    Returns:
        `root` as a Path.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    description = {
        "Name": "brainharmonix_hf sample derivatives",
        "BIDSVersion": "1.9.0",
        "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "brainharmonix_hf.cohort.sample_tree"}],
    }
    (root / "dataset_description.json").write_text(json.dumps(description, indent=2))
    t1 = load_t1_sample()
    fmri = load_fmri_sample()
    length = num_timepoints or fmri.series.shape[1]
    if len(runs) * length > fmri.series.shape[1]:
        raise ValueError(f"{len(runs)} runs of {length} frames do not fit in the {fmri.series.shape[1]}-frame run.")
    atlas_path = root / f"atlas-{ATLAS}_dseg.nii.gz"
    nib.save(nib.Nifti1Image(_bold_labels(), np.eye(4)), atlas_path)
    for index, (subject, session) in enumerate(sessions):
        rng = np.random.default_rng(index)
        prefix = f"sub-{subject}" + (f"_ses-{session}" if session else "")
        folder = root / f"sub-{subject}" / (f"ses-{session}" if session else "")
        (folder / "anat").mkdir(parents=True, exist_ok=True)
        (folder / "func").mkdir(parents=True, exist_ok=True)
        volume = t1.get_fdata(dtype=np.float32) * (1 + 0.02 * index)
        nib.save(
            nib.Nifti1Image(volume, t1.affine, header=t1.header),
            folder / "anat" / f"{prefix}_space-{SPACE}_desc-preproc_T1w.nii.gz",
        )
        for window, (task, run_index) in enumerate(runs):
            series = fmri.series[:, window * length : (window + 1) * length]
            session_series = (series + 0.05 * index * rng.standard_normal(series.shape)).astype(np.float32)
            run = f"{prefix}_task-{task}" + (f"_run-{run_index}" if run_index else "") + f"_space-{SPACE}"
            table = pd.DataFrame(session_series.T, columns=schaefer400_roi_names(SCHAEFER400_7NETWORKS))
            table.to_csv(folder / "func" / f"{run}_atlas-{ATLAS}_timeseries.tsv", sep="\t", index=False)
            bold = nib.Nifti1Image(_bold_volume(session_series), np.eye(4))
            bold.header.set_xyzt_units("mm", "sec")
            bold.header["pixdim"][4] = fmri.repetition_time
            nib.save(bold, folder / "func" / f"{run}_desc-preproc_bold.nii.gz")
            sidecar = {"RepetitionTime": fmri.repetition_time, "TaskName": task}
            (folder / "func" / f"{run}_desc-preproc_bold.json").write_text(json.dumps(sidecar))
    return root


def atlas_image(root: str | os.PathLike) -> Path:
    """The label image of the tree's BOLD runs (labels 1-400 on their voxels)."""
    return Path(root) / f"atlas-{ATLAS}_dseg.nii.gz"


def _bold_labels() -> np.ndarray:
    labels = np.zeros(int(np.prod(BOLD_GRID)), dtype=np.int16)
    labels[:400] = np.arange(1, 401)
    return labels.reshape(BOLD_GRID)


def _bold_volume(series: np.ndarray) -> np.ndarray:
    """`(400, T)` series -> `(*BOLD_GRID, T)` run with ROI r's series in the voxel labelled r + 1."""
    volume = np.zeros((int(np.prod(BOLD_GRID)), series.shape[1]), dtype=np.float32)
    volume[:400] = series
    return volume.reshape(*BOLD_GRID, series.shape[1])
