# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Tables of embeddings for evaluation: a `brainharmonix embed` output folder (read by
`cohort.embedding_store.load_embeddings`, the one reader of that folder), a `datasets` folder, or a Parquet, JSON
(records), JSON Lines or CSV file."""

from pathlib import Path

import datasets
import numpy as np
import pandas as pd

from ..cohort.embedding_store import EMBEDDINGS_FILE, load_embeddings


def read_embedding_table(path: str | Path) -> pd.DataFrame:
    """An embeddings table with `subject` (and optionally `session`), label and group columns, and the embedding as a
    list column `embedding` or as numeric columns `embedding_0`, `embedding_1`, ...; one row per subject-session.
    The `embedding` column of the result holds float64 arrays."""
    source = Path(path)
    if not source.exists():
        raise FileNotFoundError(
            f"No embeddings table or model folder at {path}: give a `brainharmonix embed` output folder, a table with "
            "`subject`, `embedding` and label columns, or a model folder."
        )
    if source.is_dir() and (source / EMBEDDINGS_FILE).is_file():
        table = load_embeddings(source).to_pandas()
    elif source.is_dir():
        table = datasets.load_from_disk(str(source)).to_pandas()
    elif source.suffix == ".parquet":
        table = pd.read_parquet(source)
    elif source.suffix in (".json", ".jsonl"):
        table = pd.read_json(
            source, lines=source.suffix == ".jsonl", orient="records", dtype={"subject": str, "session": str}
        )
    elif source.suffix == ".csv":
        table = pd.read_csv(source, dtype={"subject": str, "session": str})
    else:
        raise ValueError(f"{path}: embeddings are read from a datasets folder, .parquet, .json, .jsonl or .csv.")
    columns = [name for name in table.columns if name.startswith("embedding_")]
    if "embedding" in table.columns:
        table["embedding"] = [np.asarray(value, dtype=np.float64) for value in table["embedding"]]
    elif columns:
        table["embedding"] = list(table[columns].to_numpy(dtype=np.float64))
    else:
        raise ValueError(f"{path} has no `embedding` column (a list per row) nor `embedding_0`, ... columns.")
    if "subject" not in table.columns:
        raise ValueError(f"{path} has no `subject` column: rows are matched and split by subject.")
    table["subject"] = table["subject"].astype(str)
    if "session" in table.columns:
        table["session"] = table["session"].fillna("").astype(str)
    return table


__all__ = ["read_embedding_table"]
