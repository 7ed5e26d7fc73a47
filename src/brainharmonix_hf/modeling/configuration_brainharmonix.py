# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Configuration of the end-to-end BrainHarmonix model: both encoders and the Harmonizer."""

from huggingface_hub.dataclasses import strict
from transformers.configuration_utils import PreTrainedConfig

from .configuration_function_jepa import FunctionJEPAConfig
from .configuration_harmonizer import HarmonizerConfig
from .configuration_structure_mae import StructureMAEConfig


@strict
class BrainHarmonixConfig(PreTrainedConfig):
    r"""Configuration of [`BrainHarmonixModel`] and [`BrainHarmonixForSequenceClassification`].

    Holds one sub-config per stage; the defaults give the published sizes (StructureMAE ViT-B over 1200 T1 tokens,
    FunctionJEPA ViT-B over 400 ROIs × 18 time patches, Harmonizer ViT-B with 128 hub tokens).

    Args:
        structure_config (`dict` or `StructureMAEConfig`, *optional*): the T1 encoder.
        function_config (`dict` or `FunctionJEPAConfig`, *optional*): the fMRI encoder.
        harmonizer_config (`dict` or `HarmonizerConfig`, *optional*): the fusion model; its token counts and latent
            width must match the encoders.
        freeze_encoders (`bool`, defaults to `True`): keep both encoders frozen (no gradients, eval mode), as in
            Harmonizer pretraining and fine-tuning.

    Example:

    ```python
    >>> from brainharmonix_hf import BrainHarmonixConfig

    >>> config = BrainHarmonixConfig()
    >>> config.harmonizer_config.num_fmri_tokens, config.harmonizer_config.num_t1_tokens
    (7200, 1200)
    ```
    """

    model_type = "brainharmonix"
    sub_configs_defaults = {
        "structure_config": StructureMAEConfig,
        "function_config": FunctionJEPAConfig,
        "harmonizer_config": HarmonizerConfig,
    }

    structure_config: dict | PreTrainedConfig | None = None
    function_config: dict | PreTrainedConfig | None = None
    harmonizer_config: dict | PreTrainedConfig | None = None
    freeze_encoders: bool = True

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        # Checked here as well as by the strict validator, so that the error's first line names the numbers.
        self.validate_stages_fit_together()

    def validate_stages_fit_together(self):
        """The Harmonizer reads exactly the tokens and latent width that the encoders produce."""
        structure, function, harmonizer = self.structure_config, self.function_config, self.harmonizer_config
        mismatches = [
            (name, expected, got)
            for name, expected, got in (
                ("num_t1_tokens", structure.num_patches, harmonizer.num_t1_tokens),
                ("num_fmri_tokens", function.num_tokens, harmonizer.num_fmri_tokens),
                ("latent_size (T1 encoder width)", structure.hidden_size, harmonizer.latent_size),
                ("latent_size (fMRI encoder width)", function.hidden_size, harmonizer.latent_size),
            )
            if expected != got
        ]
        if mismatches:
            details = "; ".join(
                f"{name}: encoders give {expected}, harmonizer_config has {got}" for name, expected, got in mismatches
            )
            raise ValueError(
                f"The stages do not fit: {details}.\nSet harmonizer_config's num_t1_tokens, num_fmri_tokens and "
                "latent_size to the encoders' token counts and hidden size (num_fmri_tokens = num_rois * "
                "num_time_patches of function_config, num_t1_tokens = patches of structure_config)."
            )


__all__ = ["BrainHarmonixConfig"]
