# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Find each subject-session's inputs in a BIDS derivatives tree (fMRIPrep / XCP-D outputs) with pybids.

Per subject and session:

- T1: `anat/*_space-<MNI space>_desc-preproc_T1w.nii.gz` (MNI152NLin2009cAsym preferred, then MNI152NLin6Asym);
- fMRI: an XCP-D-style parcellated table `func/*_atlas-<name>_timeseries.tsv` or `*_seg-<name>_timeseries.tsv`
  (preferred), or, when an atlas label
  image is given to the embedding, the MNI-space `*_desc-preproc_bold.nii.gz`;
- TR: `RepetitionTime` from the table's own JSON sidecar, else from the sidecar of the BOLD run with the same
  subject, session, task and run.

When several runs match a session, the first in sorted order is used; filter with `task` / `run` to pick another.
"""

import os
from collections.abc import Sequence
from pathlib import Path

from .session_inputs import SessionInputs

MNI_SPACES = ("MNI152NLin2009cAsym", "MNI152NLin6Asym")
RUN_ENTITIES = ("subject", "session", "task", "acquisition", "run")


def find_bids_sessions(
    root: str | os.PathLike,
    *,
    atlas: str | None = None,
    participant_label: Sequence[str] | None = None,
    session: Sequence[str] | None = None,
    task: str | None = None,
    run: int | None = None,
    use_bold: bool = False,
) -> list[SessionInputs]:
    """List the subject-sessions of a derivatives tree with their T1, fMRI input and TR.

    Args:
        root: the derivatives dataset folder (with `dataset_description.json`).
        atlas: atlas (`atlas-` or `seg-` entity) of the parcellated tables to use (e.g. `Schaefer417`); needed when
            the tree has several.
        participant_label: keep only these subjects (with or without `sub-`).
        session: keep only these sessions (with or without `ses-`).
        task, run: keep only fMRI runs of this task / run number.
        use_bold: take the preprocessed BOLD NIfTI as the fMRI input when a session has no parcellated table.

    Returns:
        One `SessionInputs` per subject-session that has a T1 or an fMRI input, sorted by subject then session.
    """
    from bids import BIDSLayout

    root = Path(root)
    if not (root / "dataset_description.json").is_file():
        raise FileNotFoundError(
            f"{root} has no dataset_description.json: point --bids at a BIDS derivatives dataset folder (e.g. the "
            "fMRIPrep or XCP-D output folder)."
        )
    layout = BIDSLayout(root, validate=False, is_derivative=True)
    filters = {}
    if participant_label:
        filters["subject"] = [label.removeprefix("sub-") for label in participant_label]
    if session:
        filters["session"] = [label.removeprefix("ses-") for label in session]
    run_filters = dict(filters)
    if task is not None:
        run_filters["task"] = task
    if run is not None:
        run_filters["run"] = run

    tables = layout.get(suffix="timeseries", extension=".tsv", **run_filters)
    if atlas is not None:
        tables = [table for table in tables if _atlas(table) == atlas]
    atlases = sorted({_atlas(table) for table in tables} - {None})
    if atlas is None and len(atlases) > 1:
        raise ValueError(
            f"{root} has parcellated tables for several atlases {atlases}; choose one with --atlas (atlas=...)."
        )
    bolds = layout.get(suffix="bold", extension=[".nii", ".nii.gz"], **run_filters)
    t1s = layout.get(suffix="T1w", desc="preproc", extension=[".nii", ".nii.gz"], space=list(MNI_SPACES), **filters)

    keys = {_key(f) for f in tables} | {_key(f) for f in t1s} | ({_key(f) for f in bolds} if use_bold else set())
    sessions = []
    for subject, ses in sorted(keys):
        t1 = _first_by_space([f for f in t1s if _key(f) == (subject, ses)])
        fmri, repetition_time, fmri_atlas = None, None, None
        table = _first([f for f in tables if _key(f) == (subject, ses)])
        if table is not None:
            fmri, fmri_atlas = table.path, _atlas(table)
            repetition_time = _repetition_time(table, bolds)
        elif use_bold:
            # Parcellated with an MNI label image: only preprocessed runs in an MNI space (sidecar TRs come from any).
            bold = _first_by_space(
                [
                    f
                    for f in bolds
                    if _key(f) == (subject, ses)
                    and f.entities.get("space") in MNI_SPACES
                    and f.entities.get("desc") == "preproc"
                ]
            )
            if bold is not None:
                fmri, repetition_time = bold.path, bold.get_metadata().get("RepetitionTime")
        if t1 is None and fmri is None:
            continue
        sessions.append(
            SessionInputs(
                subject=subject,
                session=ses or None,
                t1=None if t1 is None else t1.path,
                fmri=fmri,
                repetition_time=None if repetition_time is None else float(repetition_time),
                atlas=fmri_atlas,
            )
        )
    return sessions


def _key(bids_file) -> tuple[str, str]:
    return bids_file.entities["subject"], str(bids_file.entities.get("session", ""))


def _atlas(table) -> str | None:
    """The table's atlas: its `atlas-` entity, or `seg-` as newer XCP-D versions name it."""
    return table.entities.get("atlas") or table.entities.get("segmentation")


def _first(files: list):
    return min(files, key=lambda f: f.path) if files else None


def _first_by_space(files: list):
    """The file in the most preferred MNI space (MNI_SPACES order), then by path; other spaces only if none match."""
    rank = {space: index for index, space in enumerate(MNI_SPACES)}
    return min(files, key=lambda f: (rank.get(f.entities.get("space"), len(rank)), f.path)) if files else None


def _repetition_time(table, bolds: list) -> float | None:
    """RepetitionTime of the table's own sidecar, else of the BOLD run with the same subject/session/task/run."""
    own = table.get_metadata().get("RepetitionTime")
    if own is not None:
        return own
    entities = {name: table.entities.get(name) for name in RUN_ENTITIES}
    for bold in sorted(bolds, key=lambda f: f.path):
        if all(bold.entities.get(name) == value for name, value in entities.items()):
            found = bold.get_metadata().get("RepetitionTime")
            if found is not None:
                return found
    return None
