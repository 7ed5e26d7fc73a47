# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""The `brainharmonix` command line: one subcommand per task (`brainharmonix demo`, ...).

Startup is instant: this module and the modules that declare the subcommands' options import only the standard
library and each other, so `brainharmonix --help`, `brainharmonix <command> --help` and usage errors return before
torch or transformers would have loaded (`benchmarks/cli_startup.py` measures it). A command imports what it needs
when it runs, after registering the package with transformers (`auto_classes.register_auto_classes`).
"""

import argparse
import os
import sys
from collections.abc import Sequence

from .cli_finetune import add_cache_latents_command, add_finetune_command
from .cohort.cli_embed import add_embed_command
from .convert.command import add_convert_parser
from .evaluation.command import add_evaluate_command
from .training.cli_pretrain import add_pretrain_command
from .visualization.cli_plot import add_plot_command


def run_demo(args: argparse.Namespace) -> None:
    from .demo import DemoSettings, describe, run_pipeline

    settings = DemoSettings(seed=args.seed)
    if args.steps is not None:
        settings.steps = dict.fromkeys(settings.steps, args.steps)
    print(
        "BrainHarmonix end to end on bundled real data (nilearn's MNI152 T1 template; the LEMON resting-state run "
        "that brainspace ships, in Schaefer-400): pretraining tiny stages, export, cohort embedding, linear probe"
    )
    for line in describe(run_pipeline(args.output, settings)):
        print(line)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="brainharmonix", description="BrainHarmonix models for T1 MRI and fMRI.")
    subcommands = parser.add_subparsers(dest="command", required=True)
    demo = subcommands.add_parser(
        "demo",
        help="The whole pipeline offline on bundled real data with tiny models (about 4 minutes on 2 CPU cores).",
        description="The whole pipeline offline on bundled real data (nilearn's MNI152 T1, the LEMON run brainspace "
        "ships) with tiny models: pretrain the three stages, export, embed a small BIDS tree, probe the embeddings, "
        "write a report. About 4 minutes on 2 CPU cores and 1 GiB of memory. The first `make demo` also creates .venv "
        "and downloads and installs the dependencies before it starts: minutes more, and the only step that needs "
        "the network.",
    )
    demo.add_argument(
        "--output", default="brainharmonix-demo", help="New folder for the run (default brainharmonix-demo)."
    )
    demo.add_argument("--seed", type=int, default=0, help="Seed of data order, masks and initial weights (default 0).")
    demo.add_argument("--steps", type=int, default=None, help="Optimizer steps of every stage (default: 12/30/20).")
    demo.set_defaults(run=run_demo)
    add_convert_parser(subcommands)
    add_cache_latents_command(subcommands)
    add_evaluate_command(subcommands)
    add_finetune_command(subcommands)
    add_embed_command(subcommands)
    add_plot_command(subcommands)
    add_pretrain_command(subcommands)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Run a subcommand; errors propagate (for use from Python and tests)."""
    args = build_parser().parse_args(argv)
    if hasattr(args, "read_options"):  # a command with its own option parser (pretrain) reads them before the stack
        args.read_options(args)
    from .auto_classes import register_auto_classes

    register_auto_classes()
    args.run(args)


# Errors whose message tells the user what to fix: the console shows the message, not a traceback.
USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError, PermissionError)


def console_main(argv: Sequence[str] | None = None) -> None:
    """The `brainharmonix` console command: `main`, with input errors printed as `brainharmonix <command>: message`
    and exit status 2 (set `BRAINHARMONIX_TRACEBACK=1` to see the traceback)."""
    try:
        main(argv)
    except USER_ERRORS as error:
        if os.environ.get("BRAINHARMONIX_TRACEBACK"):
            raise
        command = next((word for word in (sys.argv[1:] if argv is None else argv) if not word.startswith("-")), "")
        print(f"brainharmonix {command}: {error}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    console_main()
