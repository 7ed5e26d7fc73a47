# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""`brainharmonix cache-latents` (the encoders' latents of a cohort, cached once for fine-tuning and evaluation) and
`brainharmonix finetune`. Heavy modules are imported inside the run functions."""

import argparse
import dataclasses

from .dtype_names import dtype_argument
from .training.finetune_recipe import DEFAULT_RECIPE, FineTuneRecipe


def run_cache_latents(args: argparse.Namespace) -> None:
    import torch

    from .modeling.modeling_brainharmonix import BrainHarmonixModel
    from .processing.processing_brainharmonix import BrainHarmonixProcessor
    from .training.latent_cache import cache_latents

    label_image = fmri_label_image(args)
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
        device=args.device or ("cuda" if torch.cuda.is_available() else "cpu"),
        model_name=args.model,
        progress=print,
        fmri_label_image=label_image,
    )
    print(f"{len(cache)} subjects' latents ({args.dtype}) saved to {args.output}")


def fmri_label_image(args: argparse.Namespace):
    """The `--fmri-label-image` NIfTI loaded once (checked by `load_image`), or `None` when not given."""
    if args.fmri_label_image is None:
        return None
    from .processing.nifti_io import load_image

    return load_image(args.fmri_label_image)


def add_fmri_label_image_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--fmri-label-image",
        default=None,
        help="Label NIfTI on the BOLD grid: parcellates the manifest's 4D NIfTI fMRI runs (labels 1..R in the order "
        "of each row's atlas).",
    )


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
    add_fmri_label_image_option(command)
    command.set_defaults(run=run_cache_latents)


# FineTuneRecipe fields set from the command line (`--learning-rate`, ..., `--epochs` for num_epochs), with their help.
RECIPE_OPTIONS = {
    "learning_rate": "Peak learning rate",
    "layer_decay": "Layer-wise lr decay of the Harmonizer",
    "weight_decay": "AdamW weight decay",
    "drop_path_rate": "Stochastic depth of the Harmonizer",
    "label_smoothing": "Label smoothing of classification; none for regression",
    "num_epochs": "Epochs",
    "warmup_epochs": "Linear warmup before the cosine decay, in epochs",
    "batch_size": "Batch size per device",
}


def run_finetune(args: argparse.Namespace) -> None:
    from .training.finetune_cohort import finetune_cohort

    recipe = FineTuneRecipe(**{field: getattr(args, field) for field in RECIPE_OPTIONS})
    report = finetune_cohort(
        args.model,
        args.output,
        latent_cache=args.latent_cache,
        manifest=args.manifest,
        embeddings=args.embeddings,
        fmri_label_image=fmri_label_image(args),
        head=args.head,
        regression=args.task == "regression",
        lora=args.lora,
        lora_rank=args.lora_rank,
        lora_alpha=args.lora_alpha,
        recipe=recipe,
        seed=args.seed,
        dataloader_num_workers=args.num_workers,
        use_cpu=args.device == "cpu",
        disable_tqdm=True,
    )
    sizes = ", ".join(
        f"{part} {size['subjects']} subjects ({size['rows']} rows)" for part, size in report["sizes"].items()
    )
    print(f"split ({report['split']}): {sizes}")
    for part in ("validation", "test"):
        if part in report:
            values = ", ".join(f"{name.removeprefix(part + '_')} {value:.4f}" for name, value in report[part].items())
            print(f"{part}: {values}")
    print(f"model saved to {args.output}/model, report to {args.output}/metrics.json")


def add_finetune_command(subcommands) -> None:
    defaults = DEFAULT_RECIPE
    command = subcommands.add_parser(
        "finetune",
        help="Fine-tune with transformers' Trainer and the reference recipe on a latent cache, a manifest or "
        "embeddings: splits by subject, the best checkpoint by validation F1 (or MSE), the test set scored once, the "
        "model and a metrics report saved.",
    )
    command.add_argument(
        "--model",
        required=True,
        help="Harmonizer or BrainHarmonixModel folder to start from (a manifest needs the BrainHarmonixModel folder "
        "with its processor).",
    )
    command.add_argument("--output", required=True, help="New folder for checkpoints/, model/ and metrics.json.")
    source = command.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--latent-cache",
        default=None,
        help="Cached encoder latents (`brainharmonix cache-latents`): trains the Harmonizer.",
    )
    source.add_argument(
        "--manifest",
        default=None,
        help="Cohort manifest of T1 / fMRI files: trains the end-to-end classifier (encoders frozen, files read per "
        "batch).",
    )
    source.add_argument(
        "--embeddings",
        default=None,
        help="A `brainharmonix embed` output folder or an embeddings table with `label`: trains a linear probe on the "
        "pooled hub tokens.",
    )
    add_fmri_label_image_option(command)
    command.add_argument(
        "--head",
        choices=("classifier", "linear-probe"),
        default="classifier",
        help="classifier (default): LayerNorm + Linear, the Harmonizer trained with layer-wise lr decay; linear-probe: "
        "BatchNorm + Linear on the frozen Harmonizer.",
    )
    command.add_argument(
        "--task",
        choices=("classification", "regression"),
        default="classification",
        help="classification of the `label` column (default) or regression of it (MSE, one output).",
    )
    command.add_argument(
        "--lora", action="store_true", help="Train LoRA adapters on the Harmonizer instead of all its weights (peft)."
    )
    command.add_argument("--lora-rank", type=int, default=8, help="LoRA rank (default 8).")
    command.add_argument("--lora-alpha", type=int, default=16, help="LoRA alpha (default 16).")
    types = {field.name: field.type for field in dataclasses.fields(FineTuneRecipe)}
    for field, help_text in RECIPE_OPTIONS.items():
        default = getattr(defaults, field)
        command.add_argument(
            "--" + field.replace("num_", "").replace("_", "-"),
            dest=field,
            type=types[field],
            default=default,
            help=f"{help_text} (default {default:g}).",
        )
    command.add_argument(
        "--seed", type=int, default=0, help="Seed of the split by subject and of training (default 0)."
    )
    command.add_argument(
        "--num-workers", type=int, default=0, help="DataLoader workers preparing manifest batches (default 0)."
    )
    command.add_argument(
        "--device",
        choices=("auto", "cpu"),
        default="auto",
        help="auto (default): the accelerator Trainer finds, else CPU; cpu: CPU even when a GPU is present.",
    )
    command.set_defaults(run=run_finetune)
