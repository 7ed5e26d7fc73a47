# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""The `brainharmonix` command line: one subcommand per task (`brainharmonix demo`, ...)."""

import argparse
from collections.abc import Sequence

from .cli_finetune import add_cache_latents_command, add_evaluate_command
from .cohort.cli_embed import add_embed_command
from .convert.command import add_convert_parser
from .demo import describe, embed_sample_subject
from .modeling.configuration_brainharmonix import BrainHarmonixConfig
from .visualization.cli_plot import add_plot_command
from .training.pretrain import add_pretrain_command


def run_demo(args: argparse.Namespace) -> None:
    config = BrainHarmonixConfig() if args.config is None else BrainHarmonixConfig.from_pretrained(args.config)
    print(
        "BrainHarmonix on bundled sample data (nilearn's MNI152 T1 template; a LEMON resting-state run in "
        f"Schaefer-400), random weights (seed {args.seed})"
    )
    for line in describe(embed_sample_subject(config, seed=args.seed)):
        print(line)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="brainharmonix", description="BrainHarmonix models for T1 MRI and fMRI.")
    subcommands = parser.add_subparsers(dest="command", required=True)
    demo = subcommands.add_parser(
        "demo", help="Embed a bundled subject (T1 + fMRI) with a randomly initialised BrainHarmonix model (offline)."
    )
    demo.add_argument("--seed", type=int, default=0, help="Seed of the random weights (default 0).")
    demo.add_argument(
        "--config", default=None, help="BrainHarmonix config.json or model folder (default: the published sizes)."
    )
    demo.set_defaults(run=run_demo)
    add_convert_parser(subcommands)
    add_cache_latents_command(subcommands)
    add_evaluate_command(subcommands)
    add_embed_command(subcommands)
    add_plot_command(subcommands)
    add_pretrain_command(subcommands)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main()
