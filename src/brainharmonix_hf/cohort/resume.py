# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Which rows a run must embed: those not yet in the folder, and those whose inputs changed since.

A row is stale when its input paths, TR or declared atlas differ from the ones found now, or when an input file's
content changed: files whose size and modification time still match the row are taken as unchanged (so a rerun with
nothing to do reads no file), the others are hashed and compared with the row's sha256. A file whose content turns out
unchanged (touched, copied, restored) gets its new size and modification time written back (`RunPlan.refreshed`), so
it is hashed once, not at every rerun; a checksum made here serves the embedding of the same file (`InputFiles`).
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import pyarrow as pa

from .embedding_store import CHECK_COLUMNS
from .session_features import INPUT_FIELDS, InputFiles, file_stat
from .session_inputs import KEY_COLUMNS, SessionInputs


@dataclass
class RunPlan:
    """Attributes:
    pending: rows to embed (new, failed before, or stale), sorted by key.
    done: rows already embedded with the current inputs.
    changed: key -> why the stored row is stale (its inputs changed).
    refreshed: key -> the `*_stat` columns of a done row whose files were hashed and found unchanged, with their
        values now (for `EmbeddingStore.consolidate`).
    """

    pending: list[SessionInputs]
    done: int
    changed: dict[tuple[str, ...], str] = field(default_factory=dict)
    refreshed: dict[tuple[str, ...], dict[str, str]] = field(default_factory=dict)


def plan_run(
    sessions: Sequence[SessionInputs], existing: pa.Table, fmri_atlas: str | None, files: InputFiles | None = None
) -> RunPlan:
    """Compare the rows found now with the folder's rows (`EmbeddingStore.existing_rows`); checksums made go into
    `files`, so that embedding a stale row does not hash its files again."""
    files = files or InputFiles()
    columns = {name: existing[name].to_pylist() for name in (*KEY_COLUMNS, *CHECK_COLUMNS)}
    stored = {
        tuple(value or "" for value in key): index
        for index, key in enumerate(zip(*(columns[name] for name in KEY_COLUMNS), strict=True))
    }
    plan = RunPlan(pending=[], done=0)
    for inputs in sorted(sessions, key=lambda row: row.key):
        index = stored.get(inputs.key)
        if index is not None:
            new_stats = {}
            row = {name: columns[name][index] for name in CHECK_COLUMNS}
            reason = _change(inputs, row, fmri_atlas, files, new_stats)
            if reason is None:
                plan.done += 1
                if new_stats:
                    plan.refreshed[inputs.key] = new_stats
                continue
            plan.changed[inputs.key] = reason
        plan.pending.append(inputs)
    return plan


def _change(
    inputs: SessionInputs, row: dict, fmri_atlas: str | None, files: InputFiles, new_stats: dict[str, str]
) -> str | None:
    """Why the stored `row` no longer matches `inputs`, or `None`; the `*_stat` of files hashed and found unchanged
    go into `new_stats`."""
    for name in INPUT_FIELDS:
        path = getattr(inputs, name)
        if path != row[name]:
            return f"{name} is now {path} (was {row[name]})"
        if path is None:
            continue
        try:
            stat, checksum = file_stat(path), None
            if stat != row[f"{name}_stat"]:
                checksum = files.fingerprint(path)[1]
        except OSError as error:
            return f"{name} {path} cannot be read ({error.strerror})"
        if checksum is not None and checksum != row[f"{name}_sha256"]:
            return f"{name} {path} changed (sha256 {checksum[:12]}..., was {str(row[f'{name}_sha256'])[:12]}...)"
        if checksum is not None:
            new_stats[f"{name}_stat"] = stat
    declared = inputs.atlas or fmri_atlas
    if inputs.fmri is not None and declared != row["atlas"]:
        return f"declared atlas is now {declared} (was {row['atlas']})"
    explicit, stored = inputs.repetition_time, row["repetition_time"]
    if explicit is not None and (stored is None or not math.isclose(float(explicit), float(stored), rel_tol=1e-6)):
        return f"repetition time is now {explicit:g} s (was {stored})"
    return None
