# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""`brainharmonix cache-latents`: the encoders' latents of a cohort, cached once for fine-tuning and evaluation."""

import argparse

import torch

from .modeling.modeling_brainharmonix import BrainHarmonixModel
from .processing.processing_brainharmonix import BrainHarmonixProcessor


def run_cache_latents(args: argparse.Namespace) -> None:
    from .training.latent_cache import cache_latents

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
        device=args.device,
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
    command.add_argument("--dtype", choices=("bf16", "fp16"), default="bf16", help="Stored latent dtype (bf16).")
    command.add_argument("--batch-size", type=int, default=4, help="Subjects per encoder pass (default 4).")
    command.add_argument(
        "--shard-size", type=int, default=64, help="Subjects per resumable shard (default 64); a rerun resumes."
    )
    command.add_argument(
        "--device", default="cuda" if torch.cuda.is_available() else "cpu", help="Device of the encoders."
    )
    command.set_defaults(run=run_cache_latents)
