# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""The `harmonizer` stage: the Harmonizer on cached encoder latents (reconstruction of every latent token)."""

import torch

from ...modeling.configuration_harmonizer import HarmonizerConfig
from ...modeling.modeling_harmonizer import HarmonizerForPreTraining
from ..collators import HarmonizerCollator
from ..data import HarmonizerLatentDataset
from ..latent_cache import load_latent_cache
from .base import PretrainingStage, StageData


class HarmonizerStage(PretrainingStage):
    """Rows of a latent cache (`brainharmonix cache-latents`), modality dropout from the config or
    `--modality_dropout`. The reference recipe: peak 5e-4 (warmup from 2.5e-5, 1/20 of it), weight decay 0.05, betas
    (0.9, 0.95)."""

    name = "harmonizer"
    config_class = HarmonizerConfig
    model_class = HarmonizerForPreTraining
    defaults = {
        "learning_rate": 5e-4,
        "warmup_start_learning_rate": 2.5e-5,
        "weight_decay": 0.05,
        "weight_decay_end": 0.05,
        "adam_beta2": 0.95,
    }

    @property
    def data_source(self) -> str:
        return self.args.latents

    def load_config(self) -> HarmonizerConfig:
        config = super().load_config()
        if self.args.modality_dropout is not None:
            config.modality_dropout = self.args.modality_dropout
        return config

    def build_data(self) -> StageData:
        if self.args.latents is None:
            raise ValueError(
                "The harmonizer stage trains on cached latents: pass --latents <folder written by `brainharmonix "
                "cache-latents` or `training.latent_cache.cache_latents`>."
            )
        train, held_out = self.split_rows(load_latent_cache(self.args.latents))
        held_out = None if held_out is None else HarmonizerLatentDataset(held_out, self.config)
        return StageData(HarmonizerLatentDataset(train, self.config), held_out, HarmonizerCollator(), None)

    def embeddings(self, model: HarmonizerForPreTraining, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean of the hub tokens (CLS excluded) of the encoder, after its final LayerNorm."""
        return model.harmonizer(
            batch["fmri_latents"], batch["fmri_token_mask"], batch["t1_latents"], batch["t1_token_mask"]
        ).pooler_output


__all__ = ["HarmonizerStage"]
