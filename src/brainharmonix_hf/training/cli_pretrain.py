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
    command.set_defaults(read_options=read_pretrain_options, run=run_pretrain)


def read_pretrain_options(args: argparse.Namespace) -> None:
    """Parse `<stage> [options]` into `args.pretraining_arguments`; `--help` and usage errors end here, before torch
    and transformers are imported."""
    from .arguments import parse_arguments

    args.pretraining_arguments = parse_arguments(args.options)


def run_pretrain(args: argparse.Namespace) -> None:
    from .pretrain import train

    train(args.pretraining_arguments)
