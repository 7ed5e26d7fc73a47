# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""One subject-session's inputs to embed, from a BIDS derivatives tree or a cohort manifest."""

from collections.abc import Sequence
from dataclasses import dataclass

from ..training.manifest import ManifestSource, load_manifest


@dataclass(frozen=True)
class SessionInputs:
    """The files of one scan session.

    Attributes:
        subject: subject label (without `sub-`).
        session: session label (without `ses-`), or `None` for single-session data.
        t1: path of an MNI-space T1 NIfTI, or `None`.
        fmri: path of the fMRI input (parcellated `.tsv` table, ROI `.csv`, or 4D NIfTI), or `None`.
        repetition_time: fMRI TR in seconds, or `None` (no fMRI, or a NIfTI whose header has it).
        atlas: atlas name of the fMRI input, or `None`.
    """

    subject: str
    session: str | None = None
    t1: str | None = None
    fmri: str | None = None
    repetition_time: float | None = None
    atlas: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        """`(subject, session)` with `""` for no session: the row key of the embedding table."""
        return self.subject, self.session or ""


def sessions_from_manifest(source: ManifestSource) -> list[SessionInputs]:
    """The rows of a cohort manifest (see `brainharmonix_hf.training.manifest`) as `SessionInputs`, files checked."""
    manifest = load_manifest(source)
    return [
        SessionInputs(
            subject=row["subject"],
            session=row["session"],
            t1=row["t1"],
            fmri=row["fmri"],
            repetition_time=row["repetition_time"],
            atlas=row["atlas"],
        )
        for row in manifest
    ]


def select_sessions(
    sessions: Sequence[SessionInputs],
    participant_label: Sequence[str] | None = None,
    session: Sequence[str] | None = None,
) -> list[SessionInputs]:
    """Keep the sessions of these subjects and session labels (`sub-` / `ses-` prefixes optional; `None` keeps all)."""
    subjects = None if not participant_label else {label.removeprefix("sub-") for label in participant_label}
    labels = None if not session else {label.removeprefix("ses-") for label in session}
    return [
        inputs
        for inputs in sessions
        if (subjects is None or inputs.subject in subjects) and (labels is None or (inputs.session or "") in labels)
    ]
