# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""The output folder of a cohort embedding run, safe to interrupt and resume.

```
<output>/embeddings.parquet          one row per subject-session (after consolidation)
<output>/shards/rank<R>-<N>.parquet  rows written while running, one file per chunk, each written atomically
<output>/failures.jsonl              subject-sessions that failed, with the error (after consolidation)
<output>/shards/failures-rank<R>.jsonl
```

A row is done once it is in a shard or in `embeddings.parquet`; a resumed run skips done rows and retries failures.
Consolidation merges the shards into `embeddings.parquet` (written to a temporary file, then renamed), then deletes
them.
"""

import json
import os
from collections.abc import Mapping
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq

EMBEDDINGS_FILE = "embeddings.parquet"
FAILURES_FILE = "failures.jsonl"
SHARDS_FOLDER = "shards"
KEY_COLUMNS = ("subject", "session")


class EmbeddingStore:
    """Reads and writes one output folder; each process (rank) writes only its own shard and failure files.

    Args:
        output_dir: the run's output folder (created if missing).
        rank: this process's index, part of its file names.
    """

    def __init__(self, output_dir: str | os.PathLike, rank: int = 0):
        self.output_dir = Path(output_dir)
        self.shards_dir = self.output_dir / SHARDS_FOLDER
        self.shards_dir.mkdir(parents=True, exist_ok=True)
        self.rank = rank

    def done_keys(self) -> set[tuple[str, str]]:
        """`(subject, session)` of every row already written (session `""` when there is none)."""
        keys = set()
        for path in self._row_files():
            table = pq.read_table(path, columns=list(KEY_COLUMNS))
            keys.update(zip(table["subject"].to_pylist(), table["session"].to_pylist(), strict=True))
        return keys

    def write_rows(self, rows: list[Mapping]) -> Path:
        """Write a chunk of rows as this rank's next shard file (atomically: temporary name, then rename)."""
        existing = sorted(self.shards_dir.glob(f"rank{self.rank}-*.parquet"))
        number = 1 + max((int(path.stem.split("-")[1]) for path in existing), default=-1)
        path = self.shards_dir / f"rank{self.rank}-{number:06d}.parquet"
        _write_atomically(pa.Table.from_pylist(list(rows)), path)
        return path

    def record_failure(self, subject: str, session: str, error_type: str, message: str) -> None:
        """Append one failure line (subject, session, error type and message) to this rank's failure file."""
        line = {"subject": subject, "session": session, "error_type": error_type, "message": message}
        with open(self.shards_dir / f"failures-rank{self.rank}.jsonl", "a", encoding="utf-8") as file:
            file.write(json.dumps(line) + "\n")

    def consolidate(self) -> Path:
        """Merge every shard (and an earlier `embeddings.parquet`) into `embeddings.parquet`, sorted by subject and
        session, one row per key (the newest wins; left untouched when there are no shards); merge the failure files,
        dropping keys that are now done. Call from one process once every rank has finished."""
        final = self.output_dir / EMBEDDINGS_FILE
        shards = sorted(self.shards_dir.glob("rank*.parquet"))
        if shards:
            tables = [pq.read_table(path) for path in self._row_files()]
            merged = pa.concat_tables(tables, promote_options="default").to_pylist()
            newest = {(row["subject"], row["session"]): row for row in merged}
            rows = [newest[key] for key in sorted(newest)]
            _write_atomically(pa.Table.from_pylist(rows), final)
        for path in shards:
            path.unlink()
        self._consolidate_failures()
        return final

    def _consolidate_failures(self) -> None:
        done = self.done_keys()
        failures = {}
        sources = [self.output_dir / FAILURES_FILE, *sorted(self.shards_dir.glob("failures-rank*.jsonl"))]
        for path in sources:
            if path.is_file():
                for line in path.read_text(encoding="utf-8").splitlines():
                    failure = json.loads(line)
                    failures[(failure["subject"], failure["session"])] = failure
        kept = [failures[key] for key in sorted(failures) if key not in done]
        temporary = self.output_dir / f".{FAILURES_FILE}.tmp"
        temporary.write_text("".join(json.dumps(failure) + "\n" for failure in kept), encoding="utf-8")
        os.replace(temporary, self.output_dir / FAILURES_FILE)
        for path in sources[1:]:
            path.unlink()

    def _row_files(self) -> list[Path]:
        final = self.output_dir / EMBEDDINGS_FILE
        return ([final] if final.is_file() else []) + sorted(self.shards_dir.glob("rank*.parquet"))


def load_embeddings(output_dir: str | os.PathLike) -> datasets.Dataset:
    """The consolidated embedding table of a run folder as a `datasets.Dataset`."""
    path = Path(output_dir) / EMBEDDINGS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: run `brainharmonix embed` with --output {output_dir} first.")
    return datasets.Dataset(datasets.table.InMemoryTable(pq.read_table(path)))


def load_failures(output_dir: str | os.PathLike) -> list[dict]:
    """The failures of a run folder: dicts with subject, session, error_type and message."""
    path = Path(output_dir) / FAILURES_FILE
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.is_file() else []


def _write_atomically(table: pa.Table, path: Path) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, temporary)
    os.replace(temporary, path)
