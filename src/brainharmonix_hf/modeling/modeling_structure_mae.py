# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""StructureMAE (BrainHarmonix-S): a 3D ViT masked autoencoder on T1 volumes.

A `(batch, 1, 160, 192, 160)` volume is cut into 16³ patches by a strided Conv3d (a `(10, 12, 10)` grid of 1200
tokens, row-major over the three axes), gets fixed 3D sin-cos positions and a CLS token (whose position is zero, so
nothing is added to it), and runs through a pre-norm ViT-B encoder with a final LayerNorm. Downstream models use the
patch tokens without the CLS token.

`StructureMAEForPreTraining` adds MAE pretraining: a random subset of patches is hidden from the encoder, a light
decoder fills the hidden positions with a mask token, adds its own fixed 3D sin-cos positions, and predicts the voxels
of every patch; the loss is the MSE on the hidden patches only.
"""

from dataclasses import dataclass

import torch
from torch import nn
from transformers.modeling_utils import PreTrainedModel
from transformers.utils import ModelOutput

from ._compat import (
    TransformersKwargs,
    Unpack,
    can_return_tuple,
    capture_outputs,
    init,
    merge_with_config_defaults,
)
from .configuration_structure_mae import StructureMAEConfig
from .hub_mixin import BrainHarmonixHubMixin
from .layers import BrainSelfAttention, TransformerLayer, build_encoder_layers, build_layers
from .losses import masked_token_mse, standardise_per_token
from .positions import padded_sincos_3d, sincos_3d


@dataclass
class StructureMAEModelOutput(ModelOutput):
    """Output of [`StructureMAEModel`].

    Args:
        last_hidden_state (`torch.FloatTensor` of shape `(batch, num_visible, hidden_size)`):
            Patch tokens after the final LayerNorm, CLS token dropped. Without masking `num_visible = num_patches`
            (1200 by default) in grid order; with masking only the visible patches, in the order of `ids_restore`.
        pooler_output (`torch.FloatTensor` of shape `(batch, hidden_size)`):
            Mean of `last_hidden_state` over its tokens (the CLS token is not used).
        mask (`torch.FloatTensor` of shape `(batch, num_patches)`, *optional*):
            1 for a patch hidden from the encoder, 0 for a visible one; `None` without masking.
        ids_restore (`torch.LongTensor` of shape `(batch, num_patches)`, *optional*):
            Position of each grid patch in the shuffled order (visible patches first); `None` without masking.
        hidden_states (`tuple(torch.FloatTensor)`, *optional*):
            Input of every encoder layer and output of the last one, `(batch, 1 + num_visible, hidden_size)` each
            (CLS first, before the final LayerNorm).
        attentions (`tuple(torch.FloatTensor)`, *optional*):
            Attention weights of every encoder layer, `(batch, num_heads, 1 + num_visible, 1 + num_visible)`.
    """

    last_hidden_state: torch.FloatTensor | None = None
    pooler_output: torch.FloatTensor | None = None
    mask: torch.FloatTensor | None = None
    ids_restore: torch.LongTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class StructureMAEForPreTrainingOutput(ModelOutput):
    """Output of [`StructureMAEForPreTraining`].

    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*):
            Mean squared error over the voxels of the masked patches (returned when `return_loss=True`).
        logits (`torch.FloatTensor` of shape `(batch, num_patches, patch_voxels * num_channels)`):
            Predicted voxels of every patch, in [`StructureMAEForPreTraining.patchify`] layout.
        mask (`torch.FloatTensor` of shape `(batch, num_patches)`):
            1 for a masked patch, 0 for a visible one.
        ids_restore (`torch.LongTensor` of shape `(batch, num_patches)`):
            Position of each grid patch in the shuffled order.
        hidden_states (`tuple(torch.FloatTensor)`, *optional*):
            Encoder hidden states, as in [`StructureMAEModelOutput`].
        attentions (`tuple(torch.FloatTensor)`, *optional*):
            Encoder attention weights, as in [`StructureMAEModelOutput`].
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    mask: torch.FloatTensor | None = None
    ids_restore: torch.LongTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


def check_pixel_values(pixel_values: torch.Tensor, config: StructureMAEConfig) -> None:
    """Raise a `ValueError` unless `pixel_values` is `(batch, num_channels, *image_size)`."""
    expected = (config.num_channels, *config.image_size)
    if pixel_values.ndim != 5 or tuple(pixel_values.shape[1:]) != expected:
        raise ValueError(
            f"pixel_values must have shape (batch, {', '.join(map(str, expected))}), got {tuple(pixel_values.shape)}. "
            "Prepare volumes with T1VolumeFeatureExtractor, which resamples, crops and pads them to the model's "
            "image_size."
        )


def volume_to_patches(pixel_values: torch.Tensor, config: StructureMAEConfig) -> torch.Tensor:
    """`(batch, channels, d0, d1, d2)` -> `(batch, num_patches, channels * p0 * p1 * p2)`.

    Patches are row-major over the grid (token `n = (i * g1 + j) * g2 + k`); voxels inside a patch are ordered
    `(channel, p0, p1, p2)`, the layout of a flattened Conv3d kernel.
    """
    check_pixel_values(pixel_values, config)
    batch_size, channels = pixel_values.shape[:2]
    (g0, g1, g2), (p0, p1, p2) = config.grid_size, config.patch_shape
    patches = pixel_values.reshape(batch_size, channels, g0, p0, g1, p1, g2, p2)
    patches = patches.permute(0, 2, 4, 6, 1, 3, 5, 7)
    return patches.reshape(batch_size, g0 * g1 * g2, channels * p0 * p1 * p2)


def patches_to_volume(patches: torch.Tensor, config: StructureMAEConfig) -> torch.Tensor:
    """Inverse of `volume_to_patches`: `(batch, num_patches, voxels)` -> `(batch, channels, d0, d1, d2)`."""
    (g0, g1, g2), (p0, p1, p2) = config.grid_size, config.patch_shape
    channels = config.num_channels
    expected = (config.num_patches, channels * p0 * p1 * p2)
    if patches.ndim != 3 or tuple(patches.shape[1:]) != expected:
        raise ValueError(
            f"patches must have shape (batch, {expected[0]}, {expected[1]}) for this config, "
            f"got {tuple(patches.shape)}."
        )
    volume = patches.reshape(patches.shape[0], g0, g1, g2, channels, p0, p1, p2)
    volume = volume.permute(0, 4, 1, 5, 2, 6, 3, 7)
    return volume.reshape(patches.shape[0], channels, *config.image_size)


def random_masking(
    sequence: torch.Tensor, mask_ratio: float, noise: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Hide a random `mask_ratio` of each sample's tokens (per-sample shuffle by sorting noise).

    Args:
        sequence: `(batch, seq_len, dim)` tokens.
        mask_ratio: fraction to hide; at least one token always stays visible.
        noise: `(batch, seq_len)` values whose ascending order decides what stays visible (lowest first); uniform
            random when `None`. Pass it to make masks reproducible.

    Returns:
        visible tokens `(batch, num_visible, dim)`, mask `(batch, seq_len)` (1 = hidden, in grid order) and
        `ids_restore` `(batch, seq_len)`, which undoes the shuffle.
    """
    batch_size, seq_len, dim = sequence.shape
    if noise is None:
        noise = torch.rand(batch_size, seq_len, device=sequence.device)
    elif noise.shape != (batch_size, seq_len):
        raise ValueError(
            f"noise must have shape (batch, num_patches) = {(batch_size, seq_len)}, got {tuple(noise.shape)}."
        )
    num_visible = max(1, int(seq_len * (1 - mask_ratio)))
    ids_shuffle = torch.argsort(noise.to(sequence.device), dim=1)
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    ids_keep = ids_shuffle[:, :num_visible]
    visible = torch.gather(sequence, 1, ids_keep.unsqueeze(-1).expand(-1, -1, dim))
    mask = torch.ones(batch_size, seq_len, device=sequence.device)
    mask[:, :num_visible] = 0
    return visible, torch.gather(mask, 1, ids_restore), ids_restore


class StructureMAEPatchEmbeddings(nn.Module):
    """Patch embedding `(batch, channels, d0, d1, d2)` -> `(batch, num_patches, hidden_size)`, row-major patches.

    The weights live in a Conv3d (`proj`, kernel = stride = patch size). Because the patches do not overlap, the
    convolution equals one matrix product of the flattened patches with the flattened kernel, which is what `forward`
    computes: on CPU it is several times faster than the Conv3d kernel in bfloat16.
    """

    def __init__(self, config: StructureMAEConfig):
        super().__init__()
        self.config = config
        self.proj = nn.Conv3d(
            config.num_channels, config.hidden_size, kernel_size=config.patch_shape, stride=config.patch_shape
        )

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        patches = volume_to_patches(pixel_values.to(self.proj.weight.dtype), self.config)
        return nn.functional.linear(patches, self.proj.weight.flatten(1), self.proj.bias)


class StructureMAEEmbeddings(nn.Module):
    """Patch embeddings + fixed 3D sin-cos positions, optional random masking, then a CLS token in front."""

    def __init__(self, config: StructureMAEConfig):
        super().__init__()
        self.config = config
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        self.patch_embeddings = StructureMAEPatchEmbeddings(config)
        self.register_buffer("position_embeddings", sincos_3d(config.hidden_size, config.grid_size), persistent=False)

    def forward(
        self, pixel_values: torch.Tensor, mask_ratio: float, noise: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Returns `(batch, 1 + num_visible, hidden_size)` tokens, and the mask and `ids_restore` when masking."""
        embeddings = self.patch_embeddings(pixel_values)
        embeddings = embeddings + self.position_embeddings.to(embeddings.dtype)
        mask = ids_restore = None
        if mask_ratio > 0:
            embeddings, mask, ids_restore = random_masking(embeddings, mask_ratio, noise)
        cls_tokens = self.cls_token.to(embeddings.dtype).expand(embeddings.shape[0], -1, -1)
        return torch.cat([cls_tokens, embeddings], dim=1), mask, ids_restore


class StructureMAEDecoder(nn.Module):
    """MAE decoder: visible encoder tokens -> predicted voxels of every patch.

    Visible tokens are projected to the decoder width, the hidden positions are filled with a learned mask token,
    the grid order is restored, fixed 3D sin-cos positions are added, and a stack of transformer layers, a LayerNorm
    and a linear layer predict `prod(patch_shape) * num_channels` voxels per patch. The decoder works on patch tokens
    only (the encoder's CLS token is not passed on).
    """

    def __init__(self, config: StructureMAEConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Linear(config.hidden_size, config.decoder_hidden_size)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, config.decoder_hidden_size))
        self.register_buffer(
            "position_embeddings",
            padded_sincos_3d(config.decoder_hidden_size, config.grid_size),
            persistent=False,
        )
        self.layers = build_layers(
            config,
            config.decoder_num_hidden_layers,
            config.decoder_hidden_size,
            config.decoder_num_attention_heads,
            config.decoder_intermediate_size,
        )
        self.norm = nn.LayerNorm(config.decoder_hidden_size, eps=config.layer_norm_eps)
        patch_voxels = config.patch_shape[0] * config.patch_shape[1] * config.patch_shape[2]
        self.pred = nn.Linear(config.decoder_hidden_size, patch_voxels * config.num_channels)

    def forward(self, visible_tokens: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        """`(batch, num_visible, hidden_size)` + `(batch, num_patches)` -> `(batch, num_patches, voxels)`."""
        hidden_states = self.embed(visible_tokens)
        batch_size, num_visible, width = hidden_states.shape
        num_masked = ids_restore.shape[1] - num_visible
        mask_tokens = self.mask_token.to(hidden_states.dtype).expand(batch_size, num_masked, -1)
        hidden_states = torch.cat([hidden_states, mask_tokens], dim=1)
        hidden_states = torch.gather(hidden_states, 1, ids_restore.unsqueeze(-1).expand(-1, -1, width))
        hidden_states = hidden_states + self.position_embeddings.to(hidden_states.dtype)
        for layer in self.layers:
            hidden_states = layer(hidden_states, None)
        return self.pred(self.norm(hidden_states))


class StructureMAEPreTrainedModel(BrainHarmonixHubMixin, PreTrainedModel):
    """Weight initialisation and class attributes shared by the StructureMAE models."""

    config: StructureMAEConfig
    base_model_prefix = "structure"
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    supports_gradient_checkpointing = True
    _no_split_modules = ["TransformerLayer"]
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    _can_record_outputs = {"hidden_states": TransformerLayer, "attentions": BrainSelfAttention}
    _input_embed_layer = "patch_embeddings"

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """Xavier-uniform linears and patch kernel (as a `(hidden, voxels)` matrix), normal tokens, sin-cos tables."""
        super()._init_weights(module)
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            init.xavier_uniform_(module.weight)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, StructureMAEPatchEmbeddings):
            weight = module.proj.weight
            # The 2D view is a new tensor without the loaded-weight flag: check the parameter itself.
            if not getattr(weight, "_is_hf_initialized", False):
                init.xavier_uniform_(weight.view(weight.shape[0], -1))
        elif isinstance(module, StructureMAEEmbeddings):
            init.normal_(module.cls_token, std=std)
            init.copy_(module.position_embeddings, sincos_3d(self.config.hidden_size, self.config.grid_size))
        elif isinstance(module, StructureMAEDecoder):
            init.normal_(module.mask_token, std=std)
            init.copy_(
                module.position_embeddings,
                padded_sincos_3d(self.config.decoder_hidden_size, self.config.grid_size),
            )


class StructureMAEModel(StructureMAEPreTrainedModel):
    """The StructureMAE encoder: T1 volume -> `(batch, num_patches, hidden_size)` patch tokens.

    Example:

    ```python
    >>> import torch
    >>> from brainharmonix_hf import StructureMAEConfig, StructureMAEModel

    >>> model = StructureMAEModel(StructureMAEConfig()).eval()
    >>> with torch.no_grad():
    ...     tokens = model(torch.randn(1, 1, 160, 192, 160)).last_hidden_state
    >>> tokens.shape
    torch.Size([1, 1200, 768])

    ```
    """

    # From a pretraining folder: the MAE decoder is pretraining-only.
    _keys_to_ignore_on_load_unexpected = [r"^decoder\."]
    _refuses_missing_weights = True

    def __init__(self, config: StructureMAEConfig):
        super().__init__(config)
        self.embeddings = StructureMAEEmbeddings(config)
        self.layers = build_encoder_layers(config)
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.post_init()

    @merge_with_config_defaults
    @capture_outputs(tie_last_hidden_states=False)
    def forward(
        self,
        pixel_values: torch.Tensor,
        mask_ratio: float = 0.0,
        noise: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> StructureMAEModelOutput:
        r"""
        Args:
            pixel_values (`torch.FloatTensor` of shape `(batch, num_channels, d0, d1, d2)`):
                Preprocessed volumes (see `T1VolumeFeatureExtractor`), `(batch, 1, 160, 192, 160)` by default.
            mask_ratio (`float`, defaults to 0.0):
                Fraction of patches to hide from the encoder. 0 (the default, for inference) keeps every patch in
                grid order.
            noise (`torch.FloatTensor` of shape `(batch, num_patches)`, *optional*):
                Decides which patches stay visible (lowest values first) when `mask_ratio > 0`, for reproducible
                masks; unused when `mask_ratio` is 0.
        """
        hidden_states, mask, ids_restore = self.embeddings(pixel_values, mask_ratio, noise)
        for layer in self.layers:
            hidden_states = layer(hidden_states, None, **kwargs)
        patch_tokens = self.layernorm(hidden_states)[:, 1:]
        return StructureMAEModelOutput(
            last_hidden_state=patch_tokens,
            pooler_output=patch_tokens.mean(dim=1),
            mask=mask,
            ids_restore=ids_restore,
        )


class StructureMAEForPreTraining(StructureMAEPreTrainedModel):
    """StructureMAE encoder + MAE decoder for masked-volume pretraining.

    Example:

    ```python
    >>> import torch
    >>> from brainharmonix_hf import StructureMAEConfig, StructureMAEForPreTraining

    >>> config = StructureMAEConfig(num_hidden_layers=2, decoder_num_hidden_layers=1)
    >>> model = StructureMAEForPreTraining(config)
    >>> outputs = model(torch.randn(2, 1, 160, 192, 160))
    >>> outputs.loss.backward()
    >>> outputs.logits.shape, int(outputs.mask.sum(dim=1)[0])
    (torch.Size([2, 1200, 4096]), 900)

    ```
    """

    accepts_loss_kwargs = False

    def __init__(self, config: StructureMAEConfig):
        super().__init__(config)
        self.structure = StructureMAEModel(config)
        self.decoder = StructureMAEDecoder(config)
        self.post_init()

    def patchify(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """`(batch, channels, d0, d1, d2)` -> `(batch, num_patches, channels * p0 * p1 * p2)`, the layout of `logits`.

        Patches are row-major over the grid (the encoder's token order); voxels inside a patch are ordered
        `(channel, p0, p1, p2)`.
        """
        return volume_to_patches(pixel_values, self.config)

    def unpatchify(self, patches: torch.Tensor) -> torch.Tensor:
        """Inverse of [`patchify`]: `(batch, num_patches, voxels)` -> `(batch, channels, d0, d1, d2)`."""
        return patches_to_volume(patches, self.config)

    def reconstruction_loss(self, pixel_values: torch.Tensor, logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean over masked patches of the per-patch voxel MSE (targets standardised per patch if `norm_pix_loss`)."""
        target = self.patchify(pixel_values)
        if self.config.norm_pix_loss:
            target = standardise_per_token(target)
        return masked_token_mse(logits, target, mask)

    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.Tensor,
        noise: torch.Tensor | None = None,
        mask_ratio: float | None = None,
        return_loss: bool = True,
        **kwargs: Unpack[TransformersKwargs],
    ) -> StructureMAEForPreTrainingOutput:
        r"""
        Args:
            pixel_values (`torch.FloatTensor` of shape `(batch, num_channels, d0, d1, d2)`):
                Preprocessed volumes, `(batch, 1, 160, 192, 160)` by default.
            noise (`torch.FloatTensor` of shape `(batch, num_patches)`, *optional*):
                Decides which patches stay visible (lowest values first), for reproducible masks.
            mask_ratio (`float`, *optional*):
                Fraction of patches to mask; `config.mask_ratio` when `None`. Must hide at least one patch.
            return_loss (`bool`, defaults to `True`):
                Compute the reconstruction loss.
        """
        mask_ratio = self.config.mask_ratio if mask_ratio is None else mask_ratio
        outputs: StructureMAEModelOutput = self.structure(pixel_values, mask_ratio=mask_ratio, noise=noise, **kwargs)
        if outputs.last_hidden_state.shape[1] == self.config.num_patches:
            raise ValueError(
                f"mask_ratio = {mask_ratio} hides none of the {self.config.num_patches} patches, so there is nothing "
                "to reconstruct: pass a mask_ratio that hides at least one patch (pretraining default 0.75), or use "
                "StructureMAEModel for unmasked patch tokens."
            )
        logits = self.decoder(outputs.last_hidden_state, outputs.ids_restore)
        loss = self.reconstruction_loss(pixel_values, logits, outputs.mask) if return_loss else None
        return StructureMAEForPreTrainingOutput(
            loss=loss,
            logits=logits,
            mask=outputs.mask,
            ids_restore=outputs.ids_restore,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )


__all__ = ["StructureMAEForPreTraining", "StructureMAEModel", "StructureMAEPreTrainedModel"]
