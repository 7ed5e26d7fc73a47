# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""`brainharmonix cache-latents` and `brainharmonix evaluate`: the fine-tuning and evaluation subcommands.

Declaring the options imports nothing heavy (`brainharmonix --help` stays instant); the commands import what they
need when they run.
"""

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from .dtype_names import dtype_argument

if TYPE_CHECKING:
    import pandas as pd


def run_cache_latents(args: argparse.Namespace) -> None:
    import torch

    from .modeling.modeling_brainharmonix import BrainHarmonixModel
    from .processing.processing_brainharmonix import BrainHarmonixProcessor
    from .training.latent_cache import cache_latents

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = BrainHarmonixModel.from_pretrained(args.model)
    processor = BrainHarmonixProcessor.for_model(args.model, model.config)
    cache = cache_latents(
        model,
        processor,
        args.manifest,
        args.output,
        dtype=args.dtype,
        batch_size=args.batch_size,
        shard_size=args.shard_size,
        device=device,
        model_name=args.model,
        progress=print,
    )
    print(f"{len(cache)} subjects' latents ({args.dtype}) saved to {args.output}")


def add_cache_latents_command(subcommands) -> None:
    command = subcommands.add_parser(
        "cache-latents",
        help="Run the frozen encoders once over a cohort manifest and save their latents (Arrow dataset).",
    )
    command.add_argument("--model", required=True, help="BrainHarmonixModel folder (with its processor).")
    command.add_argument("--manifest", required=True, help="Cohort manifest (CSV, TSV, JSON, JSONL or Parquet).")
    command.add_argument("--output", required=True, help="Folder of the cache (datasets.load_from_disk reads it).")
    command.add_argument(
        "--dtype",
        type=dtype_argument,
        choices=("bfloat16", "float16"),
        default="bfloat16",
        help="Stored latent dtype: bfloat16 (bf16, the default) or float16 (fp16).",
    )
    command.add_argument("--batch-size", type=int, default=4, help="Subjects per encoder pass (default 4).")
    command.add_argument(
        "--shard-size", type=int, default=64, help="Subjects per resumable shard (default 64); a rerun resumes."
    )
    command.add_argument(
        "--device", default=None, help="Device of the encoders (default: cuda when available, else cpu)."
    )
    command.set_defaults(run=run_cache_latents)


def load_embeddings(path: str) -> "pd.DataFrame":
    """An embeddings table: a `datasets` folder, Parquet, JSON (records), JSON Lines or CSV file with `subject` (and
    optionally `session`), the label and group columns, and the embedding as a list column `embedding` or as numeric
    columns `embedding_0`, `embedding_1`, ... One row per subject."""
    import datasets
    import numpy as np
    import pandas as pd

    from .cohort.embedding_store import EMBEDDINGS_FILE

    source = Path(path)
    if not source.exists():
        raise FileNotFoundError(
            f"No embeddings table or model folder at {path}: give a `brainharmonix embed` output (its "
            "embeddings.parquet), a table with `subject`, `embedding` and label columns, or a Harmonizer folder."
        )
    if source.is_dir() and (source / EMBEDDINGS_FILE).is_file():  # a `brainharmonix embed` output folder
        table = pd.read_parquet(source / EMBEDDINGS_FILE)
    elif source.is_dir():
        table = datasets.load_from_disk(str(source)).to_pandas()
    elif source.suffix == ".parquet":
        table = pd.read_parquet(source)
    elif source.suffix in (".json", ".jsonl"):
        table = pd.read_json(source, lines=source.suffix == ".jsonl", orient="records", dtype={"subject": str})
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
        raise ValueError(f"{path} has no `embedding` column (a list per subject) nor `embedding_0`, ... columns.")
    if "subject" not in table.columns:
        raise ValueError(f"{path} has no `subject` column to match subjects across sources.")
    return table


def _source_table(path: str, latent_cache: str | None) -> "pd.DataFrame":
    """Embeddings of one `--source`: a table, or a Harmonizer checkpoint run over `--latent-cache`."""
    if not (Path(path) / "config.json").exists():
        return load_embeddings(path)
    if latent_cache is None:
        raise ValueError(f"{path} is a model folder: pass --latent-cache with the cached latents it should embed.")
    from transformers import AutoModel

    from .training.latent_cache import embed_latent_cache, load_latent_cache

    cache = load_latent_cache(latent_cache)
    table = cache.select_columns(["subject", "session", "label", "site", "split"]).to_pandas()
    table["embedding"] = list(embed_latent_cache(cache, AutoModel.from_pretrained(path)))
    return table


def run_evaluate(args: argparse.Namespace) -> None:
    import numpy as np

    from .training.evaluation import EmbeddingProbe, repeated_splits, run_protocol
    from .training.finetune import label_mapping

    sources = dict(_named(entry) for entry in args.source)
    tables = {name: _source_table(path, args.latent_cache) for name, path in sources.items()}
    first = next(iter(tables.values()))
    keys = ["subject", "session"] if "session" in first.columns else ["subject"]
    for column in (args.label_column, *([args.group_column] if args.group_column else [])):
        if column not in first.columns:
            raise ValueError(f"The first source has no {column!r} column (columns: {', '.join(first.columns)}).")
    first = first[first[args.label_column].notna()].reset_index(drop=True)
    aligned = {}
    for name, table in tables.items():
        merged = first[keys].merge(table[[*keys, "embedding"]], on=keys, how="left", validate="one_to_one")
        if merged["embedding"].isna().any():
            missing = merged.loc[merged["embedding"].isna(), "subject"].tolist()[:10]
            raise ValueError(f"Source {name!r} lacks subjects of the first source: {missing}.")
        aligned[name] = np.stack(merged["embedding"].to_list())
    regression = args.task == "regression"
    raw_labels = first[args.label_column].tolist()
    if regression:
        labels = np.asarray(raw_labels, dtype=np.float64)
    else:
        mapping = label_mapping(raw_labels)
        labels = np.array([mapping[label] for label in raw_labels])
    groups = first[args.group_column].to_numpy() if args.group_column else None
    splits = repeated_splits(
        labels,
        groups=groups,
        num_repeats=args.repeats,
        num_folds=args.folds,
        num_validation_folds=args.validation_folds,
        seed=args.seed,
        regression=regression,
    )
    predictors = {name: EmbeddingProbe(embeddings, labels, regression) for name, embeddings in aligned.items()}
    settings = {name: value for name, value in vars(args).items() if name not in ("run", "command")}
    settings["classes"] = None if regression else [str(label) for label in mapping]
    report = run_protocol(splits, labels, predictors, regression=regression, settings=settings)
    Path(args.output).write_text(json.dumps(report, indent=2, default=str))
    for name, result in report["models"].items():
        for metric, summary in result["summary"].items():
            print(
                f"{name:>16} {metric:>17}: {summary['mean']:.4f} ± {summary['sd']:.4f} "
                f"(95% CI {summary['ci_low']:.4f} to {summary['ci_high']:.4f})"
            )
    if "comparison" in report:
        comparison = report["comparison"]
        for metric, result in comparison.items():
            if isinstance(result, dict):
                print(
                    f"{comparison['first']} - {comparison['second']} {metric}: {result['mean_difference']:+.4f}, "
                    f"t = {result['t']:.3f}, p = {result['p_value']:.4f}"
                )
    print(f"report written to {args.output}")


def _named(entry: str) -> tuple[str, str]:
    name, separator, path = entry.partition("=")
    if not separator or not name or not path:
        raise ValueError(f"--source takes NAME=PATH, got {entry!r}.")
    return name, path


def add_evaluate_command(subcommands) -> None:
    command = subcommands.add_parser(
        "evaluate",
        help="Repeated stratified (optionally site-grouped) splits of embeddings with a linear probe: whole-set "
        "metrics, mean ± sd, corrected confidence intervals and a paired test between two sources; a JSON report.",
    )
    command.add_argument(
        "--source",
        action="append",
        required=True,
        help="NAME=PATH, once or twice: an embeddings table, or a Harmonizer model folder run over --latent-cache.",
    )
    command.add_argument("--latent-cache", default=None, help="Cached latents for model sources.")
    command.add_argument("--output", required=True, help="Path of the JSON report.")
    command.add_argument(
        "--task",
        choices=("classification", "regression"),
        default="classification",
        help="classification (a logistic-regression probe; labels are classes) or regression (a ridge probe; labels "
        "are numbers). Default classification.",
    )
    command.add_argument(
        "--label-column",
        default="label",
        help="Column of the first source's table that holds each subject's label (default label); rows without one "
        "are left out.",
    )
    command.add_argument("--group-column", default=None, help="Group splits by this column (e.g. site).")
    command.add_argument("--repeats", type=int, default=5, help="Repeats of the k-fold split (default 5).")
    command.add_argument("--folds", type=int, default=5, help="Folds per repeat (default 5).")
    command.add_argument(
        "--validation-folds",
        type=int,
        default=4,
        help="The non-test part is cut into this many folds, one for validation (default 4: a quarter).",
    )
    command.add_argument("--seed", type=int, default=0, help="Repeat r splits with seed + r (default 0).")
    command.set_defaults(run=run_evaluate)
