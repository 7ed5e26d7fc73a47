# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Configuration of StructureMAE (BrainHarmonix-S), the 3D masked autoencoder on T1 volumes."""

import math

from huggingface_hub.dataclasses import strict
from transformers.configuration_utils import PreTrainedConfig


@strict
class StructureMAEConfig(PreTrainedConfig):
    r"""Configuration of [`StructureMAEModel`] and [`StructureMAEForPreTraining`].

    The defaults give BrainHarmonix-S: a ViT-B encoder over 16³ patches of a 160×192×160 MNI-space T1 volume
    (a 10×12×10 grid of 1200 tokens) and the MAE pretraining decoder (512 wide, 8 layers, 16 heads).

    Args:
        image_size (`list[int]`, defaults to `[160, 192, 160]`):
            Volume size `(d0, d1, d2)` in voxels; every axis must be divisible by the patch size.
        patch_size (`int` or `list[int]`, defaults to 16):
            Patch size per axis; an int means a cube.
        num_channels (`int`, defaults to 1):
            Channels of `pixel_values`.
        hidden_size (`int`, defaults to 768):
            Encoder width; a multiple of 6 because the 3D sin-cos positions split it into three sin/cos pairs.
        num_hidden_layers (`int`, defaults to 12):
            Encoder layers.
        num_attention_heads (`int`, defaults to 12):
            Encoder attention heads.
        intermediate_size (`int`, defaults to 3072):
            Encoder MLP width.
        hidden_act (`str`, defaults to `"gelu"`):
            MLP activation.
        hidden_dropout_prob (`float`, defaults to 0.0):
            Dropout on the residual branches.
        attention_probs_dropout_prob (`float`, defaults to 0.0):
            Dropout on the attention weights.
        drop_path_rate (`float`, defaults to 0.0):
            Stochastic depth of the last encoder layer (rises linearly from 0).
        layer_norm_eps (`float`, defaults to 1e-6):
            LayerNorm epsilon.
        qkv_bias (`bool`, defaults to `True`):
            Bias on the fused qkv projection.
        initializer_range (`float`, defaults to 0.02):
            Standard deviation of the CLS and mask tokens.
        decoder_hidden_size (`int`, defaults to 512):
            Pretraining decoder width.
        decoder_num_hidden_layers (`int`, defaults to 8):
            Pretraining decoder layers.
        decoder_num_attention_heads (`int`, defaults to 16):
            Pretraining decoder attention heads.
        decoder_intermediate_size (`int`, defaults to 2048):
            Pretraining decoder MLP width.
        mask_ratio (`float`, defaults to 0.75):
            Fraction of patches hidden from the encoder during pretraining, in `[0, 1)`.
        norm_pix_loss (`bool`, defaults to `False`):
            Reconstruct per-patch standardised voxels instead of raw intensities.

    Example:

    ```python
    >>> from brainharmonix_hf import StructureMAEConfig, StructureMAEModel

    >>> config = StructureMAEConfig()
    >>> config.grid_size, config.num_patches
    ((10, 12, 10), 1200)
    >>> model = StructureMAEModel(config)

    ```
    """

    model_type = "brainharmonix_structure_mae"
    base_config_key = "structure_config"

    image_size: list[int] | tuple[int, int, int] = (160, 192, 160)
    patch_size: int | list[int] | tuple[int, int, int] = 16
    num_channels: int = 1
    # The ViT fields below repeat in every model config on purpose: each config stands alone (transformers style).
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float | int = 0.0
    attention_probs_dropout_prob: float | int = 0.0
    drop_path_rate: float | int = 0.0
    layer_norm_eps: float = 1e-6
    qkv_bias: bool = True
    initializer_range: float = 0.02
    decoder_hidden_size: int = 512
    decoder_num_hidden_layers: int = 8
    decoder_num_attention_heads: int = 16
    decoder_intermediate_size: int = 2048
    mask_ratio: float | int = 0.75
    norm_pix_loss: bool = False

    @property
    def patch_shape(self) -> tuple[int, int, int]:
        """Patch size per axis `(p0, p1, p2)`."""
        if isinstance(self.patch_size, int):
            return (self.patch_size,) * 3
        return tuple(self.patch_size)

    @property
    def grid_size(self) -> tuple[int, int, int]:
        """Token grid `(image_size[i] // patch_shape[i])`, e.g. `(10, 12, 10)`; tokens are row-major over it."""
        return tuple(size // patch for size, patch in zip(self.image_size, self.patch_shape, strict=True))

    @property
    def num_patches(self) -> int:
        """Number of patch tokens (1200 by default)."""
        return math.prod(self.grid_size)

    def validate_volume_geometry(self):
        """Three image axes, three patch sizes, and each axis divisible by its patch size."""
        if len(self.image_size) != 3:
            raise ValueError(f"image_size must list 3 axes (d0, d1, d2), got {list(self.image_size)}.")
        if not isinstance(self.patch_size, int) and len(self.patch_size) != 3:
            raise ValueError(f"patch_size must be an int or a list of 3 sizes, got {list(self.patch_size)}.")
        for axis, (size, patch) in enumerate(zip(self.image_size, self.patch_shape, strict=True)):
            if patch <= 0 or size % patch != 0:
                raise ValueError(
                    f"image_size[{axis}] = {size} is not divisible by patch size {patch}: crop or pad the volume to "
                    f"a multiple of the patch size (e.g. image_size[{axis}] = {max(patch, size - size % patch)})."
                )

    def validate_attention_heads(self):
        """Each stack's width must split evenly over its heads."""
        for prefix in ("", "decoder_"):
            width, heads = getattr(self, f"{prefix}hidden_size"), getattr(self, f"{prefix}num_attention_heads")
            if width % heads != 0:
                raise ValueError(
                    f"{prefix}hidden_size = {width} is not a multiple of {prefix}num_attention_heads = {heads}: "
                    "choose a head count that divides the width."
                )

    def validate_position_width(self):
        """The encoder's 3D sin-cos table splits the width into three even parts."""
        if self.hidden_size % 6 != 0:
            raise ValueError(
                f"hidden_size = {self.hidden_size} must be a multiple of 6 for the 3D sin-cos positions "
                "(three sin/cos pairs), e.g. 768 = 3 × 256."
            )

    def validate_mask_ratio(self):
        """At least one patch must stay visible to the encoder."""
        if not 0.0 <= self.mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in [0, 1), got {self.mask_ratio}.")


__all__ = ["StructureMAEConfig"]
