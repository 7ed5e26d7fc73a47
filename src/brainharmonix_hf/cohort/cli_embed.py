# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""`brainharmonix embed`: a BIDS derivatives tree or a manifest -> one embedding row per subject-session."""

import argparse
from pathlib import Path

from ..dtype_names import dtype_argument


def add_embed_command(subcommands) -> None:
    """Register `embed` on the `brainharmonix` subcommand parser."""
    embed = subcommands.add_parser(
        "embed",
        help="Embed every subject-session of a BIDS derivatives tree or a manifest into a Parquet table.",
        description="One row per subject-session: pooled embedding (optionally hub tokens), modalities present, input "
        "sha256 checksums, model name/revision. Resumable; failures go to failures.jsonl. For several processes or "
        "GPUs run it under `accelerate launch` (or `torchrun`): subjects are split between the processes.",
    )
    embed.add_argument("--model", required=True, help="BrainHarmonixModel folder (or Hub id, if cached).")
    source = embed.add_mutually_exclusive_group(required=True)
    source.add_argument("--bids", type=Path, help="BIDS derivatives folder (fMRIPrep / XCP-D outputs).")
    source.add_argument("--manifest", type=Path, help="Cohort manifest (CSV, TSV, JSON, JSONL or Parquet).")
    embed.add_argument("--output", type=Path, required=True, help="Output folder (rows already there are skipped).")
    embed.add_argument("--atlas", help="Atlas entity of the parcellated tables (atlas-<NAME>_timeseries.tsv).")
    embed.add_argument("--participant-label", nargs="+", help="Only these subjects (with or without sub-).")
    embed.add_argument("--session", nargs="+", help="Only these sessions (with or without ses-).")
    embed.add_argument("--task", help="Only fMRI runs of this task.")
    embed.add_argument("--run", dest="run_number", type=int, help="Only fMRI runs with this run number.")
    embed.add_argument(
        "--atlas-image", type=Path, help="Label NIfTI on the BOLD grid: use preprocessed BOLD runs with no table."
    )
    embed.add_argument("--hub-tokens", action="store_true", help="Also store [CLS, hub tokens] of each session.")
    embed.add_argument("--batch-size", type=int, default=1, help="Sessions per forward pass (default 1).")
    embed.add_argument("--num-workers", type=int, default=0, help="Input-reading worker processes (default 0).")
    embed.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: this process's accelerate device).")
    embed.add_argument(
        "--dtype",
        type=dtype_argument,
        choices=("float32", "bfloat16"),
        default="float32",
        help="Model weights' dtype: float32 (fp32, the default) or bfloat16 (bf16).",
    )
    embed.add_argument("--revision", help="Model revision to load (Hub branch, tag or commit).")
    embed.add_argument("--no-progress", action="store_true", help="No progress bar.")
    embed.set_defaults(run=run_embed)


def run_embed(args: argparse.Namespace) -> None:
    import torch

    from ..modeling.modeling_brainharmonix import BrainHarmonixModel
    from ..processing.processing_brainharmonix import BrainHarmonixProcessor
    from .bids_discovery import find_bids_sessions
    from .embed import embed_cohort, hub_commit_hash
    from .embedding_store import EMBEDDINGS_FILE, FAILURES_FILE
    from .session_inputs import select_sessions, sessions_from_manifest

    if args.bids is not None:
        sessions = find_bids_sessions(
            args.bids,
            atlas=args.atlas,
            participant_label=args.participant_label,
            session=args.session,
            task=args.task,
            run=args.run_number,
            use_bold=args.atlas_image is not None,
        )
    else:
        sessions = select_sessions(sessions_from_manifest(args.manifest), args.participant_label, args.session)
    if not sessions:
        raise SystemExit(f"No session with a T1 or fMRI input matches in {args.bids or args.manifest}.")
    model = BrainHarmonixModel.from_pretrained(args.model, dtype=getattr(torch, args.dtype), revision=args.revision)
    processor = BrainHarmonixProcessor.for_model(args.model, model.config, revision=args.revision)
    run = embed_cohort(
        model,
        sessions,
        args.output,
        processor=processor,
        hub_tokens=args.hub_tokens,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        device=args.device,
        fmri_atlas_image=None if args.atlas_image is None else str(args.atlas_image),
        model_revision=args.revision,
        model_commit=hub_commit_hash(args.model, args.revision),
        progress=not args.no_progress,
    )
    print(
        f"{run.embedded} embedded, {run.skipped} already done, {run.failed} failed; table: "
        f"{args.output / EMBEDDINGS_FILE}, failures: {args.output / FAILURES_FILE}"
    )
