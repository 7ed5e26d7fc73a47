# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""`brainharmonix convert`: the reference release's `.pth` files -> Hugging Face folders."""

import argparse


def add_convert_parser(subcommands) -> None:
    """Register the `convert` subcommand."""
    parser = subcommands.add_parser(
        "convert",
        help="Convert the reference BrainHarmonix checkpoints (.pth) into Hugging Face folders.",
        description=(
            "Writes one folder per stage (structure/, function/, harmonizer/), the composite brainharmonix/ and, with "
            "--classifier, classifier/; each holds config.json, model.safetensors, its processor and conversion.json. "
            "Converted reference weights are licensed CC BY-NC-SA 4.0."
        ),
    )
    parser.add_argument("--structure", help="harmonix-s/model.pth (BrainHarmonix-S, T1 encoder).")
    parser.add_argument("--function", help="harmonix-f/model.pth (BrainHarmonix-F, fMRI encoder).")
    parser.add_argument("--harmonizer", help="harmonizer/model.pth (stage-1 Harmonizer).")
    parser.add_argument("--classifier", help="A stage-2 fine-tuned checkpoint (needs --structure and --function).")
    parser.add_argument(
        "--geometric-harmonics", help="The reference geometric-harmonics CSV (400 × 200); needed with --function."
    )
    parser.add_argument(
        "--gradients", help="The reference functional-gradients CSV (400 × 30); needed with --function."
    )
    parser.add_argument("--output", required=True, help="A new (or empty) folder for the converted models.")
    parser.add_argument(
        "--config", default=None, help="BrainHarmonix config.json or model folder (default: the published sizes)."
    )
    parser.add_argument(
        "--trust-pickle",
        action="store_true",
        help="Load files that need more than tensors, argparse.Namespace and numpy scalars. Unpickling can run code: "
        "only for files from a source you trust.",
    )
    parser.set_defaults(run=run_convert)


def run_convert(args: argparse.Namespace) -> None:
    from ..modeling.configuration_brainharmonix import BrainHarmonixConfig
    from .composite import convert_reference_release

    config = None if args.config is None else BrainHarmonixConfig.from_pretrained(args.config)
    # Files that do not fit raise ConversionError (a ValueError): the console shows its message (`cli.console_main`).
    folders = convert_reference_release(
        args.output,
        structure=args.structure,
        function=args.function,
        harmonizer=args.harmonizer,
        classifier=args.classifier,
        geometric_harmonics=args.geometric_harmonics,
        gradients=args.gradients,
        config=config,
        trust_pickle=args.trust_pickle,
    )
    for name, folder in folders.items():
        print(f"{name}: {folder}")
    print("Each folder's conversion.json lists the source files (SHA-256) and what happened to every key.")
