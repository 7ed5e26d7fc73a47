# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Everything a pretraining run needs before its first step: the Accelerator, the stage's model and data, the
loaders and the optimizer, prepared for the processes of the run (`prepare_run` -> `PretrainingRun`)."""

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import (
    DataLoaderConfiguration,
    DistributedType,
    ProjectConfiguration,
    parse_flag_from_env,
    set_seed,
)
from torch.utils.data import DataLoader
from transformers.feature_extraction_utils import FeatureExtractionMixin
from transformers.utils import logging

from .arguments import PretrainingArguments
from .data import LengthGroupedBatchSampler
from .held_out import HeldOutSet
from .stages import PretrainingStage, get_stage

logger = logging.get_logger(__name__)


@dataclass
class PretrainingRun:
    """A run ready to train: `model`, `optimizer` and `train_loader` are prepared by `accelerator`."""

    args: PretrainingArguments
    stage: PretrainingStage
    accelerator: Accelerator
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    train_data: torch.utils.data.Dataset
    train_loader: DataLoader
    held_out: HeldOutSet | None
    processor: FeatureExtractionMixin | None

    @property
    def output_dir(self) -> Path:
        return Path(self.args.output_dir)

    @property
    def checkpoints_dir(self) -> Path:
        return self.output_dir / "checkpoints"


def build_accelerator(args: PretrainingArguments) -> Accelerator:
    """The run's Accelerator (processes, devices and mixed precision from the launcher and `args`).

    Accelerate runs FSDP on GPUs and other accelerators only: launched with an FSDP config on CPU it trains plain data
    parallel, which is said in a warning. A multi-process launch on CPU without `ACCELERATE_USE_CPU=1` would make every
    process a separate run: that is an error.
    """
    output_dir = Path(args.output_dir)
    accelerator = Accelerator(
        mixed_precision=args.mixed_precision,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        log_with=args.report_to,
        project_config=ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(output_dir / "tracker")),
        # The loader yields global batches; each process takes its slice (loading only its items, or receiving them
        # from process 0 with `dispatch_batches`).
        dataloader_config=DataLoaderConfiguration(split_batches=True, dispatch_batches=args.dispatch_batches),
    )
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched > accelerator.num_processes:
        raise RuntimeError(
            f"This process was launched as one of {launched} processes, but Accelerate set it up as a run of its own "
            "(no GPU found and ACCELERATE_USE_CPU unset), so each process would train its own model: set "
            "ACCELERATE_USE_CPU=1 to train on CPU processes (gloo), or launch on GPUs."
        )
    if parse_flag_from_env("ACCELERATE_USE_FSDP") and accelerator.distributed_type != DistributedType.FSDP:
        layout = "one process" if accelerator.num_processes == 1 else "plain data parallel (DDP)"
        logger.warning(
            f"The Accelerate config asks for FSDP, but Accelerate runs FSDP on GPUs and other accelerators only: this "
            f"run on {accelerator.device.type} trains as {layout}, every process holding the whole model."
        )
    return accelerator


def parameter_groups(model: torch.nn.Module) -> list[dict]:
    """AdamW groups: weight decay on matrices, none on 1-D parameters (biases, norms) and scalars."""
    decay, no_decay = [], []
    for parameter in model.parameters():
        if parameter.requires_grad:
            (decay if parameter.ndim >= 2 else no_decay).append(parameter)
    return [{"params": decay, "apply_weight_decay": True}, {"params": no_decay, "weight_decay": 0.0}]


def prepare_run(args: PretrainingArguments) -> PretrainingRun:
    """Build the stage `args.stage` names, its model and data, and prepare them with Accelerate."""
    accelerator = build_accelerator(args)
    if accelerator.is_main_process:
        Path(args.output_dir).mkdir(parents=True, exist_ok=True)
    set_seed(args.seed)
    stage = get_stage(args.stage)(args)
    model = stage.build_model()
    model.train()
    data = stage.build_data()
    global_batch = args.per_device_batch_size * accelerator.num_processes
    keys = data.train.batch_keys() if args.group_by_length else [(0,)] * len(data.train)
    sampler = LengthGroupedBatchSampler(keys, global_batch, shuffle=True, seed=args.seed, drop_last=True)
    train_loader = DataLoader(data.train, batch_sampler=sampler, collate_fn=data.collator, num_workers=args.num_workers)
    if len(train_loader) == 0:
        raise ValueError(
            f"The training set has {len(data.train)} items, fewer than one global batch of "
            f"{global_batch}: lower --per_device_batch_size."
        )
    optimizer = torch.optim.AdamW(
        parameter_groups(model), lr=args.learning_rate, betas=(args.adam_beta1, args.adam_beta2)
    )
    model, optimizer, train_loader = accelerator.prepare(model, optimizer, train_loader)
    held_out = None
    if data.held_out is not None:
        # Held-out batches are collated whole on one process: the global batch with `dispatch_batches` (as training
        # batches are), else the per-device batch.
        held_out_batch = global_batch if args.dispatch_batches else args.per_device_batch_size
        held_out = HeldOutSet(
            accelerator, data.held_out, data.collator, held_out_batch, args.group_by_length, args.num_workers
        )
    return PretrainingRun(
        args, stage, accelerator, model, optimizer, data.train, train_loader, held_out, data.processor
    )


__all__ = ["PretrainingRun", "build_accelerator", "parameter_groups", "prepare_run"]
