# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""The `brainharmonix` command line: one subcommand per task (`brainharmonix demo`, ...)."""

import argparse
from collections.abc import Sequence

from .demo import describe_tokens, embed_mni152_template
from .modeling.configuration_structure_mae import StructureMAEConfig


def run_demo(args: argparse.Namespace) -> None:
    config = StructureMAEConfig() if args.config is None else StructureMAEConfig.from_pretrained(args.config)
    print(
        f"StructureMAE on nilearn's MNI152 T1 template: image {list(config.image_size)}, "
        f"grid {config.grid_size}, random weights (seed {args.seed})"
    )
    print(describe_tokens(embed_mni152_template(config, seed=args.seed)))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="brainharmonix", description="BrainHarmonix models for T1 MRI and fMRI.")
    subcommands = parser.add_subparsers(dest="command", required=True)
    demo = subcommands.add_parser(
        "demo", help="Embed the MNI152 T1 template with a randomly initialised StructureMAE (offline)."
    )
    demo.add_argument("--seed", type=int, default=0, help="Seed of the random weights (default 0).")
    demo.add_argument(
        "--config", default=None, help="StructureMAE config.json or model folder (default: the BrainHarmonix-S size)."
    )
    demo.set_defaults(run=run_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main()
