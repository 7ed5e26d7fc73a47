# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""`brainharmonix embed`: a BIDS derivatives tree or a manifest -> one embedding row per subject-session-run.

Every input error (paths, folders, permissions, options the output folder was not made with, a second run on the
same folder) is one line, exit status 2, before the model loads. Declaring the options imports nothing heavy; the
command imports what it needs when it runs.
"""

import argparse
import os
from pathlib import Path

from .run_selection import RUN_CHOICES, RunSelection

DTYPE_NAMES = ("float32", "bfloat16")


def add_embed_command(subcommands) -> None:
    """Register `embed` on the `brainharmonix` subcommand parser."""
    embed = subcommands.add_parser(
        "embed",
        help="Embed every subject-session-run of a BIDS derivatives tree or a manifest into a Parquet table.",
        description="One row per subject-session-run: pooled embedding (optionally hub tokens), modalities present, "
        "input sha256 checksums, model name/revision. Resumable (rows whose inputs changed are re-embedded); the "
        "output folder belongs to one model and set of options, and one run at a time; failures go to "
        "failures.jsonl. For several processes or GPUs run it under `accelerate launch` (or `torchrun`): rows are "
        "split between the processes.",
    )
    embed.add_argument("--model", required=True, help="BrainHarmonixModel folder (or Hub id, if cached).")
    source = embed.add_mutually_exclusive_group(required=True)
    source.add_argument("--bids", type=Path, help="BIDS derivatives folder (fMRIPrep / XCP-D outputs).")
    source.add_argument("--manifest", type=Path, help="Cohort manifest (CSV, TSV, JSON, JSONL or Parquet).")
    embed.add_argument("--output", type=Path, required=True, help="Output folder (rows already there are skipped).")
    embed.add_argument("--atlas", help="Atlas entity of the parcellated tables (atlas-<NAME>_timeseries.tsv).")
    embed.add_argument(
        "--fmri-atlas",
        help="Atlas and ROI order of fMRI inputs that declare none (e.g. schaefer400_17networks); a manifest's atlas "
        "column or a BIDS atlas- entity naming a known atlas wins.",
    )
    embed.add_argument("--participant-label", nargs="+", help="Only these subjects (with or without sub-).")
    embed.add_argument("--session", nargs="+", help="Only these sessions (with or without ses-).")
    embed.add_argument(
        "--runs",
        choices=RUN_CHOICES,
        default="all",
        help="fMRI runs per session: all (default, one row each) or first.",
    )
    embed.add_argument("--task", help="Only fMRI runs of this task.")
    embed.add_argument("--run", dest="run_index", help="Only fMRI runs with this run index.")
    embed.add_argument(
        "--atlas-image", type=Path, help="Label NIfTI on the BOLD grid: use preprocessed BOLD runs with no table."
    )
    embed.add_argument("--hub-tokens", action="store_true", help="Also store [CLS, hub tokens] of each row.")
    embed.add_argument("--batch-size", type=_positive, default=1, help="Rows per forward pass (default 1).")
    embed.add_argument("--num-workers", type=_not_negative, default=0, help="Input-reading processes (default 0).")
    embed.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: this process's accelerate device).")
    embed.add_argument("--dtype", choices=DTYPE_NAMES, default="float32", help="Model weights' dtype.")
    embed.add_argument("--revision", help="Model revision to load (Hub branch, tag or commit).")
    embed.add_argument(
        "--overwrite", action="store_true", help="Replace the output folder's rows (another model or options)."
    )
    embed.add_argument("--no-progress", action="store_true", help="No progress bar.")
    embed.set_defaults(run=run_embed)


def run_embed(args: argparse.Namespace) -> None:
    import torch
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    from ..modeling.configuration_brainharmonix import BrainHarmonixConfig
    from ..modeling.modeling_brainharmonix import BrainHarmonixModel
    from ..processing.processing_brainharmonix import BrainHarmonixProcessor
    from .bids_discovery import T1_RULE, find_bids_sessions
    from .embed import check_fmri_atlas, embed_cohort, hub_commit_hash
    from .embedding_store import EMBEDDINGS_FILE, FAILURES_FILE, EmbeddingStore
    from .folder_lock import output_folder_lock
    from .folder_settings import OPTION_SETTINGS, check_settings, option_settings
    from .run_selection import select_runs
    from .session_inputs import select_sessions, sessions_from_manifest

    dtype = getattr(torch, args.dtype)
    check_paths(args)
    selection = RunSelection(runs=args.runs, task=args.task, run=args.run_index)
    if args.bids is not None:
        rows = find_bids_sessions(
            args.bids,
            atlas=args.atlas,
            participant_label=args.participant_label,
            session=args.session,
            task=args.task,
            run=args.run_index,
            use_bold=args.atlas_image is not None,
            runs=args.runs,
        )
        notes = {"source": f"BIDS derivatives {args.bids}", "runs": selection.describe(), "t1": T1_RULE}
    else:
        rows = select_runs(
            select_sessions(sessions_from_manifest(args.manifest), args.participant_label, args.session), selection
        )
        notes = {"source": f"manifest {args.manifest}", "runs": selection.describe(), "t1": "as the manifest lists"}
    if not rows:
        raise ValueError(f"No session with a T1 or fMRI input matches in {args.bids or args.manifest}.")
    options = option_settings(
        dtype=dtype,
        hub_tokens=args.hub_tokens,
        fmri_atlas=args.fmri_atlas,
        fmri_atlas_image=args.atlas_image,
    )
    if not args.overwrite:
        check_settings(args.output, EmbeddingStore(args.output).read_settings(), options, keys=OPTION_SETTINGS)
    state = PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"))
    if state.is_main_process:
        sessions = len({row.session_key for row in rows})
        print(f"Inputs: {len(rows)} session-runs of {sessions} sessions from {notes['source']}.")
        print(f"Runs: {notes['runs']}.")
        print(f"T1: {notes['t1']}.")
        args.output.mkdir(parents=True, exist_ok=True)
    state.wait_for_everyone()
    with output_folder_lock(args.output, state):
        config = _load(BrainHarmonixConfig.from_pretrained, args.model, revision=args.revision)
        processor = BrainHarmonixProcessor.for_model(args.model, config, revision=args.revision)
        check_fmri_atlas(args.fmri_atlas, processor)
        model = _load(BrainHarmonixModel.from_pretrained, args.model, dtype=dtype, revision=args.revision)
        run = embed_cohort(
            model,
            rows,
            args.output,
            processor=processor,
            hub_tokens=args.hub_tokens,
            batch_size=args.batch_size,
            num_workers=args.num_workers,
            device=args.device,
            fmri_atlas_image=None if args.atlas_image is None else str(args.atlas_image),
            fmri_atlas=args.fmri_atlas,
            model_revision=args.revision,
            model_commit=hub_commit_hash(args.model, args.revision),
            progress=not args.no_progress,
            overwrite=args.overwrite,
            selection_notes=notes,
        )
    if state.is_main_process:
        for key, reason in run.changed.items():
            print(f"Re-embedded {' '.join(part for part in key if part)}: {reason}.")
    print(
        f"{run.embedded} embedded, {run.skipped} already done, {run.failed} failed; table: "
        f"{args.output / EMBEDDINGS_FILE}, failures: {args.output / FAILURES_FILE}"
    )


def check_paths(args: argparse.Namespace) -> None:
    """Refuse, in one line each and before anything is loaded, an output folder that cannot be written, a model
    folder that does not exist or holds no saved model, a missing atlas image and an unknown device."""
    output = args.output
    if output.exists() and not output.is_dir():
        raise NotADirectoryError(f"--output {output} is a file; give a folder (it is created if missing).")
    existing = next(folder for folder in (output, *output.absolute().parents) if folder.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(
            f"Cannot write to {existing} (read-only or not yours), so --output {output} cannot be written. Choose an "
            "--output folder you can write to."
        )
    model = Path(args.model)
    if model.is_dir():
        if not (model / "config.json").is_file():
            raise FileNotFoundError(
                f"--model {model} holds no config.json: it is not a saved model folder (`save_pretrained` writes "
                "config.json and model.safetensors)."
            )
    elif model.exists() or _looks_like_a_path(args.model):
        raise FileNotFoundError(f"--model {model}: no model folder there. Give a saved model folder or a Hub id.")
    if args.atlas_image is not None and not args.atlas_image.is_file():
        raise FileNotFoundError(f"--atlas-image {args.atlas_image} does not exist; give the label NIfTI of the runs.")
    if args.device is not None:
        import torch

        try:
            device = torch.device(args.device)
        except RuntimeError as error:
            raise ValueError(
                f"--device {args.device!r} is not a device ({error}); use cpu, cuda, cuda:1, ..."
            ) from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"--device {args.device}: CUDA is not available here; use --device cpu.")


def _looks_like_a_path(name: str) -> bool:
    """A model name that can only be a local path (a Hub id is `name` or `owner/name`)."""
    return (
        name.startswith((".", "/", "~"))
        or name.count("/") > 1
        or name.endswith("/")
        or (os.sep != "/" and os.sep in name)
    )


def _load(loader, name: str, **kwargs):
    """`loader(name, ...)`, with a model that cannot be found said in one line."""
    try:
        return loader(name, **kwargs)
    except OSError as error:
        raise FileNotFoundError(
            f"--model {name} cannot be loaded: {str(error).splitlines()[0]} (a local folder must exist; a Hub id must "
            "be cached when offline)."
        ) from None


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _not_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value
