# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Configuration of the Harmonizer: fusion of fMRI and T1 encoder latents into hub tokens."""

from huggingface_hub.dataclasses import strict
from transformers.configuration_utils import PreTrainedConfig

from .token_packing import check_token_packing


@strict
class HarmonizerConfig(PreTrainedConfig):
    r"""Configuration of [`HarmonizerModel`], [`HarmonizerForPreTraining`] and
    [`HarmonizerForSequenceClassification`].

    The Harmonizer reads frozen encoder latents — `num_fmri_tokens` fMRI tokens (FunctionJEPA) followed by
    `num_t1_tokens` T1 tokens (StructureMAE), each `latent_size` wide — adds a fixed 1D sin-cos position over the
    concatenated sequence, prepends a CLS token, appends `num_hub_tokens` learned hub tokens and runs a ViT encoder.
    The defaults reproduce the pretrained BrainHarmonix Harmonizer (ViT-B, 128 hub tokens).

    Args:
        num_fmri_tokens (`int`, defaults to 7200):
            fMRI latent tokens per subject (400 ROIs × 18 time patches).
        num_t1_tokens (`int`, defaults to 1200):
            T1 latent tokens per subject (10 × 12 × 10 patches).
        latent_size (`int`, defaults to 768):
            Width of the encoder latents. When it differs from `hidden_size` a Linear projection maps latents to the
            Harmonizer width (the pretrained ViT-B model has none).
        hidden_size, num_hidden_layers, num_attention_heads, intermediate_size (defaults 768, 12, 12, 3072):
            Harmonizer encoder.
        hidden_act, hidden_dropout_prob, attention_probs_dropout_prob, layer_norm_eps, qkv_bias, initializer_range:
            Shared transformer-block settings.
        drop_path_rate (`float`, defaults to 0.0):
            Stochastic depth of the encoder, rising linearly over its layers (fine-tuning used 0.1).
        token_packing (`str`, defaults to `"auto"`):
            How padded tokens are dropped before attention (`modeling.token_packing`): `"auto"` packs the whole
            batch into one sequence with sample boundaries for flash-attention kernels and per sample (padded to the
            longest sample, masked) otherwise; `"varlen"` always packs the whole batch (a block-diagonal mask where
            the kernel takes no boundaries); `"per_sample"` never does. Outputs are the same in every mode.
        num_hub_tokens (`int`, defaults to 128):
            Learned hub tokens appended to the sequence; they (with CLS) are the Harmonizer's output.
        decoder_hidden_size, decoder_num_hidden_layers, decoder_num_attention_heads, decoder_intermediate_size
        (defaults 512, 8, 16, 2048):
            Pretraining decoder that reconstructs every latent token from the CLS and hub tokens.
        include_padded_fmri_in_loss (`bool`, defaults to `False`):
            Reference behaviour: count padded fMRI tokens in the reconstruction loss of subjects that have fMRI. By
            default only valid tokens count. Missing modalities are never counted.
        classifier_initializer_range (`float`, defaults to 2e-5):
            Std of the truncated-normal init of the classification head weight.
        modality_dropout (`float`, defaults to 0.0):
            While training, the probability that a subject with both modalities has one of them (chosen with equal
            odds) hidden from the encoder, so the model learns to work from either modality alone. Beyond the
            reference, which always sees both. The pretraining loss still reconstructs the hidden modality.
        num_labels, problem_type (from [`PreTrainedConfig`]):
            Classification head outputs; `num_labels=1` is regression.

    Example:

    ```python
    >>> from brainharmonix_hf import HarmonizerConfig, HarmonizerModel
    >>> model = HarmonizerModel(HarmonizerConfig())
    ```
    """

    model_type = "brainharmonix_harmonizer"
    base_config_key = "harmonizer_config"

    num_fmri_tokens: int = 7200
    num_t1_tokens: int = 1200
    latent_size: int = 768
    # The ViT fields below repeat in every model config on purpose: each config stands alone (transformers style).
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float | int = 0.0
    attention_probs_dropout_prob: float | int = 0.0
    drop_path_rate: float | int = 0.0
    token_packing: str = "auto"
    layer_norm_eps: float = 1e-6
    qkv_bias: bool = True
    initializer_range: float = 0.02
    num_hub_tokens: int = 128
    decoder_hidden_size: int = 512
    decoder_num_hidden_layers: int = 8
    decoder_num_attention_heads: int = 16
    decoder_intermediate_size: int = 2048
    include_padded_fmri_in_loss: bool = False
    classifier_initializer_range: float = 2e-5
    modality_dropout: float | int = 0.0

    def validate_harmonizer_widths(self):
        """Attention widths must split into heads; sin-cos tables need even widths."""
        for width_name, heads_name in (
            ("hidden_size", "num_attention_heads"),
            ("decoder_hidden_size", "decoder_num_attention_heads"),
        ):
            width, heads = getattr(self, width_name), getattr(self, heads_name)
            if width % heads != 0 or width % 2 != 0:
                raise ValueError(
                    f"{width_name}={width} must be even (sin-cos positions) and divisible by {heads_name}={heads} "
                    "(attention heads); change one of the two."
                )

    def validate_token_packing(self):
        check_token_packing(self.token_packing)

    def validate_harmonizer_token_counts(self):
        """Every token count must be positive."""
        for name in ("num_fmri_tokens", "num_t1_tokens", "num_hub_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}.")

    def validate_harmonizer_probabilities(self):
        """Dropout-like rates are probabilities; stochastic depth must keep some layers."""
        for name in ("modality_dropout", "hidden_dropout_prob", "attention_probs_dropout_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} is a probability in [0, 1], got {getattr(self, name)}.")
        if not 0.0 <= self.drop_path_rate < 1.0:
            raise ValueError(f"drop_path_rate must be in [0, 1), got {self.drop_path_rate}.")


__all__ = ["HarmonizerConfig"]
