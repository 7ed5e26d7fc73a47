# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Pretraining on Accelerate, one stage at a time: `structure` (StructureMAE on T1 volumes), `function`
(FunctionJEPA on fMRI series, EMA target encoder) and `harmonizer` (Harmonizer on cached encoder latents).

Run on one CPU, or on many devices and nodes through `accelerate launch` / `torchrun`:

    python -m brainharmonix_hf.training.pretrain function --manifest cohort.csv --output_dir runs/f
    accelerate launch -m brainharmonix_hf.training.pretrain function --config function.yaml
    brainharmonix pretrain harmonizer --latents latents/ --output_dir runs/h

Options are the fields of `PretrainingArguments` (`training.arguments`), as flags or in a YAML file (`--config`;
flags win). The pieces: `training.stages` (one file per stage: data, collator, model, post-step hook, embeddings,
export), `training.run_setup` (Accelerator, loaders, optimizer), `training.loop` (the one loop: schedules, non-finite
losses, checkpoints, held-out evaluation in `training.held_out`).

Run folder (`output_dir`): `log.jsonl` (one JSON object per logged step: step, epoch, loss, lr, samples_per_second,
split = "train" | "validation"; validation records add the representation-health metrics of `training.health`),
`checkpoints/step-N` (Accelerate state, sealed: see `training.checkpoints`), `exports/step-N` and `model/`
(`save_pretrained` folders with the processor and a model card; for the function stage with the exported encoder in
`encoder/`, see `training.stages.function`).
"""

import argparse
from collections.abc import Sequence

from transformers import PreTrainedModel

from .arguments import PretrainingArguments, parse_arguments
from .loop import NonFiniteLossError, train_loop
from .run_setup import prepare_run
from .stages import STAGES


def train(args: PretrainingArguments) -> PreTrainedModel:
    """Run the pretraining stage `args.stage`; returns the trained (unwrapped) model."""
    return train_loop(prepare_run(args))


def add_pretrain_command(subcommands) -> None:
    """Register `brainharmonix pretrain <stage> [options]`, the options of `python -m
    brainharmonix_hf.training.pretrain`."""
    command = subcommands.add_parser(
        "pretrain",
        help=f"Pretrain a stage ({', '.join(STAGES)}) with Accelerate; `brainharmonix pretrain -- --help`.",
        add_help=False,
        prefix_chars="+",  # every option, `--help` included, goes to the pretraining parser
    )
    command.add_argument("options", nargs=argparse.REMAINDER, help="<stage> and its options.")
    command.set_defaults(run=lambda args: main(args.options))


def main(argv: Sequence[str] | None = None) -> None:
    train(parse_arguments(argv))


__all__ = ["NonFiniteLossError", "PretrainingArguments", "add_pretrain_command", "main", "parse_arguments", "train"]


if __name__ == "__main__":
    main()
