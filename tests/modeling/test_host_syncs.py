"""Host synchronisations of a pretraining step: each one stalls the CPU until the accelerator has finished its queued
work. They are counted on CPU by watching the operators that read device values back to the host (a scalar read, a
nonzero or a unique), with a dispatch mode that observes every operator of a forward and backward pass.

The counts are the shapes the models cannot know in advance: one per packing of tokens (the valid counts), one per
fMRI patch embedding (patch lengths and frame counts, read together), one per index check; nothing per layer, nothing
that repeats a check already made (the ROI tables are checked once per model, not on every forward).
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

# Tensor methods that return host values, and operators whose output size depends on device values.
READS_TO_HOST = {
    torch.Tensor.tolist,
    torch.Tensor.item,
    torch.Tensor.__bool__,
    torch.Tensor.__int__,
    torch.Tensor.__float__,
    torch.Tensor.__index__,
}
DATA_DEPENDENT_OPERATORS = {torch.ops.aten.nonzero.default, torch.ops.aten._unique2.default}


class HostSyncCounter:
    """Counts reads of tensor values by the host during a `with` block: Python-level reads (`tolist`, `item`,
    `bool(...)`, ...) through a function mode, data-dependent operators (`nonzero`, `unique`, boolean indexing)
    through a dispatch mode."""

    def __init__(self):
        self.counts = Counter()
        counts = self.counts

        class Reads(TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                if func in READS_TO_HOST:
                    counts[func.__name__] += 1
                return func(*args, **(kwargs or {}))

        class Operators(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                if func in DATA_DEPENDENT_OPERATORS:
                    counts[func.__name__] += 1
                return func(*args, **(kwargs or {}))

        self.modes = (Reads(), Operators())

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
    # Two encoders: patch lengths + frames (1) and packing (1) each; the predictor's packing (1); the two index
    # checks (1 each).
    assert syncs_of_training_step(model, batch) == 7


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
