# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""`brainharmonix evaluate`: linear probes under the subject-level protocol, or identification, into a JSON report.

Heavy modules are imported inside `run_evaluate`, so `brainharmonix --help` stays fast.
"""

import argparse
import json
from pathlib import Path

from .fmri_readout_names import FMRI_READOUTS

TASKS = ("classification", "regression", "identification")


def run_evaluate(args: argparse.Namespace) -> None:
    sources = dict(_named(entry) for entry in args.source)
    if args.task == "identification":
        report = _identification(args, sources)
    else:
        report = _probe(args, sources)
    report["settings"] = {name: value for name, value in vars(args).items() if name not in ("run", "command")} | (
        report.get("settings") or {}
    )
    Path(args.output).write_text(json.dumps(report, indent=2, default=str))
    for line in describe(report):
        print(line)
    print(f"report written to {args.output}")


def describe(report: dict) -> list[str]:
    """The lines `brainharmonix evaluate` prints: every metric with its interval (probes) or its chance level and the
    FC baseline (identification)."""
    lines = []
    if "sources" in report:
        chance = report["chance"]
        results = dict(report["sources"]) | ({"FC baseline": report["fc_baseline"]} if "fc_baseline" in report else {})
        for name, result in results.items():
            lines.append(
                f"{name:>16} top-1 {result['identification_accuracy']:.4f} (chance "
                f"{chance['identification_accuracy']:.4f}), mean rank {result['mean_rank']:.2f} (chance "
                f"{chance['mean_rank']:.2f}), {result['num_queries']} queries of {result['num_subjects']} subjects"
            )
        return lines
    lines.append(f"{report['num_subjects']} subjects, {report['num_sessions']} sessions ({report['num_rows']} rows)")
    chance = report.get("chance", {})
    for name, result in report["models"].items():
        for metric, summary in result["summary"].items():
            floor = f", chance {chance[metric]:.4f}" if metric in chance else ""
            lines.append(
                f"{name:>16} {metric:>17}: {summary['mean']:.4f} ± {summary['sd']:.4f} "
                f"(95% CI {summary['ci_low']:.4f} to {summary['ci_high']:.4f}{floor})"
            )
    comparison = report.get("comparison", {})
    for metric, result in comparison.items():
        if isinstance(result, dict):
            lines.append(
                f"{comparison['first']} - {comparison['second']} {metric}: {result['mean_difference']:+.4f}, "
                f"t = {result['t']:.3f}, p = {result['p_value']:.4f}"
            )
    return lines


def _probe(args: argparse.Namespace, sources: dict[str, str]) -> dict:
    import numpy as np

    from ..training.finetune import label_mapping
    from .protocol import EmbeddingProbe, run_protocol
    from .splits import repeated_splits

    tables = {name: _source_table(path, args.latent_cache) for name, path in sources.items()}
    first = next(iter(tables.values()))
    keys = ["subject", "session"] if "session" in first.columns else ["subject"]
    for column in (args.label_column, *([args.group_column] if args.group_column else [])):
        if column not in first.columns:
            raise ValueError(f"The first source has no {column!r} column (columns: {', '.join(first.columns)}).")
    first = first[first[args.label_column].notna()].reset_index(drop=True)
    aligned = {name: _aligned_embeddings(first, table, keys, name) for name, table in tables.items()}
    regression = args.task == "regression"
    raw_labels = first[args.label_column].tolist()
    mapping = None
    if regression:
        labels = np.asarray(raw_labels, dtype=np.float64)
    else:
        mapping = label_mapping(raw_labels)
        labels = np.array([mapping[label] for label in raw_labels])
    subjects = first["subject"].to_numpy()
    splits = repeated_splits(
        labels,
        subjects,
        groups=first[args.group_column].to_numpy() if args.group_column else None,
        num_repeats=args.repeats,
        num_folds=args.folds,
        num_validation_folds=args.validation_folds,
        seed=args.seed,
        regression=regression,
    )
    predictors = {name: EmbeddingProbe(embeddings, labels, regression) for name, embeddings in aligned.items()}
    return run_protocol(
        splits,
        labels,
        predictors,
        subjects=subjects,
        sessions=first["session"].to_numpy() if "session" in first.columns else None,
        regression=regression,
        settings={"classes": None if regression else [str(label) for label in mapping]},
    )


def _identification(args: argparse.Namespace, sources: dict[str, str]) -> dict:
    from .identification import identification_report

    if args.windows is not None:
        return _window_identification(args, sources)
    tables = {name: _source_table(path, args.latent_cache) for name, path in sources.items()}
    first = next(iter(tables.values()))
    if "session" not in first.columns:
        raise ValueError(
            "Identification across sessions needs a `session` column in the first source; to identify disjoint "
            "windows of one scan instead, give model folders with --manifest and --windows."
        )
    keys = ["subject", "session"]
    embeddings = {name: _aligned_embeddings(first, table, keys, name) for name, table in tables.items()}
    series = None
    if args.manifest is not None:
        series = _manifest_series(args.manifest, first[keys])
    report = identification_report(embeddings, first["subject"].to_numpy(), first["session"].to_numpy(), series)
    report["settings"] = {"fc_baseline": "from --manifest" if series is not None else "none (no --manifest given)"}
    return report


def _window_identification(args: argparse.Namespace, sources: dict[str, str]) -> dict:
    from transformers import AutoModel, AutoProcessor

    from ..modeling.modeling_function_jepa import FunctionJEPAModel
    from .fmri_readout_names import DEFAULT_FMRI_READOUT
    from .fmri_readouts import readout_of
    from .fmri_windows import embed_series, manifest_windows, pooled_output
    from .identification import identification_report

    if args.manifest is None:
        raise ValueError("--windows cuts the fMRI runs of a --manifest: give the manifest.")
    models = {}
    for name, path in sources.items():
        if not (Path(path) / "config.json").is_file():
            raise ValueError(f"--windows embeds each window with a model: {path} (source {name!r}) is no model folder.")
        model, processor = AutoModel.from_pretrained(path), AutoProcessor.from_pretrained(path)
        if not isinstance(model, FunctionJEPAModel) and args.readout is not None:
            raise ValueError(
                f"--readout reads the tokens of a FunctionJEPA encoder; source {name!r} ({type(model).__name__}) is "
                "embedded by its pooled hub tokens. Leave out --readout, or give FunctionJEPA encoder folders."
            )
        models[name] = (model, processor)
    first_processor = next(iter(models.values()))[1]
    windows = manifest_windows(
        args.manifest, getattr(first_processor, "fmri_feature_extractor", first_processor), args.windows
    )
    readout = args.readout or DEFAULT_FMRI_READOUT
    embeddings, representations = {}, {}
    for name, (model, processor) in models.items():
        if isinstance(model, FunctionJEPAModel):
            represent = readout_of(readout)
            representations[name] = f"FunctionJEPA tokens, readout {readout} (evaluation.fmri_readouts)"
        else:
            represent = pooled_output
            representations[name] = "pooled hub tokens"
        embeddings[name] = embed_series(
            model, processor, windows["series"], windows["repetition_times"], device=args.device, represent=represent
        )
    report = identification_report(embeddings, windows["subjects"], windows["sessions"], windows["series"])
    report["settings"] = {
        "windows": f"each fMRI run cut into {args.windows} disjoint windows of "
        f"{windows['series'][0].shape[1]} frames (the first run's), embedded from fMRI alone",
        "representations": representations,
    }
    return report


def _manifest_series(manifest: str, keys) -> list:
    """The ROI-first series of each (subject, session) in `keys`, read from the manifest's fMRI files."""
    from ..processing.feature_extraction_fmri import FMRIFeatureExtractor
    from ..training.data import load_fmri_series
    from ..training.manifest import load_manifest

    rows = {(row["subject"], row["session"] or ""): row for row in load_manifest(manifest)}
    extractor = FMRIFeatureExtractor()
    series = []
    for subject, session in keys.itertuples(index=False):
        row = rows.get((subject, session))
        if row is None or row["fmri"] is None:
            raise ValueError(f"The manifest has no fMRI for subject {subject} session {session!r}.")
        series.append(load_fmri_series(row["fmri"], extractor, row["atlas"])[0])
    return series


def _aligned_embeddings(first, table, keys: list[str], name: str):
    """`(rows of first, dim)` embeddings of `table` in the row order of `first`, matched on `keys`."""
    import numpy as np

    missing_keys = [key for key in keys if key not in table.columns]
    if missing_keys:
        raise ValueError(f"Source {name!r} has no {missing_keys} column to match rows of the first source.")
    merged = first[keys].merge(table[[*keys, "embedding"]], on=keys, how="left", validate="one_to_one")
    if merged["embedding"].isna().any():
        missing = merged.loc[merged["embedding"].isna(), keys].to_numpy().tolist()[:10]
        raise ValueError(f"Source {name!r} lacks rows of the first source: {missing}.")
    return np.stack(merged["embedding"].to_list())


def _source_table(path: str, latent_cache: str | None):
    """Embeddings of one `--source`: a table, or a Harmonizer checkpoint run over `--latent-cache`."""
    from .embedding_tables import read_embedding_table

    if not (Path(path) / "config.json").exists():
        return read_embedding_table(path)
    if latent_cache is None:
        raise ValueError(f"{path} is a model folder: pass --latent-cache with the cached latents it should embed.")
    from transformers import AutoModel

    from ..training.latent_cache import embed_latent_cache, load_latent_cache

    cache = load_latent_cache(latent_cache)
    table = cache.select_columns(["subject", "session", "label", "site", "split"]).to_pandas()
    table["session"] = table["session"].fillna("").astype(str)
    table["embedding"] = list(embed_latent_cache(cache, AutoModel.from_pretrained(path)))
    return table


def _named(entry: str) -> tuple[str, str]:
    name, separator, path = entry.partition("=")
    if not separator or not name or not path:
        raise ValueError(f"--source takes NAME=PATH, got {entry!r}.")
    return name, path


def add_evaluate_command(subcommands) -> None:
    command = subcommands.add_parser(
        "evaluate",
        help="Score embeddings: a linear probe under repeated stratified splits by subject (whole-set metrics, mean ± "
        "sd, intervals inside each metric's range, chance levels, a paired test between two sources), or "
        "identification of subjects across sessions or windows with its chance level and a functional-connectivity "
        "baseline; a JSON report.",
    )
    command.add_argument(
        "--source",
        action="append",
        required=True,
        help="NAME=PATH, once or more (the paired test compares the first two): an embeddings table (a `brainharmonix "
        "embed` output folder, Parquet, JSON, JSONL or CSV with subject, session, label and embedding columns), a "
        "Harmonizer model folder run over --latent-cache, or, with --windows, a BrainHarmonixModel or FunctionJEPA "
        "encoder folder (e.g. a pretraining run's model/encoder).",
    )
    command.add_argument("--latent-cache", default=None, help="Cached latents that Harmonizer model sources embed.")
    command.add_argument("--output", required=True, help="Path of the JSON report.")
    command.add_argument(
        "--task",
        choices=TASKS,
        default="classification",
        help="classification (default) or regression: a linear probe of --label-column; identification: find each "
        "subject's other session (or window) among everyone's by correlation of embeddings.",
    )
    command.add_argument(
        "--label-column",
        default="label",
        help="Column of the first source holding the class or target (default label); rows without one are left out.",
    )
    command.add_argument(
        "--group-column",
        default=None,
        help="Also keep whole groups of this column (e.g. site) in one part of a split; it must be coarser than "
        "subjects. Splits are always by subject.",
    )
    command.add_argument("--repeats", type=int, default=5, help="Repeats of the k-fold split (default 5).")
    command.add_argument("--folds", type=int, default=5, help="Folds per repeat (default 5).")
    command.add_argument(
        "--validation-folds",
        type=int,
        default=4,
        help="The non-test part is cut into this many folds, one for validation (default 4: a quarter).",
    )
    command.add_argument("--seed", type=int, default=0, help="Repeat r splits with seed + r (default 0).")
    command.add_argument(
        "--manifest",
        default=None,
        help="Identification: the cohort manifest whose fMRI files the functional-connectivity baseline reads (rows "
        "matched on subject and session), and the runs that --windows cuts.",
    )
    command.add_argument(
        "--windows",
        type=int,
        default=None,
        help="Identification across disjoint windows of one scan: cut every fMRI run of --manifest into this many "
        "windows and embed each with the model sources (fMRI only).",
    )
    command.add_argument(
        "--readout",
        choices=FMRI_READOUTS,
        default=None,
        help="With --windows and FunctionJEPA encoder folders as sources: the representation of each window read from "
        "the encoder's tokens (evaluation.fmri_readouts): roi_similarity (default: whitened tokens averaged per ROI, "
        "then the ROI x ROI similarity), token_connectivity (whitened tokens' ROI x ROI correlation per time patch), "
        "or mean (the pooled output). BrainHarmonix sources are embedded by their pooled hub tokens.",
    )
    command.add_argument("--device", default="cpu", help="Device of model sources run by --windows (default cpu).")
    command.set_defaults(run=run_evaluate)
