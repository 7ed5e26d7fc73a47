"""Host synchronisations of a pretraining step: each one stalls the CPU until the accelerator has finished its queued
work. They are counted on CPU by watching what reads device values back to the host: a dispatch mode observes every
operator of a forward and backward pass (scalar reads, and the operators whose output size depends on the values:
`nonzero`, `unique`, boolean indexing, `masked_select`, `repeat_interleave` by a tensor), and a function mode counts
`Tensor.tolist`, which reads memory without dispatching an operator.

The counts are the shapes the models cannot know in advance: one per packing of tokens (the valid counts), one per
batch of fMRI series (patch lengths and frame counts, read together, once for all encoders), one per index check;
nothing per layer, nothing that repeats a check already made (the ROI tables are checked once per model, not on every
forward).
"""

import sys
from collections import Counter
from pathlib import Path

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from brainharmonix_hf import (
    FunctionJEPAConfig,
    FunctionJEPAForPreTraining,
    HarmonizerConfig,
    HarmonizerForPreTraining,
    SpatiotemporalMaskSampler,
    StructureMAEConfig,
    StructureMAEForPreTraining,
)

sys.path.insert(0, str(Path(__file__).parents[1]))
from small_configs import DECODER, LAYER, PREDICTOR

aten = torch.ops.aten
# Operators that always wait for device values: `_local_scalar_dense` is what `item`, `bool`, `int`, `float` and
# `__index__` of a tensor dispatch to; the others size their output by the values.
ALWAYS_SYNCING_OPERATORS = {
    aten._local_scalar_dense.default,
    aten.nonzero.default,
    aten._unique2.default,
    aten.unique_dim.default,
    aten.unique_consecutive.default,
    aten.masked_select.default,
    aten.bincount.default,
    aten.equal.default,
}
# Indexing syncs only with a boolean index (the nonzero it implies); `repeat_interleave` only without `output_size`.
INDEXING_OPERATORS = {aten.index.Tensor, aten.index_put.default, aten.index_put_.default}


def reads_device_values(func, args, kwargs) -> bool:
    """Whether the dispatched operator `func(*args, **kwargs)` must wait for the values of its inputs."""
    if func in ALWAYS_SYNCING_OPERATORS:
        return True
    if func in INDEXING_OPERATORS:
        return any(index is not None and index.dtype in (torch.bool, torch.uint8) for index in args[1])
    if func is aten.repeat_interleave.Tensor:
        return kwargs.get("output_size") is None
    return False


class HostSyncCounter:
    """Counts reads of tensor values by the host during a `with` block, by operator name (`counts`) and in all
    (`total`): dispatched operators that wait for device values (`reads_device_values`), and `Tensor.tolist` through a
    function mode. Each sync is counted once: a scalar read is seen only as its `_local_scalar_dense`."""

    def __init__(self):
        self.counts = Counter()
        counts = self.counts

        class ListReads(TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                if func is torch.Tensor.tolist:
                    counts["tolist"] += 1
                return func(*args, **(kwargs or {}))

        class Operators(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                kwargs = kwargs or {}
                if reads_device_values(func, args, kwargs):
                    counts[str(func.overloadpacket.__name__)] += 1
                return func(*args, **kwargs)

        self.modes = (ListReads(), Operators())

    def __enter__(self):
        for mode in self.modes:
            mode.__enter__()
        return self

    def __exit__(self, *exc):
        for mode in reversed(self.modes):
            mode.__exit__(*exc)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def test_counter_sees_every_kind_of_host_read():
    values = torch.tensor([1.0, -2.0, 3.0, -4.0])
    repeats = torch.tensor([1, 0, 2, 1])
    reads = {
        "boolean indexing": lambda: values[values > 0],
        "boolean assignment": lambda: values.clone().__setitem__(values < 0, 0.0),
        "masked_select": lambda: torch.masked_select(values, values > 0),
        "repeat_interleave": lambda: values.repeat_interleave(repeats),
        "nonzero": lambda: (values > 0).nonzero(),
        "item": lambda: values.sum().item(),
        "bool": lambda: bool((values > 0).any()),
        "int": lambda: int(repeats[0]),
        "float": lambda: float(values[0]),
        "tolist": lambda: values.tolist(),
        "unique": lambda: torch.unique(repeats),
    }
    for name, read in reads.items():
        with HostSyncCounter() as counter:
            read()
        assert counter.total == 1, (name, counter.counts)


def test_counter_ignores_reads_that_stay_on_the_device():
    values = torch.tensor([1.0, -2.0, 3.0, -4.0])
    repeats = torch.tensor([1, 0, 2, 1])
    with HostSyncCounter() as counter:
        values[torch.tensor([0, 2])]
        values.masked_fill(values < 0, 0.0)
        values.repeat_interleave(repeats, output_size=4)
        torch.where(values > 0, values, 0.0).sum()
    assert counter.total == 0, counter.counts


def syncs_of_training_step(model, batch: dict) -> int:
    model(**batch).loss.backward()  # warm-up: caches and once-per-model checks
    with HostSyncCounter() as counter:
        model(**batch).loss.backward()
    return counter.total


def test_jepa_step_reads_back_only_shapes_it_cannot_know():
    config = FunctionJEPAConfig(**LAYER, **PREDICTOR, num_time_patches=5, roi_tables="placeholder")
    model = FunctionJEPAForPreTraining(config)
    masks = SpatiotemporalMaskSampler.from_config(config)(torch.tensor([5, 3]))
    attention_mask = torch.ones(2, 90, dtype=torch.long)
    attention_mask[1, 54:] = 0
    batch = {
        "fmri_values": torch.randn(2, 400, 90),
        "repetition_time": torch.tensor([2.0, 2.0]),
        "attention_mask": attention_mask,
        "patch_size": torch.tensor([18, 18]),
        "context_indices": masks.context_indices,
        "target_indices": masks.target_indices,
    }
    # Patch lengths + frames, read once for both encoders (1); the packings of the target encoder, the context
    # encoder and the predictor (1 each); the checks of the target and the context indices (1 each).
    assert syncs_of_training_step(model, batch) == 6


def test_harmonizer_step_reads_back_only_shapes_it_cannot_know():
    config = HarmonizerConfig(
        **LAYER, **DECODER, num_fmri_tokens=200, num_t1_tokens=8, latent_size=24, num_hub_tokens=4
    )
    model = HarmonizerForPreTraining(config)
    fmri_mask = torch.ones(2, 200, dtype=torch.long)
    fmri_mask[0, 120:] = 0
    batch = {"fmri_latents": torch.randn(2, 200, 24), "fmri_token_mask": fmri_mask, "t1_latents": torch.randn(2, 8, 24)}
    # The subjects-without-tokens check (1) and the packing (1).
    assert syncs_of_training_step(model, batch) == 2


def test_structure_step_never_reads_back():
    config = StructureMAEConfig(
        **LAYER, **DECODER, image_size=[32, 32, 32], decoder_hidden_size=24, decoder_intermediate_size=48
    )
    assert (
        syncs_of_training_step(StructureMAEForPreTraining(config), {"pixel_values": torch.randn(2, 1, 32, 32, 32)}) == 0
    )
