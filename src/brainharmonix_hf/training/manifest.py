# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Cohort manifests: one row per scan session, loaded as a Hugging Face `datasets.Dataset`.

A manifest is a CSV, TSV, JSON (records), JSON Lines or Parquet file, a list of dicts, or a `datasets.Dataset` with
these columns (only `subject` is required; every other column may be missing or empty):

| column | meaning |
|---|---|
| `subject` | subject identifier (text) |
| `session` | session identifier (text), when a subject has several |
| `task`, `acquisition`, `direction`, `run` | the fMRI run (text, BIDS entity values), when a session has several |
| `t1` | path of a T1 NIfTI in MNI space, or empty |
| `fmri` | path of an fMRI input (ROI CSV/TSV, 4D NIfTI, `.npy`), or empty |
| `repetition_time` | fMRI TR in seconds (may be empty for a NIfTI whose header has it) |
| `atlas` | atlas name and ROI order of the fMRI input (e.g. `schaefer400_7networks`) |
| `label` | target of a downstream task: a class name or number, or a value to regress |
| `site` | acquisition site, for site-grouped splits |
| `split` | `train`, `validation` or `test`, when the cohort fixes its splits |

Relative paths are resolved against the manifest file's folder. Every row needs a T1 or an fMRI input.
"""

import difflib
import math
import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path

import datasets
import pandas as pd

from ..cohort.session_inputs import KEY_COLUMNS

MANIFEST_COLUMNS = (
    *KEY_COLUMNS, "t1", "fmri", "repetition_time", "atlas", "label", "site", "split"
)  # fmt: skip
PATH_COLUMNS = ("t1", "fmri")
TEXT_COLUMNS = (*KEY_COLUMNS, "t1", "fmri", "atlas", "site", "split")
SPLITS = ("train", "validation", "test")
FEATURES = dict.fromkeys(TEXT_COLUMNS, datasets.Value("string")) | {"repetition_time": datasets.Value("float64")}
MANIFEST_SUFFIXES = {".csv": ",", ".tsv": "\t", ".json": None, ".jsonl": None, ".parquet": None}
# Names other tables use for the manifest columns (BIDS participants.tsv, fMRIPrep suffixes, ...), lowercase.
COLUMN_ALIASES = {
    "participant_id": "subject", "participant": "subject", "sub": "subject", "subject_id": "subject",
    "session_id": "session", "ses": "session",
    "t1w": "t1", "anat": "t1", "t1_path": "t1", "t1w_path": "t1",
    "bold": "fmri", "func": "fmri", "fmri_path": "fmri", "timeseries": "fmri",
    "tr": "repetition_time", "repetitiontime": "repetition_time", "parcellation": "atlas",
}  # fmt: skip
# Columns a lookalike is refused for: what every row's inputs are. Label, site and split lookalikes may be the columns
# a command is told to read (`--label-column`), so they are kept as extra columns.
INPUT_COLUMNS = ("subject", "session", "t1", "fmri", "repetition_time", "atlas")

ManifestSource = str | os.PathLike | datasets.Dataset | Iterable[Mapping]


class ManifestError(ValueError):
    """A manifest that cannot be used: the message names the rows and columns at fault and the fix."""


def load_manifest(source: ManifestSource, *, check_files: bool = True) -> datasets.Dataset:
    """Load and check a cohort manifest.

    Args:
        source: a manifest file (`.csv`, `.tsv`, `.json`, `.jsonl`, `.parquet`), a `datasets.Dataset`, or rows as
            dicts. Relative `t1` / `fmri` paths of a file are resolved against its folder (of rows and datasets,
            against the working directory).
        check_files: check that every listed file exists (all missing files are reported at once).

    Returns:
        A `datasets.Dataset` with all of `MANIFEST_COLUMNS`, in that order (then any extra columns): text columns as
        strings or `None`, absolute paths, `repetition_time` as float or `None`; `label` as read.
    """
    base_dir = Path.cwd()
    if isinstance(source, datasets.Dataset):
        table = source.to_pandas()
    elif isinstance(source, str | os.PathLike):
        path = Path(source)
        table, base_dir = _read_manifest_file(path), path.resolve().parent
    else:
        table = pd.DataFrame(list(source))
    columns = _checked({str(name): list(values) for name, values in table.to_dict(orient="list").items()}, base_dir)
    if check_files:
        _check_files(columns)
    features = {name: FEATURES.get(name) for name in columns}
    if all(value is None for value in columns["label"]):
        features["label"] = datasets.Value("string")
    if any(feature is None for feature in features.values()):
        inferred = datasets.Dataset.from_dict({name: columns[name] for name, f in features.items() if f is None})
        features |= dict(inferred.features)
    return datasets.Dataset.from_dict(columns, features=datasets.Features(features))


def _read_manifest_file(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if suffix not in MANIFEST_SUFFIXES:
        raise ManifestError(
            f"{path} is not a manifest format this package reads: use one of {', '.join(MANIFEST_SUFFIXES)}."
        )
    if not path.is_file():
        raise ManifestError(f"Manifest {path} does not exist.")
    text_types = dict.fromkeys(TEXT_COLUMNS, "string")
    if suffix in (".csv", ".tsv"):
        return pd.read_csv(path, sep=MANIFEST_SUFFIXES[suffix], dtype=text_types, keep_default_na=True)
    if suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_json(path, lines=suffix == ".jsonl", orient="records", dtype=text_types)


def _meant_column(name: str) -> str | None:
    """The input column an unknown column name most likely stands for (`T1w` -> `t1`), or `None`."""
    key = re.sub(r"[\s\-]+", "_", name.strip().lower())
    if key in INPUT_COLUMNS:
        return key
    if key in COLUMN_ALIASES:
        return COLUMN_ALIASES[key]
    close = difflib.get_close_matches(key, INPUT_COLUMNS, n=1, cutoff=0.8)
    return close[0] if close else None


def _check_column_names(table: dict[str, list]) -> None:
    """Refuse a column that stands for a manifest column the manifest lacks (`T1w` without `t1`): its values would be
    kept as an extra column and never read."""
    misnamed = [
        (name, meant)
        for name in table
        if name not in MANIFEST_COLUMNS and (meant := _meant_column(name)) is not None and meant not in table
    ]
    if misnamed:
        raise ManifestError(
            "The manifest has "
            + "; ".join(f"a column `{name}` where it reads `{meant}`: rename it `{meant}`" for name, meant in misnamed)
            + f". Manifest columns: {', '.join(MANIFEST_COLUMNS)}; other columns are kept as they are."
        )


def _checked(table: dict[str, list], base_dir: Path) -> dict[str, list]:
    """Columns as Python lists: all of `MANIFEST_COLUMNS` first, values normalised; raises on rule violations."""
    _check_column_names(table)
    if "subject" not in table:
        raise ManifestError(
            f"The manifest has no `subject` column (columns: {', '.join(table) or 'none'}). "
            f"Name one column `subject`; the others it may have are {', '.join(MANIFEST_COLUMNS[1:])}."
        )
    num_rows = len(table["subject"])
    if num_rows == 0:
        raise ManifestError("The manifest has no rows.")
    table = {column: table.get(column, [None] * num_rows) for column in MANIFEST_COLUMNS} | table
    for column in TEXT_COLUMNS:
        table[column] = [_text(value) for value in table[column]]
    for column in PATH_COLUMNS:
        table[column] = [None if value is None else str((base_dir / value).resolve()) for value in table[column]]
    table["repetition_time"] = [_seconds(value, row) for row, value in enumerate(table["repetition_time"])]
    table["label"] = [None if _missing(value) else _plain(value) for value in table["label"]]

    problems = []
    for row, (subject, t1, fmri) in enumerate(zip(table["subject"], table["t1"], table["fmri"], strict=True)):
        if subject is None:
            problems.append(f"row {row}: no subject")
        if t1 is None and fmri is None:
            problems.append(f"row {row} (subject {subject}): neither `t1` nor `fmri` is given")
    bad_splits = sorted({split for split in table["split"] if split is not None and split not in SPLITS})
    if bad_splits:
        problems.append(f"`split` values {bad_splits} are not among {list(SPLITS)}")
    counts = Counter(zip(*(table[column] for column in KEY_COLUMNS), strict=True))
    repeated = sorted((key for key, count in counts.items() if count > 1), key=str)
    if repeated:
        problems.append(
            "these (subject, session) pairs appear more than once: "
            + ", ".join(f"({key[0]}, {key[1]}{''.join(f', {v}' for v in key[2:] if v)})" for key in repeated)
            + "; give each scan session its own `session` value (and each fMRI run of a session its own `run`)"
        )
    _raise_problems(problems)
    return table


def _check_files(table: dict[str, list]) -> None:
    _raise_problems(
        [
            f"row {row} (subject {subject}): {column} file {path} does not exist"
            for column in PATH_COLUMNS
            for row, (subject, path) in enumerate(zip(table["subject"], table[column], strict=True))
            if path is not None and not Path(path).exists()
        ]
    )


def _raise_problems(problems: list[str]) -> None:
    if problems:
        shown = "\n  ".join(problems[:20]) + ("\n  ..." if len(problems) > 20 else "")
        raise ManifestError(f"The manifest has {len(problems)} problem(s):\n  {shown}")


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def _plain(value):
    """numpy scalars as Python numbers."""
    return value.item() if hasattr(value, "item") else value


def _text(value) -> str | None:
    if _missing(value):
        return None
    text = str(value).strip()
    return text or None


def _seconds(value, row: int) -> float | None:
    if _missing(value) or (isinstance(value, str) and not value.strip()):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError) as error:
        raise ManifestError(f"row {row}: repetition_time {value!r} is not a number of seconds.") from error
    return seconds


__all__ = ["MANIFEST_COLUMNS", "ManifestError", "load_manifest"]
