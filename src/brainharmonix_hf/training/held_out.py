# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Held-out evaluation during pretraining: the exact mean loss over the held-out set, each item counted once whatever
the number of processes, and on request the pooled embeddings of every held-out item.

The held-out batches are those of one process reading the whole set in order (`LengthGroupedBatchSampler`,
`shuffle=False`) with the run's loader batch size (the per-device batch, or the global batch with
`--dispatch_batches`). Batch `i` is evaluated by process `i % num_processes` (Accelerate's `BatchSamplerShard` with
`even_batches=False`: nothing is padded or repeated), so the loss — the batch losses weighted by batch size — is the
one-process figure with that batch size. Every process runs the same number of forward passes (forward passes of
FSDP and DDP hold collective operations): a process whose share is one batch shorter runs one more batch and gives it
weight 0.
"""

import math
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from accelerate import Accelerator
from accelerate.data_loader import BatchSamplerShard
from accelerate.utils import gather_object, send_to_device
from torch.distributed.fsdp import FSDPModule
from torch.utils.data import DataLoader

from .data import LengthGroupedBatchSampler
from .stages import PretrainingStage


@dataclass
class HeldOutResult:
    """`loss`: the mean loss over the held-out set. `embeddings` `(num_items, hidden_size)` (float32, CPU, row `i` =
    held-out item `i`) on every process when asked for, else `None`."""

    loss: float
    embeddings: torch.Tensor | None = None


class HeldOutSet:
    """This process's share of the held-out batches (see the module docstring)."""

    def __init__(self, accelerator: Accelerator, dataset, collator, batch_size: int, group_by_length: bool, workers=0):
        keys = dataset.batch_keys() if group_by_length else [(0,)] * len(dataset)
        self.sampler = LengthGroupedBatchSampler(keys, batch_size, shuffle=False)
        self.dataset, self.collator, self.accelerator = dataset, collator, accelerator
        shard = BatchSamplerShard(
            self.sampler, accelerator.num_processes, accelerator.process_index, split_batches=False, even_batches=False
        )
        self.loader = DataLoader(dataset, batch_sampler=shard, collate_fn=collator, num_workers=workers)
        self.rounds = math.ceil(len(self.sampler) / accelerator.num_processes)

    def batches(self):
        """`(weight, batch)` for `rounds` rounds: weight 1 for this process's batches, 0 for the filler batch."""
        count = 0
        for batch in self.loader:
            count += 1
            yield 1.0, send_to_device(batch, self.accelerator.device)
        if count < self.rounds:
            filler = self.collator([self.dataset[index] for index in next(iter(self.sampler))])
            for _ in range(self.rounds - count):
                yield 0.0, send_to_device(filler, self.accelerator.device)


@contextmanager
def whole_parameters(model: torch.nn.Module):
    """Make the root module's own parameters whole while a submodule is called outside the root's forward: under FSDP2
    they are sharded between forward passes. Blocks that are FSDP units gather their own parameters when called."""
    if not isinstance(model, FSDPModule):
        yield
        return
    model.unshard()
    try:
        yield
    finally:
        model.reshard()


@torch.no_grad()
def evaluate_held_out(
    accelerator: Accelerator, stage: PretrainingStage, model, held_out: HeldOutSet, with_embeddings: bool = False
) -> HeldOutResult:
    """Mean loss over the held-out set (model in eval mode, the same masks every time) and, with `with_embeddings`,
    `stage.embeddings` of every item, gathered on every process."""
    model.eval()
    unwrapped = accelerator.unwrap_model(model)
    total = torch.zeros(2, dtype=torch.float64, device=accelerator.device)
    indices, embeddings = [], []
    for weight, batch in held_out.batches():
        sample_index = batch.pop("sample_index")
        loss = stage.compute_loss(model, batch).double()
        total += weight * torch.stack([loss * len(sample_index), torch.tensor(len(sample_index), device=total.device)])
        if with_embeddings:
            with whole_parameters(unwrapped), accelerator.autocast():
                pooled = stage.embeddings(unwrapped, batch)
            if weight:
                indices.append(sample_index.cpu())
                embeddings.append(pooled.float().cpu())
    model.train()
    total = accelerator.reduce(total, reduction="sum")
    result = HeldOutResult(loss=float(total[0] / total[1]))
    if with_embeddings:
        shares = gather_object([(torch.cat(indices), torch.cat(embeddings))] if indices else [])
        order = torch.cat([share[0] for share in shares])
        result.embeddings = torch.cat([share[1] for share in shares])[torch.argsort(order)]
    return result


__all__ = ["HeldOutResult", "HeldOutSet", "evaluate_held_out"]
