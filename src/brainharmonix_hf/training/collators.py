# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Data collators, one per pretraining stage: items of `training.data` datasets -> model inputs.

Every collator returns `sample_index` `(batch,)` (positions in the dataset, to name subjects in reports) besides the
model inputs; the loop removes it before the forward pass. Masks are drawn here, never inside `forward`, from a
generator seeded by the items' `mask_seed`s, so a batch gets the same masks in any worker, process or resumed run.
"""

import numpy as np
import torch

from ..modeling.repetition_time import valid_time_patches
from ..processing.feature_extraction_fmri import FMRIFeatureExtractor
from .masking import SpatiotemporalMaskSampler


def batch_generator(items: list[dict]) -> torch.Generator:
    """A torch generator seeded from the items' `mask_seed`s (order-sensitive)."""
    seed = int(np.random.default_rng([item["mask_seed"] for item in items]).integers(2**62))
    return torch.Generator().manual_seed(seed)


def _sample_index(items: list[dict]) -> torch.Tensor:
    return torch.tensor([item["index"] for item in items], dtype=torch.long)


class StructureMAECollator:
    """T1 items -> `pixel_values` `(batch, 1, d0, d1, d2)` and the MAE `noise` `(batch, num_patches)` that decides
    which patches stay visible."""

    def __init__(self, num_patches: int):
        self.num_patches = num_patches

    def __call__(self, items: list[dict]) -> dict[str, torch.Tensor]:
        generator = batch_generator(items)
        return {
            "pixel_values": torch.from_numpy(np.stack([item["pixel_values"] for item in items])),
            "noise": torch.rand(len(items), self.num_patches, generator=generator),
            "sample_index": _sample_index(items),
        }


class FunctionJEPACollator:
    """fMRI items -> FunctionJEPA inputs (through the feature extractor: normalisation, padding, frame mask) and
    JEPA `context_indices` / `target_indices` drawn with a `SpatiotemporalMaskSampler` on each series' valid patches."""

    def __init__(self, feature_extractor: FMRIFeatureExtractor, mask_sampler: SpatiotemporalMaskSampler):
        if feature_extractor.num_time_patches != mask_sampler.num_time_patches:
            raise ValueError(
                f"The feature extractor holds {feature_extractor.num_time_patches} time patches but the mask sampler "
                f"{mask_sampler.num_time_patches}: build both from the same FunctionJEPAConfig."
            )
        self.feature_extractor = feature_extractor
        self.mask_sampler = mask_sampler

    def __call__(self, items: list[dict]) -> dict[str, torch.Tensor]:
        inputs = self.feature_extractor(
            [item["fmri"] for item in items],
            repetition_time=[item["repetition_time"] for item in items],
            layout="rois_first",
            atlas=self.feature_extractor.atlas,  # the dataset reads series into the model's ROI order
            return_attention_mask=True,
            return_tensors="pt",
        )
        num_valid = valid_time_patches(
            inputs["attention_mask"].sum(dim=1), inputs["patch_size"], self.feature_extractor.num_time_patches
        )
        masks = self.mask_sampler(num_valid, generator=batch_generator(items))
        return {
            "fmri_values": inputs["fmri_values"],
            "repetition_time": inputs["repetition_time"],
            "patch_size": inputs["patch_size"],
            "attention_mask": inputs["attention_mask"],
            "context_indices": masks.context_indices,
            "target_indices": masks.target_indices,
            "sample_index": _sample_index(items),
        }


class HarmonizerCollator:
    """Latent-cache items (`HarmonizerLatentDataset`) -> Harmonizer inputs: the latents as float32 (the cache holds
    16-bit values), the fMRI token mask (all zero without fMRI) and the T1 token mask (all one with T1, all zero
    without), stacked."""

    def __call__(self, items: list[dict]) -> dict[str, torch.Tensor]:
        return {
            "fmri_latents": torch.stack([item["fmri_latents"] for item in items]).float(),
            "fmri_token_mask": torch.stack([item["fmri_token_mask"] for item in items]),
            "t1_latents": torch.stack([item["t1_latents"] for item in items]).float(),
            "t1_token_mask": torch.stack([item["t1_token_mask"] for item in items]),
            "sample_index": _sample_index(items),
        }


__all__ = ["FunctionJEPACollator", "HarmonizerCollator", "StructureMAECollator"]
