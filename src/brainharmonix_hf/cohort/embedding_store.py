# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""The output folder of a cohort embedding run: one model and one set of options, safe to interrupt, resume and share.

```
<output>/embeddings.parquet                         one row per subject-session-run (after consolidation)
<output>/failures.jsonl                             rows that failed: the file and field at fault, the error
<output>/settings.json                              the model and options the folder belongs to (`folder_settings`)
<output>/runs.jsonl                                 one line per run: input selection, T1 rule, counts, timings
<output>/.embed.lock                                held by the run writing to the folder (`folder_lock`)
<output>/shards/<run>-rank<R>-<N>.parquet           rows written while running, each file written atomically
<output>/shards/failures-<run>-rank<R>.jsonl
```

`<run>` is a time stamp and a random tag, so shard names never collide across runs or processes, and sort by time.
A row is done once it is in a shard or in `embeddings.parquet`. Consolidation merges the shards into
`embeddings.parquet` with Arrow (written to a temporary file, then renamed; one row per key, the newest wins), then
deletes them.
"""

import json
import os
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .session_features import SessionFailure
from .session_inputs import KEY_COLUMNS

if TYPE_CHECKING:
    import datasets

EMBEDDINGS_FILE = "embeddings.parquet"
FAILURES_FILE = "failures.jsonl"
SETTINGS_FILE = "settings.json"
RUNS_FILE = "runs.jsonl"
SHARDS_FOLDER = "shards"
# What a rerun compares with the inputs it finds to tell a done row from a stale one.
CHECK_COLUMNS = ("t1", "fmri", "t1_sha256", "fmri_sha256", "t1_stat", "fmri_stat", "repetition_time", "atlas")
KEY_SEPARATOR = "\x1f"
# Arrow types of the row columns that are not text (every other column is a string).
ROW_TYPES = {
    "embedding": pa.list_(pa.float64()),
    "hub_tokens": pa.list_(pa.list_(pa.float64())),
    "has_t1": pa.bool_(),
    "has_fmri": pa.bool_(),
    "repetition_time": pa.float64(),
    "t1_alternatives": pa.list_(pa.string()),
    "fmri_alternatives": pa.list_(pa.string()),
}


def new_run_id() -> str:
    """A run's name in shard file names: its start time (so names sort by time) and a random tag."""
    return f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:10]}"


class EmbeddingStore:
    """Reads and writes one output folder; each process (rank) writes only its own shard and failure files.

    Args:
        output_dir: the run's output folder.
        rank: this process's index, part of its file names.
        run_id: this run's name (`new_run_id`), shared by its processes.
    """

    def __init__(self, output_dir: str | os.PathLike, rank: int = 0, run_id: str | None = None):
        self.output_dir = Path(output_dir)
        self.shards_dir = self.output_dir / SHARDS_FOLDER
        self.rank = rank
        self.run_id = run_id or new_run_id()
        self._shards_written = 0

    def create(self) -> None:
        """Create the folder and its shard folder."""
        self.shards_dir.mkdir(parents=True, exist_ok=True)

    def existing_rows(self, columns: Iterable[str] = KEY_COLUMNS + CHECK_COLUMNS) -> pa.Table:
        """The key and `columns` of every row written (consolidated or in shards); missing columns are null."""
        tables = [self._read(path, columns) for path in self._row_files()]
        if not tables:
            return pa.table({name: pa.array([], pa.string()) for name in columns})
        return _newest_per_key(pa.concat_tables(tables, promote_options="default"))

    def write_rows(self, rows: list[Mapping]) -> Path:
        """Write a chunk of rows as this rank's next shard file (atomically: temporary name, then rename)."""
        path = self.shards_dir / f"{self.run_id}-rank{self.rank}-{self._shards_written:06d}.parquet"
        self._shards_written += 1
        schema = pa.schema([(name, ROW_TYPES.get(name, pa.string())) for name in rows[0]])
        _write_atomically(pa.Table.from_pylist(list(rows), schema=schema), path)
        return path

    def record_failure(self, key: tuple[str, ...], failure: SessionFailure) -> None:
        """Append one failure line (the row's key, the file and field at fault, the error) to this rank's file."""
        line = dict(zip(KEY_COLUMNS, key, strict=True)) | {
            "file": failure.file,
            "field": failure.field,
            "error_type": failure.error_type,
            "message": failure.message,
        }
        with open(self.shards_dir / f"failures-{self.run_id}-rank{self.rank}.jsonl", "a", encoding="utf-8") as file:
            file.write(json.dumps(line) + "\n")

    def consolidate(
        self,
        replaced_keys: Iterable[tuple[str, ...]] = (),
        refreshed: Mapping[tuple[str, ...], Mapping[str, str]] | None = None,
    ) -> Path:
        """Merge every shard (and an earlier `embeddings.parquet`) into `embeddings.parquet`, sorted by key, one row
        per key (the newest wins; left untouched when there are no shards and nothing is replaced or refreshed);
        merge the failure files, dropping keys that are now done. Call from one process once every rank has finished.

        Args:
            replaced_keys: keys whose earlier rows are stale (their inputs changed): those rows are dropped, so a key
                whose re-embedding failed is in `failures.jsonl` and no longer in the table.
            refreshed: key -> new values of text columns of a row that stays (the `*_stat` of files found unchanged
                by their hash, `RunPlan.refreshed`).
        """
        final = self.output_dir / EMBEDDINGS_FILE
        replaced = {KEY_SEPARATOR.join(key) for key in replaced_keys}
        shards = sorted(self.shards_dir.glob("*.parquet"))
        if shards or replaced or refreshed:
            tables = []
            for path in self._row_files():
                table = pq.read_table(path)
                if replaced and not path.name.startswith(f"{self.run_id}-rank"):
                    table = table.filter(pc.invert(pc.is_in(_joined_keys(table), pa.array(sorted(replaced)))))
                tables.append(table)
            merged = _newest_per_key(pa.concat_tables(tables, promote_options="default"))
            if refreshed:
                merged = _with_values(merged, refreshed)
            _write_atomically(merged.sort_by([(name, "ascending") for name in KEY_COLUMNS]), final)
        for path in shards:
            path.unlink()
        self._consolidate_failures()
        return final

    def read_settings(self) -> dict | None:
        path = self.output_dir / SETTINGS_FILE
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None

    def write_settings(self, settings: Mapping) -> None:
        temporary = self.output_dir / f".{SETTINGS_FILE}.{self.run_id}.tmp"
        temporary.write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(temporary, self.output_dir / SETTINGS_FILE)

    def append_run_record(self, record: Mapping) -> None:
        """Add one line to `runs.jsonl`: what this run selected, did and took."""
        with open(self.output_dir / RUNS_FILE, "a", encoding="utf-8") as file:
            file.write(json.dumps(record, default=str) + "\n")

    def clear(self) -> None:
        """Remove the rows, failures, settings and run records (only the files this store writes)."""
        for name in (EMBEDDINGS_FILE, FAILURES_FILE, SETTINGS_FILE, RUNS_FILE):
            (self.output_dir / name).unlink(missing_ok=True)
        if self.shards_dir.is_dir():
            for path in [*self.shards_dir.glob("*.parquet"), *self.shards_dir.glob("failures-*.jsonl")]:
                path.unlink()

    def _consolidate_failures(self) -> None:
        done = set(self._keys(self.existing_rows(columns=KEY_COLUMNS)))
        failures = {}
        sources = [self.output_dir / FAILURES_FILE, *sorted(self.shards_dir.glob("failures-*.jsonl"))]
        for path in sources:
            if path.is_file():
                for line in path.read_text(encoding="utf-8").splitlines():
                    failure = json.loads(line)
                    failures[tuple(failure.get(name) or "" for name in KEY_COLUMNS)] = failure
        kept = [failures[key] for key in sorted(failures) if key not in done]
        temporary = self.output_dir / f".{FAILURES_FILE}.{self.run_id}.tmp"
        temporary.write_text("".join(json.dumps(failure) + "\n" for failure in kept), encoding="utf-8")
        os.replace(temporary, self.output_dir / FAILURES_FILE)
        for path in sources[1:]:
            path.unlink()

    @staticmethod
    def _keys(table: pa.Table) -> list[tuple[str, ...]]:
        return [tuple(key.split(KEY_SEPARATOR)) for key in _joined_keys(table).to_pylist()]

    def _row_files(self) -> list[Path]:
        final = self.output_dir / EMBEDDINGS_FILE
        return ([final] if final.is_file() else []) + sorted(self.shards_dir.glob("*.parquet"))

    @staticmethod
    def _read(path: Path, columns: Iterable[str]) -> pa.Table:
        present = set(pq.read_schema(path).names)
        table = pq.read_table(path, columns=[name for name in columns if name in present])
        for name in columns:
            if name not in present:
                table = table.append_column(name, pa.nulls(len(table), pa.string()))
        return table


def _joined_keys(table: pa.Table) -> pa.Array:
    """One string per row: its key columns (null as `""`) joined by `KEY_SEPARATOR`."""
    columns = [
        pc.fill_null(table[name].cast(pa.string()), "") if name in table.column_names else pa.array([""] * len(table))
        for name in KEY_COLUMNS
    ]
    return pc.binary_join_element_wise(*columns, KEY_SEPARATOR).combine_chunks()


def _with_values(table: pa.Table, values: Mapping[tuple[str, ...], Mapping[str, str]]) -> pa.Table:
    """`table` with the text columns of some rows set anew: `values` maps a key to `{column: value}`."""
    by_key = {KEY_SEPARATOR.join(key): columns for key, columns in values.items()}
    keys = _joined_keys(table).to_pylist()
    for name in sorted({name for columns in by_key.values() for name in columns}):
        column = table[name].to_pylist()
        for index, key in enumerate(keys):
            if name in by_key.get(key, {}):
                column[index] = by_key[key][name]
        table = table.set_column(table.schema.get_field_index(name), name, pa.array(column, pa.string()))
    return table


def _newest_per_key(table: pa.Table) -> pa.Table:
    """The last row of each key (rows come oldest first)."""
    keys = _joined_keys(table)
    positions = pa.table({"key": keys, "index": pa.array(range(len(keys)), pa.int64())})
    last = positions.group_by("key").aggregate([("index", "max")]).sort_by("index_max")
    return table.take(last["index_max"])


def load_embeddings(output_dir: str | os.PathLike) -> "datasets.Dataset":
    """The consolidated embedding table of a run folder as a `datasets.Dataset`."""
    import datasets  # here, not at the top: `brainharmonix embed` writes Arrow tables and never needs it (0.6 s)

    path = Path(output_dir) / EMBEDDINGS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: run `brainharmonix embed` with --output {output_dir} first.")
    return datasets.Dataset(datasets.table.InMemoryTable(pq.read_table(path)))


def load_failures(output_dir: str | os.PathLike) -> list[dict]:
    """The failures of a run folder: dicts with the row's key (subject, session, task, acquisition, direction, run),
    the `file` and `field` at fault, `error_type` and `message`."""
    path = Path(output_dir) / FAILURES_FILE
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.is_file() else []


def _write_atomically(table: pa.Table, path: Path) -> None:
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:10]}.tmp")
    pq.write_table(table, temporary)
    os.replace(temporary, path)
