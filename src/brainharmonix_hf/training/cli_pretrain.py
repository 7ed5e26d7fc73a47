# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""`brainharmonix pretrain <stage> [options]`: the options of `python -m brainharmonix_hf.training.pretrain`, passed
on whole. Declaring the command imports nothing heavy; `brainharmonix pretrain --help` lists the options."""

import argparse


def add_pretrain_command(subcommands) -> None:
    """Register `brainharmonix pretrain <stage> [options]` on the `brainharmonix` subcommand parser."""
    command = subcommands.add_parser(
        "pretrain",
        help="Pretrain a stage (structure, function, harmonizer) with Accelerate; `brainharmonix pretrain --help`.",
        add_help=False,
        prefix_chars="+",  # every option, `--help` included, goes to the pretraining parser
    )
    command.add_argument("options", nargs=argparse.REMAINDER, help="<stage> and its options.")
    command.set_defaults(run=run_pretrain)


def run_pretrain(args: argparse.Namespace) -> None:
    from .pretrain import main

    main(args.options)
