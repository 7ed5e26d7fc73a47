# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""FunctionJEPA (BrainHarmonix-F): a JEPA encoder of ROI × time fMRI at any repetition time.

A `(batch, num_rois, num_timepoints)` series becomes a `num_rois × num_time_patches` grid of tokens (token
`n = roi * W + t`, ROI-major, no CLS): TAPE embeds each ROI's series in windows of `round(τ / TR)` frames, positions
`[time sin-cos | ROI embedding]` are added, and a pre-norm ViT encoder with a final LayerNorm runs over the tokens that
hold real frames only: padded tokens are dropped before the encoder (token packing, per sample or the whole batch as
one varlen sequence, `config.token_packing`), not computed and masked, and come back as zeros.

`FunctionJEPAForPreTraining` adds JEPA pretraining: a context encoder sees the context tokens, a predictor fills the
target positions with a mask token and predicts their features, and the targets are the layer-normalised outputs of a
target encoder, an exponential moving average (EMA) of the context encoder that sees the whole series. The context and
target token indices are inputs: a data collator samples them (`SpatiotemporalMaskSampler`), the model never does. The
EMA update is an explicit call, `update_target_encoder(momentum)`, made by the training loop after each optimizer step,
with `momentum = ema_momentum(step, total_steps, config)`.

fMRI inputs come with a frame mask: `attention_mask` `(batch, num_timepoints)` marks real frames (1) and padded frames
(0) of each series, real frames first, exactly as `FMRIFeatureExtractor` returns it; it is not a token mask. The model
derives the token mask (`token_mask`, `(batch, num_rois * num_time_patches)`) from it and the patch length.
"""

import math
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
from .configuration_function_jepa import FunctionJEPAConfig
from .hub_mixin import BrainHarmonixHubMixin
from .layers import BrainSelfAttention, TransformerLayer, build_encoder_layers, build_layers
from .losses import jepa_loss
from .positions import time_sincos_table
from .roi_position_embedding import RoiPositionEmbedding, grid_positions, initial_roi_tables
from .tape import SeriesLengths, TAPEPatchEmbedding
from .token_packing import attention_inputs, pack_tokens, packing_layout, unpack_tokens


@dataclass
class FunctionJEPAModelOutput(ModelOutput):
    """Output of [`FunctionJEPAModel`].

    Args:
        last_hidden_state (`torch.FloatTensor` of shape `(batch, num_tokens, hidden_size)`):
            Tokens after the final LayerNorm, ROI-major (`num_tokens = num_rois * num_time_patches`, 7200 by
            default); zeros at padded tokens. With `token_indices`, the encoded tokens only, in that order.
        token_mask (`torch.LongTensor` of shape `(batch, num_tokens)`):
            1 for a token holding real frames, 0 for a padded one (aligned with `last_hidden_state`). The real tokens
            of each series: `split_valid_tokens(last_hidden_state, token_mask)`; the batch without the slots that are
            padding in every series: `batch_valid_tokens(last_hidden_state, token_mask)`.
        pooler_output (`torch.FloatTensor` of shape `(batch, hidden_size)`):
            Mean of each series' real tokens (padded tokens excluded): one embedding per series.
        hidden_states (`tuple(torch.FloatTensor)`, *optional*):
            Input of every layer and output of the last one (before the final LayerNorm), on the packed sequence
            (`config.token_packing`): `(batch, max_valid_tokens, hidden_size)` per sample, each series' real tokens
            first in grid order, or `(1, total_valid_tokens, hidden_size)` for the whole batch, series after series.
        attentions (`tuple(torch.FloatTensor)`, *optional*):
            Attention weights of every layer on the packed sequence (eager attention), `(batch, num_heads, max_valid,
            max_valid)` per sample.
    """

    last_hidden_state: torch.FloatTensor | None = None
    token_mask: torch.LongTensor | None = None
    pooler_output: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


def mean_of_valid_tokens(tokens: torch.Tensor, token_mask: torch.Tensor) -> torch.Tensor:
    """`(batch, num_tokens, hidden)` tokens and `(batch, num_tokens)` mask -> `(batch, hidden)` mean of real tokens."""
    weights = token_mask.to(tokens.dtype).unsqueeze(-1)
    return (tokens * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1)


def split_valid_tokens(tokens: torch.Tensor, token_mask: torch.Tensor) -> list[torch.Tensor]:
    """The real tokens of each series, without padding: a list of `(num_valid_i, hidden)` tensors in grid order
    (ROI-major: for ROI r, its first `num_valid_i / num_rois` time patches)."""
    return [series[mask.bool()] for series, mask in zip(tokens, token_mask, strict=True)]


def batch_valid_tokens(tokens: torch.Tensor, token_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch's tokens without the slots that are padding in every series, and their mask.

    Args:
        tokens: `(batch, num_tokens, hidden)` tokens (`last_hidden_state`), zeros at padded slots.
        token_mask: `(batch, num_tokens)` 1 for a token holding real frames (`token_mask`).

    Returns:
        `(batch, num_kept, hidden)` tokens and `(batch, num_kept)` mask, in grid order (ROI-major), where the kept
        slots are those real in at least one series: `num_rois * W'` for the batch's longest series of `W'` time
        patches. Slots real in some series and padding in others stay, with mask 0 where padded.
    """
    keep = token_mask.bool().any(dim=0)
    return tokens[:, keep], token_mask[:, keep]


def check_fmri_inputs(fmri_values: torch.Tensor, repetition_time, num_rois: int) -> None:
    """Raise a `ValueError` at the input unless `fmri_values` is `(batch, num_rois, num_timepoints)` and the TR is a
    number of seconds (not a boolean)."""
    if fmri_values.ndim != 3 or fmri_values.shape[1] != num_rois:
        raise ValueError(
            f"fmri_values must have shape (batch, num_rois={num_rois}, num_timepoints), got "
            f"{tuple(fmri_values.shape)}. Parcellate with the model's atlas (config.atlas) and pass ROI-first series; "
            "FMRIFeatureExtractor checks and prepares them."
        )
    if isinstance(repetition_time, bool) or (
        isinstance(repetition_time, torch.Tensor) and repetition_time.dtype == torch.bool
    ):
        raise ValueError(f"repetition_time is a boolean ({repetition_time}); pass the TR of each series in seconds.")


def require_loaded_roi_tables(model: PreTrainedModel, missing_keys) -> None:
    """Refuse a loaded model none of whose copies of the ROI tables came from the checkpoint: they are data the
    model was trained with, never re-initialised weights."""
    for table in ("geometric_harmonics", "functional_gradients"):
        keys = [name for name, _ in model.named_buffers() if name.endswith(f"roi_positions.{table}")]
        if keys and all(key in missing_keys for key in keys):
            raise ValueError(
                f"The checkpoint has no ROI table {table!r} ({keys[0]}): ROI position tables are part of a FunctionJEPA"
                " checkpoint and are never rebuilt on load. Re-save the model with its tables (set_roi_tables, then "
                "save_pretrained), or convert the reference weights with their table files."
            )


class RoiTablesRequiredOnLoad:
    """Mixin (before `BrainHarmonixHubMixin`) for models holding a FunctionJEPA: `from_pretrained` refuses a checkpoint
    without its ROI tables, with a message of its own, before the other checks."""

    @classmethod
    def check_loaded_weights(cls, model, info, source, location) -> None:
        require_loaded_roi_tables(model, info["missing_keys"])
        super().check_loaded_weights(model, info, source, location)


@dataclass
class FunctionJEPAForPreTrainingOutput(ModelOutput):
    """Output of [`FunctionJEPAForPreTraining`].

    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*):
            Smooth-L1 (β = 1) between predictions and targets, averaged over features, then over each series' real
            target tokens, then over the batch (returned when `return_loss=True`).
        predictions (`torch.FloatTensor` of shape `(batch, num_targets, hidden_size)`):
            Predictor outputs at the target tokens.
        targets (`torch.FloatTensor` of shape `(batch, num_targets, hidden_size)`):
            Target-encoder features at the target tokens, layer-normalised without affine parameters.
        context_indices (`torch.LongTensor` of shape `(batch, num_context)`):
            Token indices the context encoder saw (as passed).
        target_indices (`torch.LongTensor` of shape `(batch, num_targets)`):
            Token indices that were predicted (as passed).
        hidden_states (`tuple(torch.FloatTensor)`, *optional*):
            Context-encoder hidden states, as in [`FunctionJEPAModelOutput`].
        attentions (`tuple(torch.FloatTensor)`, *optional*):
            Context-encoder attention weights, as in [`FunctionJEPAModelOutput`].
    """

    loss: torch.FloatTensor | None = None
    predictions: torch.FloatTensor | None = None
    targets: torch.FloatTensor | None = None
    context_indices: torch.LongTensor | None = None
    target_indices: torch.LongTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


def gather_tokens(tokens: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """`(batch, num_tokens, ...)` tokens at `(batch, k)` indices -> `(batch, k, ...)`."""
    index = indices.reshape(*indices.shape, *(1,) * (tokens.ndim - 2)).expand(-1, -1, *tokens.shape[2:])
    return torch.gather(tokens, 1, index)


def check_token_indices(indices: torch.Tensor, name: str, batch_size: int, num_tokens: int) -> None:
    """Raise a `ValueError` unless `indices` is a `(batch, k)` integer tensor of grid positions."""
    if indices.ndim != 2 or indices.shape[0] != batch_size or indices.dtype.is_floating_point:
        raise ValueError(
            f"{name} must be a (batch, k) integer tensor of token indices for a batch of {batch_size}, got "
            f"{tuple(indices.shape)} {indices.dtype}; build it with SpatiotemporalMaskSampler."
        )
    if not indices.numel():
        return
    lowest, highest = torch.stack([indices.min(), indices.max()]).tolist()
    if lowest < 0 or highest >= num_tokens:
        raise ValueError(f"{name} holds indices outside [0, {num_tokens}) (num_rois * num_time_patches).")


def sync_unloaded_encoder(encoder: nn.Module, target_encoder: nn.Module) -> None:
    """Give both encoders the same weights and ROI tables (every tensor of their state dicts): a loaded side is copied
    to an unloaded one (context to target otherwise)."""
    context_state, target_state = encoder.state_dict(keep_vars=True), target_encoder.state_dict(keep_vars=True)
    for context_param, target_param in zip(context_state.values(), target_state.values(), strict=True):
        target_loaded = getattr(target_param, "_is_hf_initialized", False)
        if target_loaded and not getattr(context_param, "_is_hf_initialized", False):
            init.copy_(context_param, target_param)
        else:
            init.copy_(target_param, context_param)


class FunctionJEPAPredictor(nn.Module):
    """JEPA predictor: context features + mask tokens at the target positions -> predicted target features.

    Context tokens are projected to the predictor width and get the predictor positions of their grid cells; each
    target is the learned mask token plus its position. Predictor positions are `[time sin-cos (Dp/2) | Linear(ROI
    half of the encoder positions, detached) (Dp/2)]`. After the layers and a LayerNorm, the target tokens are
    projected back to the encoder width.
    """

    def __init__(self, config: FunctionJEPAConfig):
        super().__init__()
        self.config = config
        width = config.predictor_hidden_size
        self.embed = nn.Linear(config.hidden_size, width)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, width))
        self.position_projection = nn.Linear(config.hidden_size // 2, width // 2)
        self.register_buffer("time_embedding", time_sincos_table(width // 2, config.num_time_patches), persistent=False)
        self.layers = build_layers(
            config,
            config.predictor_num_hidden_layers,
            width,
            config.predictor_num_attention_heads,
            config.predictor_intermediate_size,
            config.drop_path_rate,
        )
        self.norm = nn.LayerNorm(width, eps=config.layer_norm_eps)
        self.proj = nn.Linear(width, config.hidden_size)

    def positions(self, roi_embedding: torch.Tensor) -> torch.Tensor:
        """`(num_rois, hidden_size / 2)` encoder ROI half -> `(num_tokens, predictor_hidden_size)` positions."""
        roi_half = self.position_projection(roi_embedding.detach())
        return grid_positions(self.time_embedding.to(roi_half.dtype), roi_half)

    def forward(
        self,
        context_features: torch.Tensor,
        roi_embedding: torch.Tensor,
        context_indices: torch.Tensor,
        target_indices: torch.Tensor,
        context_valid: torch.Tensor,
        target_valid: torch.Tensor,
    ) -> torch.Tensor:
        """
        Args:
            context_features: `(batch, num_context, hidden_size)` context-encoder outputs.
            roi_embedding: `(num_rois, hidden_size / 2)` ROI half of the context encoder's positions.
            context_indices, target_indices: `(batch, num_context)` / `(batch, num_targets)` token indices.
            context_valid, target_valid: same shapes, 1 for tokens holding real frames.

        Returns:
            `(batch, num_targets, hidden_size)` predictions.
        """
        positions = self.positions(roi_embedding)
        context = self.embed(context_features) + positions[context_indices]
        targets = self.mask_token.to(context.dtype) + positions[target_indices]
        packed = pack_tokens(
            torch.cat([context, targets], dim=1),
            torch.cat([context_valid, target_valid], dim=1),
            packing_layout(self.config),
        )
        attention_mask, attention_kwargs = attention_inputs(self.config, packed)
        hidden_states = packed.hidden_states
        for layer in self.layers:
            hidden_states = layer(hidden_states, attention_mask, **attention_kwargs)
        hidden_states = unpack_tokens(packed, hidden_states)
        return self.proj(self.norm(hidden_states[:, context.shape[1] :]))


class FunctionJEPAPreTrainedModel(RoiTablesRequiredOnLoad, BrainHarmonixHubMixin, PreTrainedModel):
    """Weight initialisation, class attributes and ROI-table handling shared by the FunctionJEPA models.

    The target (EMA) encoder is the base model (`base_model_prefix = "target_encoder"`): loading
    [`FunctionJEPAModel`] from a [`FunctionJEPAForPreTraining`] checkpoint takes the target-encoder weights, the ones
    used for inference.
    """

    config: FunctionJEPAConfig
    base_model_prefix = "target_encoder"
    main_input_name = "fmri_values"
    input_modalities = ("time",)
    supports_gradient_checkpointing = True
    _input_embed_layer = "patch_embedding"
    _no_split_modules = ["TransformerLayer"]
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    _can_record_outputs = {"hidden_states": TransformerLayer, "attentions": BrainSelfAttention}

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """Truncated-normal linears (std / sqrt(2l) for the residual outputs of layer l of a stack, see
        `residual_output_depths`), truncated-normal mask token, fixed tables recomputed.

        The patch kernel is drawn at std 1 / sqrt(base_patch_length) (fan-in): a z-scored series then gives tokens of
        unit variance per channel, as large as the ±1 positions added to them. At `initializer_range` (0.02, sized for
        768-value image patches) the 48-frame tokens were a quarter of their positions, the JEPA targets were mostly
        position, and short runs reached a near-zero loss by predicting positions: a collapsed representation.
        """
        super()._init_weights(module)
        std = self.config.initializer_range
        if isinstance(module, nn.Conv2d):
            init.trunc_normal_(module.weight, std=1.0 / math.sqrt(self.config.base_patch_length))
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            depth = self.residual_output_depths().get(module)
            init.trunc_normal_(module.weight, std=std if depth is None else std / math.sqrt(2.0 * depth))
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, RoiPositionEmbedding):
            # Tables read from a checkpoint are data: never look up (or recompute) the initial ones over them.
            if not getattr(module.geometric_harmonics, "_is_hf_initialized", False):
                geometric_harmonics, functional_gradients = initial_roi_tables(self.config)
                init.copy_(module.geometric_harmonics, geometric_harmonics)
                init.copy_(module.functional_gradients, functional_gradients)
            init.copy_(
                module.time_embedding, time_sincos_table(module.time_embedding.shape[1], self.config.num_time_patches)
            )
        elif isinstance(module, FunctionJEPAPredictor):
            init.trunc_normal_(module.mask_token, std=std)
            init.copy_(
                module.time_embedding, time_sincos_table(module.time_embedding.shape[1], self.config.num_time_patches)
            )

    def residual_output_depths(self) -> dict[nn.Module, int]:
        """Depth `l` (from 1) of each residual-branch output (attention `proj`, MLP `fc2`) of every stack in the model
        (encoders, predictor), read off the stacks' `layers`; `_init_weights` draws them with std / sqrt(2l), so deep
        stacks start with small residual updates."""
        return {
            residual_output: depth
            for stack in self.modules()
            if isinstance(stack, (FunctionJEPAModel, FunctionJEPAPredictor))
            for depth, layer in enumerate(stack.layers, start=1)
            for residual_output in (layer.attention.proj, layer.mlp.fc2)
        }

    def set_roi_tables(self, geometric_harmonics: torch.Tensor, functional_gradients: torch.Tensor) -> None:
        """Replace the ROI tables of every encoder in the model (they are saved with it).

        Args:
            geometric_harmonics: `(num_rois, num_geometric_modes)` per-ROI geometric eigenmodes.
            functional_gradients: `(num_rois, num_gradient_components)` per-ROI functional gradients.
            Rows must follow the ROI order of the inputs (`config.roi_order`).
        """
        for module in self.modules():
            if isinstance(module, RoiPositionEmbedding):
                module.set_tables(geometric_harmonics, functional_gradients)


class FunctionJEPAModel(FunctionJEPAPreTrainedModel):
    """The FunctionJEPA encoder: fMRI series at any TR -> `(batch, num_rois * num_time_patches, hidden_size)` tokens.

    Example:

    ```python
    >>> import torch
    >>> from brainharmonix_hf import FunctionJEPAConfig, FunctionJEPAModel

    >>> model = FunctionJEPAModel(FunctionJEPAConfig(num_hidden_layers=2)).eval()
    >>> fmri_values = torch.randn(1, 400, 150)  # 5 minutes at TR 2 s
    >>> with torch.no_grad():
    ...     outputs = model(fmri_values, repetition_time=torch.tensor([2.0]))
    >>> outputs.last_hidden_state.shape, int(outputs.token_mask.sum())  # 9 of 18 time patches hold frames
    (torch.Size([1, 7200, 768]), 3600)
    ```
    """

    # From a pretraining folder: the context encoder and the predictor are pretraining-only.
    _keys_to_ignore_on_load_unexpected = [r"^encoder\.", r"^predictor\."]
    _refuses_missing_weights = True

    def __init__(self, config: FunctionJEPAConfig):
        super().__init__(config)
        self.patch_embedding = TAPEPatchEmbedding(
            config.hidden_size, config.num_time_patches, config.base_patch_length, config.window_seconds
        )
        self.roi_positions = RoiPositionEmbedding(config)
        self.layers = build_encoder_layers(config)
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.post_init()

    @merge_with_config_defaults
    @capture_outputs(tie_last_hidden_states=False)
    def forward(
        self,
        fmri_values: torch.Tensor,
        repetition_time: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        patch_size: torch.Tensor | None = None,
        token_indices: torch.Tensor | None = None,
        series_lengths: SeriesLengths | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> FunctionJEPAModelOutput:
        r"""
        Args:
            fmri_values (`torch.FloatTensor` of shape `(batch, num_rois, num_timepoints)`):
                ROI series (see `FMRIFeatureExtractor`), padded to the longest in the batch. Series longer than
                `num_time_patches` windows are cropped (with a warning).
            repetition_time (`torch.FloatTensor` of shape `(batch,)`):
                TR of each series in seconds; a batch may mix TRs.
            attention_mask (`torch.LongTensor` of shape `(batch, num_timepoints)`, *optional*):
                Frame mask (see the module docstring), 1 for a real frame. Every frame is real when `None`.
            patch_size (`torch.LongTensor` of shape `(batch,)`, *optional*):
                Frames per time patch of each series, as `FMRIFeatureExtractor` returns it; derived from
                `repetition_time` with the same rule (`repetition_time.patch_length_for_tr`) when `None`.
            token_indices (`torch.LongTensor` of shape `(batch, k)`, *optional*):
                Encode only these tokens (grid indices `roi * num_time_patches + t`), as the JEPA context encoder
                does; every token otherwise.
            series_lengths (`SeriesLengths`, *optional*):
                The patch lengths and frame counts of these inputs, when already read to the host
                (`patch_embedding.read_series_lengths`): a model running two encoders on the same series reads them
                once. Read from the inputs when `None`.
        """
        check_fmri_inputs(fmri_values, repetition_time, self.config.num_rois)
        embedded = self.patch_embedding(fmri_values, repetition_time, attention_mask, patch_size, series_lengths)
        hidden_states = embedded.embeddings + self.roi_positions().to(embedded.embeddings.dtype)
        token_mask = embedded.token_mask
        if token_indices is not None:
            check_token_indices(token_indices, "token_indices", *token_mask.shape)
            hidden_states = gather_tokens(hidden_states, token_indices)
            token_mask = gather_tokens(token_mask, token_indices)
        packed = pack_tokens(hidden_states, token_mask, packing_layout(self.config))
        attention_mask, attention_kwargs = attention_inputs(self.config, packed)
        hidden_states = packed.hidden_states
        for layer in self.layers:
            hidden_states = layer(hidden_states, attention_mask, **kwargs, **attention_kwargs)
        last_hidden_state = unpack_tokens(packed, self.layernorm(hidden_states))
        return FunctionJEPAModelOutput(
            last_hidden_state=last_hidden_state,
            token_mask=token_mask,
            pooler_output=mean_of_valid_tokens(last_hidden_state, token_mask),
        )


class FunctionJEPAForPreTraining(FunctionJEPAPreTrainedModel):
    """Context encoder + EMA target encoder + predictor for JEPA pretraining on fMRI.

    The forward pass needs no labels but the JEPA masking as token indices, `context_indices` / `target_indices`,
    drawn by a `SpatiotemporalMaskSampler` in the data collator (the model never samples). After each optimizer step
    call `update_target_encoder(ema_momentum(step, total_steps, config))`; the target encoder never receives
    gradients.

    Example:

    ```python
    >>> import torch
    >>> from brainharmonix_hf import FunctionJEPAConfig, FunctionJEPAForPreTraining, SpatiotemporalMaskSampler
    >>> from brainharmonix_hf import ema_momentum

    >>> config = FunctionJEPAConfig(num_hidden_layers=2, predictor_num_hidden_layers=1)
    >>> model = FunctionJEPAForPreTraining(config)
    >>> sampler = SpatiotemporalMaskSampler.from_config(config)
    >>> masks = sampler(torch.tensor([17, 17]))  # valid time patches: 300 frames at TR 2 s fill 17
    >>> outputs = model(
    ...     torch.randn(2, 400, 300),
    ...     repetition_time=torch.tensor([2.0, 2.0]),
    ...     context_indices=masks.context_indices,
    ...     target_indices=masks.target_indices,
    ... )
    >>> outputs.loss.backward()
    >>> model.update_target_encoder(ema_momentum(step=1, total_steps=1000, config=config))
    ```
    """

    accepts_loss_kwargs = False

    def __init__(self, config: FunctionJEPAConfig):
        super().__init__(config)
        self.encoder = FunctionJEPAModel(config)
        self.target_encoder = FunctionJEPAModel(config)
        self.predictor = FunctionJEPAPredictor(config)
        self.post_init()

    def initialize_weights(self) -> None:
        """Initialise missing weights as usual, give both encoders the same weights (see `sync_unloaded_encoder`), and
        freeze the target encoder (it runs at construction and after loading, which builds fresh parameters)."""
        super().initialize_weights()
        sync_unloaded_encoder(self.encoder, self.target_encoder)
        self.target_encoder.requires_grad_(False)

    @torch.no_grad()
    def update_target_encoder(self, momentum: float) -> None:
        """EMA step: `target ← momentum · target + (1 - momentum) · context`, for every parameter."""
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"EMA momentum must be in [0, 1], got {momentum}.")
        for context_param, target_param in zip(
            self.encoder.parameters(), self.target_encoder.parameters(), strict=True
        ):
            target_param.lerp_(context_param.to(target_param.dtype), 1.0 - momentum)

    @can_return_tuple
    def forward(
        self,
        fmri_values: torch.Tensor,
        repetition_time: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        patch_size: torch.Tensor | None = None,
        context_indices: torch.Tensor | None = None,
        target_indices: torch.Tensor | None = None,
        return_loss: bool = True,
        **kwargs: Unpack[TransformersKwargs],
    ) -> FunctionJEPAForPreTrainingOutput:
        r"""
        Args:
            fmri_values, repetition_time, attention_mask, patch_size:
                As in [`FunctionJEPAModel.forward`].
            context_indices (`torch.LongTensor` of shape `(batch, num_context)`):
                Token indices the context encoder sees. Required.
            target_indices (`torch.LongTensor` of shape `(batch, num_targets)`):
                Token indices to predict. Required.
            return_loss (`bool`, defaults to `True`):
                Compute the JEPA loss.
        """
        if context_indices is None or target_indices is None:
            raise ValueError(
                "FunctionJEPAForPreTraining needs context_indices and target_indices (the JEPA masking as token "
                "indices); the model does not sample them. Draw them in the data collator with "
                "`SpatiotemporalMaskSampler.from_config(model.config)(num_valid_time_patches)` and pass both."
            )
        # Both encoders see the same series: their patch lengths and frame counts are read to the host once.
        check_fmri_inputs(fmri_values, repetition_time, self.config.num_rois)
        series_lengths = self.encoder.patch_embedding.read_series_lengths(
            fmri_values, repetition_time, attention_mask, patch_size
        )
        with torch.no_grad():
            target_outputs = self.target_encoder(
                fmri_values, repetition_time, attention_mask, patch_size, series_lengths=series_lengths
            )
        token_mask = target_outputs.token_mask
        check_token_indices(target_indices, "target_indices", *token_mask.shape)

        context_outputs = self.encoder(
            fmri_values,
            repetition_time,
            attention_mask,
            patch_size,
            token_indices=context_indices,
            series_lengths=series_lengths,
            **kwargs,
        )
        target_valid = gather_tokens(token_mask, target_indices)
        predictions = self.predictor(
            context_outputs.last_hidden_state,
            self.encoder.roi_positions.roi_embedding(),
            context_indices,
            target_indices,
            context_outputs.token_mask,
            target_valid,
        )
        target_features = gather_tokens(target_outputs.last_hidden_state, target_indices)
        targets = nn.functional.layer_norm(target_features, target_features.shape[-1:])
        return FunctionJEPAForPreTrainingOutput(
            loss=jepa_loss(predictions, targets, target_valid) if return_loss else None,
            predictions=predictions,
            targets=targets,
            context_indices=context_indices,
            target_indices=target_indices,
            hidden_states=context_outputs.hidden_states,
            attentions=context_outputs.attentions,
        )


__all__ = [
    "FunctionJEPAForPreTraining",
    "FunctionJEPAModel",
    "FunctionJEPAPreTrainedModel",
    "batch_valid_tokens",
    "split_valid_tokens",
]
