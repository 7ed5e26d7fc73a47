# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""The `structure` stage: StructureMAE on the T1 volumes of a cohort manifest (masked-patch reconstruction)."""

import torch

from ...modeling.configuration_structure_mae import StructureMAEConfig
from ...modeling.modeling_structure_mae import StructureMAEForPreTraining
from ...processing.feature_extraction_t1 import T1VolumeFeatureExtractor
from ..collators import StructureMAECollator
from ..data import T1Augmentation, T1PretrainingDataset
from ..manifest import load_manifest
from .base import PretrainingStage, StageData


class StructureStage(PretrainingStage):
    """T1 volumes through a `T1VolumeFeatureExtractor`, augmented (`--t1_augmentation`), MAE masks drawn in the
    collator. Warmup 7.5e-6 -> 1.5e-4 (1/20 of the peak, as the JEPA recipe), weight decay 0.05, betas (0.9, 0.95)."""

    name = "structure"
    config_class = StructureMAEConfig
    model_class = StructureMAEForPreTraining
    defaults = {
        "learning_rate": 1.5e-4,
        "warmup_start_learning_rate": 7.5e-6,
        "weight_decay": 0.05,
        "weight_decay_end": 0.05,
        "adam_beta2": 0.95,
    }

    @property
    def data_source(self) -> str:
        return self.args.manifest

    def build_data(self) -> StageData:
        if self.args.manifest is None:
            raise ValueError("The structure stage reads a cohort manifest: pass --manifest <file>.")
        train, held_out = self.split_rows(load_manifest(self.args.manifest))
        processor = (
            T1VolumeFeatureExtractor(volume_size=self.config.image_size)
            if self.args.processor is None
            else T1VolumeFeatureExtractor.from_pretrained(self.args.processor)
        )
        augmentation = T1Augmentation() if self.args.t1_augmentation else None
        train_data, held_out_data = (
            None
            if rows is None
            else T1PretrainingDataset(
                rows,
                processor,
                augmentation,
                seed=self.args.seed + offset,
                samples_per_epoch=self.args.samples_per_epoch if offset == 0 else None,
            )
            for offset, rows in ((0, train), (1, held_out))
        )
        return StageData(train_data, held_out_data, StructureMAECollator(self.config.num_patches), processor)

    def embeddings(self, model: StructureMAEForPreTraining, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean of the encoder's patch tokens over the whole (unmasked) volume."""
        return model.structure(batch["pixel_values"]).pooler_output


__all__ = ["StructureStage"]
