# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""The `function` stage: FunctionJEPA on the fMRI series of a cohort manifest, with the EMA target encoder."""

import torch

from ...modeling.configuration_function_jepa import FunctionJEPAConfig
from ...modeling.modeling_function_jepa import FunctionJEPAForPreTraining
from ...processing.feature_extraction_fmri import FMRIFeatureExtractor
from ..collators import FunctionJEPACollator
from ..data import FMRIPretrainingDataset
from ..manifest import load_manifest
from ..masking import SpatiotemporalMaskSampler
from ..schedules import ema_momentum
from .base import PretrainingStage, StageData


class FunctionStage(PretrainingStage):
    """fMRI windows with multi-TR downsampling (`--fmri_downsample_rates`), normalised by the feature extractor in the
    collator, JEPA masks drawn there. After every optimizer step the target encoder follows the context encoder by
    EMA, momentum `config.ema_momentum_start` -> `config.ema_momentum_end` over the run. DESIGN §5 recipe: warmup
    5e-5 -> 1e-3, weight decay 0.04 -> 0.4."""

    name = "function"
    config_class = FunctionJEPAConfig
    model_class = FunctionJEPAForPreTraining
    defaults = {
        "learning_rate": 1e-3,
        "warmup_start_learning_rate": 5e-5,
        "weight_decay": 0.04,
        "weight_decay_end": 0.4,
        "adam_beta2": 0.999,
    }

    @property
    def data_source(self) -> str:
        return self.args.manifest

    def build_data(self) -> StageData:
        args, config = self.args, self.config
        if args.manifest is None:
            raise ValueError("The function stage reads a cohort manifest: pass --manifest <file>.")
        train, held_out = self.split_rows(load_manifest(args.manifest))
        processor = (
            FMRIFeatureExtractor(
                num_rois=config.num_rois,
                atlas=config.atlas,
                roi_labels=config.roi_labels,
                num_time_patches=config.num_time_patches,
                window_seconds=config.window_seconds,
                normalization=args.fmri_normalization,
            )
            if args.processor is None
            else FMRIFeatureExtractor.from_pretrained(args.processor)
        )
        train_data, held_out_data = (
            None
            if rows is None
            else FMRIPretrainingDataset(
                rows,
                num_time_patches=config.num_time_patches,
                window_seconds=config.window_seconds,
                downsample_rates=args.fmri_downsample_rates,
                num_rois=config.num_rois,
                label_image=args.fmri_label_image,
                seed=args.seed + offset,
                feature_extractor=processor,
            )
            for offset, rows in ((0, train), (1, held_out))
        )
        collator = FunctionJEPACollator(processor, SpatiotemporalMaskSampler.from_config(config))
        return StageData(train_data, held_out_data, collator, processor)

    def after_optimizer_step(self, model: FunctionJEPAForPreTraining, step: int, total_steps: int) -> None:
        """EMA update of the target encoder with the momentum of optimizer step `step`."""
        model.update_target_encoder(ema_momentum(step, total_steps, self.config))

    def embeddings(self, model: FunctionJEPAForPreTraining, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean of the target (EMA) encoder's valid tokens on the whole series: the encoder that is exported."""
        return model.target_encoder(
            batch["fmri_values"], batch["repetition_time"], batch["attention_mask"], batch["patch_size"]
        ).pooler_output


__all__ = ["FunctionStage"]
