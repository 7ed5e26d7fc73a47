# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Which fMRI runs of each session become rows: all of them (the default), the first, or those of a task / run."""

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby

from .session_inputs import SessionInputs

RUN_CHOICES = ("all", "first")


@dataclass(frozen=True)
class RunSelection:
    """The runs a session contributes.

    Attributes:
        runs: `"all"` (one row per run) or `"first"` (the first run of each session in (task, acquisition,
            direction, run) order; the others are listed in its `fmri_alternatives`).
        task: keep only runs of this task.
        run: keep only runs with this run index (`"1"` matches `run-01`).
    """

    runs: str = "all"
    task: str | None = None
    run: str | None = None

    def __post_init__(self):
        if self.runs not in RUN_CHOICES:
            raise ValueError(f"runs must be one of {RUN_CHOICES}, got {self.runs!r}.")

    def describe(self) -> str:
        """The choice in words, for the output folder's run record and the log."""
        which = "every fMRI run of each session" if self.runs == "all" else "the first fMRI run of each session"
        filters = ([f"task {self.task}"] if self.task else []) + ([f"run {self.run}"] if self.run else [])
        return which + (f" ({', '.join(filters)} only)" if filters else "") + "; a session with none left: its T1 alone"

    def keeps(self, inputs: SessionInputs) -> bool:
        """Whether a row's fMRI run passes the task and run filters."""
        return (self.task is None or inputs.task == self.task) and (
            self.run is None or _same_index(inputs.run, self.run)
        )


def select_runs(rows: Sequence[SessionInputs], selection: RunSelection) -> list[SessionInputs]:
    """Apply `selection` to rows (one per session-run, any order): rows are returned sorted by key.

    A session whose fMRI runs are all filtered out keeps one row with its T1 alone (none without a T1).
    """
    selected = []
    for _, group in groupby(sorted(rows, key=lambda row: row.key), key=lambda row: row.session_key):
        group = list(group)
        runs = [row for row in group if row.fmri is not None and selection.keeps(row)]
        if not runs:
            with_t1 = next((row for row in group if row.t1 is not None), None)
            if with_t1 is not None:
                selected.append(_t1_only(with_t1))
            continue
        if selection.runs == "first":
            others = tuple(path for row in runs[1:] for path in (row.fmri, *row.fmri_alternatives))
            runs = [dataclasses.replace(runs[0], fmri_alternatives=runs[0].fmri_alternatives + others)]
        selected.extend(runs)
    return selected


def _t1_only(row: SessionInputs) -> SessionInputs:
    return SessionInputs(subject=row.subject, session=row.session, t1=row.t1, t1_alternatives=row.t1_alternatives)


def _same_index(label: str | None, wanted: str) -> bool:
    if label is None:
        return False
    if label.isdigit() and str(wanted).isdigit():
        return int(label) == int(wanted)
    return label == str(wanted)
