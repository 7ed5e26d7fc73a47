# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Find the rows to embed in a BIDS derivatives tree (fMRIPrep / XCP-D outputs): one per subject-session-run.

Per fMRI run (subject, session, task, acquisition, direction, run):

- fMRI: an XCP-D-style parcellated table `func/*_atlas-<name>_timeseries.tsv` or `*_seg-<name>[_stat-mean]_
  timeseries.tsv` (preferred), or, when an atlas label image is given to the embedding, the MNI-space
  `*_desc-preproc_bold.nii.gz`; several inputs for one run: the most preferred MNI space, then the first by name (the
  others are listed in `fmri_alternatives`). Tables without an atlas (fMRIPrep's confounds) are never inputs.
- TR: `RepetitionTime` of the table's own JSON sidecar, else of the BOLD run's with the same subject, session, task,
  acquisition, direction and run (BIDS inheritance: the nearest sidecar wins). A sidecar that cannot be read or whose
  value is not seconds fails that run alone, naming the file and field.
- Atlas: the `atlas-`/`seg-` entity declares the ROI order when it names a known atlas (`atlas_named_by`).

Per session, the T1 (`T1_RULE`): `anat/*_space-<MNI space>_desc-preproc_T1w.nii.gz`. Every run of a session gets a
row with that T1; a session without runs gets one row with its T1 alone. `runs="first"`, `task` and `run` select runs
(`run_selection`).
"""

import dataclasses
import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from ..modeling.repetition_time import check_repetition_time
from ..processing.atlases import atlas_named_by
from ..processing.nifti_io import NIFTI_SUFFIXES
from .bids_files import BidsFile, SidecarError, SidecarReader, scan_tree
from .run_selection import RunSelection, select_runs
from .session_inputs import InputProblem, SessionInputs

MNI_SPACES = ("MNI152NLin2009cAsym", "MNI152NLin6Asym")
T1_RULE = (
    "one T1 per session: its anat/*_desc-preproc_T1w in space MNI152NLin2009cAsym, else MNI152NLin6Asym, then the "
    "first by file name; a session without one takes its subject's session-less T1; others are in t1_alternatives"
)
# SessionInputs run fields and their BIDS keys.
RUN_KEYS = {"task": "task", "acquisition": "acq", "direction": "dir", "run": "run"}
# Entities a BOLD run's sidecar must agree on to give a parcellated table of that run its TR.
BOLD_RUN_KEYS = ("sub", "ses", "task", "acq", "dir", "run", "echo", "ce", "rec")


def find_bids_sessions(
    root: str | os.PathLike,
    *,
    atlas: str | None = None,
    participant_label: Sequence[str] | None = None,
    session: Sequence[str] | None = None,
    task: str | None = None,
    run: int | str | None = None,
    use_bold: bool = False,
    runs: str = "all",
) -> list[SessionInputs]:
    """List the rows of a derivatives tree: one per subject-session-run, with the session's T1, the run's fMRI input,
    TR and declared atlas.

    Args:
        root: the derivatives dataset folder (with `dataset_description.json`).
        atlas: atlas (`atlas-` or `seg-` entity) of the parcellated tables to use (e.g. `Schaefer417`); needed when
            the tree has several.
        participant_label: keep only these subjects (with or without `sub-`).
        session: keep only these sessions (with or without `ses-`).
        task, run: keep only fMRI runs of this task / run index.
        use_bold: take the preprocessed BOLD NIfTI as the fMRI input of runs that have no parcellated table.
        runs: `"all"` runs of each session, or the `"first"` (see `RunSelection`).

    Returns:
        `SessionInputs` sorted by key (subject, session, task, acquisition, direction, run).
    """
    root = Path(root)
    if not (root / "dataset_description.json").is_file():
        raise FileNotFoundError(
            f"{root} has no dataset_description.json: point --bids at a BIDS derivatives dataset folder (e.g. the "
            "fMRIPrep or XCP-D output folder)."
        )
    subjects = None if not participant_label else [label.removeprefix("sub-") for label in participant_label]
    labels = None if not session else [label.removeprefix("ses-") for label in session]
    tree = scan_tree(root, subjects, labels)
    t1s, tables, bolds = [], [], []
    for file in tree.files:
        if file.extension in NIFTI_SUFFIXES and file.get("desc") == "preproc" and file.get("space") in MNI_SPACES:
            {"T1w": t1s, "bold": bolds}.get(file.suffix, []).append(file)
        elif file.suffix == "timeseries" and file.extension == ".tsv" and _atlas(file) is not None:
            if file.get("stat") in (None, "mean"):
                tables.append(file)
    atlases = sorted({_atlas(table) for table in tables})
    if atlas is not None:
        tables = [table for table in tables if _atlas(table) == atlas]
    elif len(atlases) > 1:
        raise ValueError(
            f"{root} has parcellated tables for several atlases {atlases}; choose one with --atlas (atlas=...)."
        )
    fmri_by_run = _preferred_per_run(tables)
    if use_bold:
        for key, choice in _preferred_per_run(bolds).items():
            fmri_by_run.setdefault(key, choice)
    rows = _rows(fmri_by_run, t1s)
    rows = select_runs(rows, RunSelection(runs=runs, task=task, run=None if run is None else str(run)))
    files = {file.path: file for file in tables + bolds}
    reader = SidecarReader(tree, root)
    return [row if row.fmri is None else _with_repetition_time(row, files[row.fmri], reader) for row in rows]


def _atlas(table: BidsFile) -> str | None:
    """The table's atlas: its `atlas-` entity, or `seg-` as newer XCP-D versions name it."""
    return table.get("atlas") or table.get("seg")


def _session_key(file: BidsFile) -> tuple[str, str]:
    return file.get("sub"), file.get("ses") or ""


def _run_key(file: BidsFile) -> tuple[str, ...]:
    return (*_session_key(file), *(file.get(key) or "" for key in RUN_KEYS.values()))


def _by_preference(files: list[BidsFile]) -> list[BidsFile]:
    """Most preferred MNI space (MNI_SPACES order) first, then by path."""
    rank = {space: index for index, space in enumerate(MNI_SPACES)}
    return sorted(files, key=lambda file: (rank.get(file.get("space"), len(rank)), file.path))


def _preferred_per_run(files: list[BidsFile]) -> dict[tuple[str, ...], list[BidsFile]]:
    """The files of each run, preferred first."""
    by_run = defaultdict(list)
    for file in files:
        by_run[_run_key(file)].append(file)
    return {key: _by_preference(candidates) for key, candidates in by_run.items()}


def _rows(fmri_by_run: dict[tuple[str, ...], list[BidsFile]], t1s: list[BidsFile]) -> list[SessionInputs]:
    """One row per run with its session's T1, and one per session with a T1 and no run."""
    session_t1s, subject_t1s = defaultdict(list), defaultdict(list)
    for t1 in t1s:
        if t1.get("ses"):
            session_t1s[_session_key(t1)].append(t1)
        else:
            subject_t1s[t1.get("sub")].append(t1)
    runs_by_session = defaultdict(list)
    for key, candidates in fmri_by_run.items():
        runs_by_session[key[:2]].append(candidates)
    session_keys = set(runs_by_session) | set(session_t1s)
    subjects_with_sessions = {subject for subject, _ in session_keys}
    session_keys |= {(subject, "") for subject in subject_t1s if subject not in subjects_with_sessions}
    rows = []
    for subject, ses in sorted(session_keys):
        t1_candidates = _by_preference(session_t1s.get((subject, ses)) or subject_t1s.get(subject, []))
        t1 = {
            "t1": t1_candidates[0].path if t1_candidates else None,
            "t1_alternatives": tuple(file.path for file in t1_candidates[1:]),
        }
        for candidates in runs_by_session.get((subject, ses), []):
            chosen = candidates[0]
            rows.append(
                SessionInputs(
                    subject=subject,
                    session=ses or None,
                    **{name: chosen.get(key) for name, key in RUN_KEYS.items()},
                    fmri=chosen.path,
                    atlas=atlas_named_by(_atlas(chosen)),
                    fmri_alternatives=tuple(file.path for file in candidates[1:]),
                    **t1,
                )
            )
        if (subject, ses) not in runs_by_session:
            rows.append(SessionInputs(subject=subject, session=ses or None, **t1))
    return rows


def _with_repetition_time(row: SessionInputs, fmri: BidsFile, reader: SidecarReader) -> SessionInputs:
    """The row with its TR from the nearest sidecar (its own, else its BOLD run's), or the problem that stops it."""
    try:
        found = reader.field(fmri, "RepetitionTime", fmri.suffix) or reader.field(
            fmri, "RepetitionTime", "bold", match_keys=BOLD_RUN_KEYS
        )
    except SidecarError as error:
        return dataclasses.replace(row, problem=InputProblem(error.path, "json", str(error)))
    if found is None:
        return row
    value, sidecar = found
    try:
        seconds = check_repetition_time(value, source=f"RepetitionTime in {sidecar}")
    except ValueError as error:
        return dataclasses.replace(row, problem=InputProblem(sidecar, "RepetitionTime", str(error)))
    return dataclasses.replace(row, repetition_time=seconds, repetition_time_source=sidecar)
