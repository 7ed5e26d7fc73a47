# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""One row to embed: a subject-session's T1 and one of its fMRI runs, from a BIDS derivatives tree or a manifest."""

from collections.abc import Sequence
from dataclasses import dataclass

# The BIDS entities that tell one fMRI run of a session from another; with subject and session they key a row.
RUN_ENTITIES = ("task", "acquisition", "direction", "run")
KEY_COLUMNS = ("subject", "session", *RUN_ENTITIES)


@dataclass(frozen=True)
class InputProblem:
    """Why a row cannot be embedded, found before any file is processed (e.g. a sidecar's `RepetitionTime: "1.4s"`).

    Attributes:
        file: the file at fault.
        field: the field or input at fault (`RepetitionTime`, `t1`, `fmri`, ...).
        message: what is wrong and how to fix it.
    """

    file: str | None
    field: str
    message: str


@dataclass(frozen=True)
class SessionInputs:
    """The files of one row: a scan session's T1 and one of its fMRI runs (either may be missing).

    Attributes:
        subject: subject label (without `sub-`).
        session: session label (without `ses-`), or `None` for single-session data.
        task, acquisition, direction, run: the fMRI run's BIDS entities (`None` when absent or without fMRI).
        t1: path of an MNI-space T1 NIfTI, or `None`.
        fmri: path of the fMRI input (ROI table, `.npy` array, or 4D NIfTI), or `None`.
        repetition_time: fMRI TR in seconds, or `None` (no fMRI, or a NIfTI whose header has it).
        repetition_time_source: where the TR was read (a sidecar path, `"manifest"`), or `None`.
        atlas: the atlas and ROI order the fMRI input declares (a manifest's `atlas` column, a BIDS `atlas-` entity
            that names one), or `None`.
        t1_alternatives: other T1s the session has, not used (see the discovery's T1 rule).
        fmri_alternatives: other fMRI inputs of the same run (or, with one run per session, of other runs), not used.
        problem: why the row cannot be embedded, when discovery already knows.
    """

    subject: str
    session: str | None = None
    task: str | None = None
    acquisition: str | None = None
    direction: str | None = None
    run: str | None = None
    t1: str | None = None
    fmri: str | None = None
    repetition_time: float | None = None
    repetition_time_source: str | None = None
    atlas: str | None = None
    t1_alternatives: tuple[str, ...] = ()
    fmri_alternatives: tuple[str, ...] = ()
    problem: InputProblem | None = None

    @property
    def key(self) -> tuple[str, ...]:
        """`(subject, session, task, acquisition, direction, run)` with `""` for absent entities: the row key of the
        embedding table."""
        return tuple(getattr(self, name) or "" for name in KEY_COLUMNS)

    @property
    def session_key(self) -> tuple[str, str]:
        """`(subject, session)` with `""` for no session."""
        return self.subject, self.session or ""


def sessions_from_manifest(source) -> list[SessionInputs]:
    """The rows of a cohort manifest (a `brainharmonix_hf.training.manifest.ManifestSource`) as `SessionInputs`.

    Files are not checked here: a missing file fails its own row (in `failures.jsonl`), not the cohort.
    """
    from ..training.manifest import load_manifest

    manifest = load_manifest(source, check_files=False)
    return [
        SessionInputs(
            subject=row["subject"],
            session=row["session"],
            **{name: row[name] for name in RUN_ENTITIES},
            t1=row["t1"],
            fmri=row["fmri"],
            repetition_time=row["repetition_time"],
            repetition_time_source=None if row["repetition_time"] is None else "manifest",
            atlas=row["atlas"],
        )
        for row in manifest
    ]


def select_sessions(
    sessions: Sequence[SessionInputs],
    participant_label: Sequence[str] | None = None,
    session: Sequence[str] | None = None,
) -> list[SessionInputs]:
    """Keep the rows of these subjects and session labels (`sub-` / `ses-` prefixes optional; `None` keeps all)."""
    subjects = None if not participant_label else {label.removeprefix("sub-") for label in participant_label}
    labels = None if not session else {label.removeprefix("ses-") for label in session}
    return [
        inputs
        for inputs in sessions
        if (subjects is None or inputs.subject in subjects) and (labels is None or (inputs.session or "") in labels)
    ]
