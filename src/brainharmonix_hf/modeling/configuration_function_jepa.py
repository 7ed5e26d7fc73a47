# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Configuration of FunctionJEPA (BrainHarmonix-F), the JEPA encoder of ROI × time fMRI at any TR."""

from huggingface_hub.dataclasses import strict
from transformers.configuration_utils import PreTrainedConfig

from .token_packing import check_token_packing

# Where a new model's ROI position tables come from (see the `roi_tables` argument).
ROI_TABLE_SOURCES = ("shipped", "custom", "placeholder")
# (low, high) ranges of the mask sampler; `U(low, high)` fractions are drawn once per batch.
FractionRange = list[float] | tuple[float, float]


@strict
class FunctionJEPAConfig(PreTrainedConfig):
    r"""Configuration of [`FunctionJEPAModel`] and [`FunctionJEPAForPreTraining`].

    The defaults give BrainHarmonix-F: 400 Schaefer ROIs × 18 time patches = 7200 ROI-major tokens, a ViT-B encoder,
    and the JEPA predictor (384 wide, 6 layers, 12 heads).

    Args:
        num_rois (`int`, defaults to 400):
            ROIs per series (R).
        atlas (`str`, defaults to `"schaefer400_7networks"`):
            Name of the parcellation and ROI order the inputs must follow (`schaefer400_7networks`,
            `schaefer400_17networks`, or a user atlas named here with its `roi_labels`). Processors check inputs
            against it (see `processing.atlases`).
        roi_labels (`list[str]`, *optional*):
            ROI labels of a user atlas in model order (stored in the checkpoint); unset for the Schaefer-400 atlases
            (their labels are the parcel names) and for a user atlas numbered `1..num_rois`.
        roi_tables (`str`, defaults to `"shipped"`):
            Where a new model's ROI position tables come from: `"shipped"` (the package's tables for `atlas`; an error
            when none ship), `"custom"` (yours, given with `model.set_roi_tables(...)` before the first forward pass)
            or `"placeholder"` (non-anatomical chain harmonics, with a warning; for tests and quick trials).
            A saved model always carries its tables; loading never rebuilds them.
        roi_order (`str`):
            Human-readable statement of the ROI order the tables (and so the inputs) follow.
        num_time_patches (`int`, defaults to 18):
            Time patches per ROI (W); a series covers at most `W` windows of `window_seconds`.
        window_seconds (`float`, defaults to 35.28):
            Seconds of signal per token (τ = 48 × 0.735 s); the patch length at TR is `round(τ / TR)` frames.
        base_patch_length (`int`, defaults to 48):
            Frames per token the patch kernel is stored for.
        num_geometric_modes (`int`, defaults to 200):
            Columns of the geometric-harmonics table.
        num_gradient_components (`int`, defaults to 30):
            Columns of the functional-gradients table; a diffusion map of an R-ROI connectivity matrix gives at most
            R - 2, so atlases with fewer than 32 ROIs need a smaller value.
        hidden_size (`int`, defaults to 768):
            Encoder width; even, since positions are half time sin-cos and half ROI embedding.
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
            Stochastic depth of the last layer of each stack (rises linearly from 0).
        token_packing (`str`, defaults to `"auto"`):
            How padded tokens are dropped before attention (`modeling.token_packing`): `"auto"` packs the whole
            batch into one sequence with sample boundaries for flash-attention kernels and per sample (padded to the
            longest sample, masked) otherwise; `"varlen"` always packs the whole batch (a block-diagonal mask where
            the kernel takes no boundaries); `"per_sample"` never does. Outputs are the same in every mode.
        layer_norm_eps (`float`, defaults to 1e-6):
            LayerNorm epsilon.
        qkv_bias (`bool`, defaults to `True`):
            Bias on the fused qkv projections.
        initializer_range (`float`, defaults to 0.02):
            Standard deviation of the truncated-normal weight init.
        predictor_hidden_size (`int`, defaults to 384):
            Predictor width; even, for its half-and-half positions.
        predictor_num_hidden_layers (`int`, defaults to 6):
            Predictor layers.
        predictor_num_attention_heads (`int`, defaults to 12):
            Predictor attention heads.
        predictor_intermediate_size (`int`, defaults to 1536):
            Predictor MLP width.
        mask_observation_roi_fraction (`list[float]`, defaults to `(0.84, 1.0)`):
            Fraction of ROIs in the observation block (a random subset).
        mask_observation_time_fraction (`list[float]`, defaults to `(0.84, 1.0)`):
            Fraction of a series' valid time patches in the observation block (contiguous); 8–9 of 10 patches.
        mask_alpha_roi_fraction (`list[float]`, defaults to `(0.45, 0.6)`):
            Fraction of ROIs in the α (cross-ROI) target block; these ROIs leave the context at all times.
        mask_alpha_time_fraction (`list[float]`, defaults to `(0.2, 0.6)`):
            Fraction of valid time patches in the α block (contiguous, inside the observation window).
        mask_edge_roi_fraction (`list[float]`, defaults to `(0.15, 0.3)`):
            Fraction of ROIs in each β/γ (cross-time) target block, at the right and left edges of the series.
        mask_edge_time_fraction (`list[float]`, defaults to `(0.0, 0.4)`):
            Fraction of valid time patches in each β/γ block; those columns leave the context for every ROI.
        mask_min_keep (`int`, defaults to 4):
            Fewest context tokens a sampled mask may have.
        ema_momentum_start (`float`, defaults to 0.996):
            EMA momentum of the target encoder at the first optimizer step.
        ema_momentum_end (`float`, defaults to 1.0):
            EMA momentum at the last optimizer step (linear in between).
        exported_encoder (`str`, *optional*):
            Which JEPA encoder these weights are, set when pretraining exports an encoder on its own: `"target"`
            (the EMA target encoder) or `"context"`; unset otherwise.
        ema_initial_weight_share (`float`, *optional*, defaults to 0.01):
            Largest share of the target encoder's initial weights left at the end of a run. A run too short for
            `ema_momentum_start` to get there starts at the largest momentum that does (see
            `training.schedules.ema_momentum`); long runs keep the momenta as given. `None` keeps them always.

    Example:

    ```python
    >>> from brainharmonix_hf import FunctionJEPAConfig, FunctionJEPAModel

    >>> config = FunctionJEPAConfig()
    >>> config.num_tokens
    7200
    >>> model = FunctionJEPAModel(config)
    ```
    """

    model_type = "brainharmonix_function_jepa"
    base_config_key = "function_config"

    num_rois: int = 400
    atlas: str = "schaefer400_7networks"
    roi_order: str = "Schaefer 2018 400 parcels, 7-network order, labels 1-200 left / 201-400 right"
    roi_labels: list[str] | None = None
    roi_tables: str = "shipped"
    num_time_patches: int = 18
    window_seconds: float = 35.28
    base_patch_length: int = 48
    num_geometric_modes: int = 200
    num_gradient_components: int = 30
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
    predictor_hidden_size: int = 384
    predictor_num_hidden_layers: int = 6
    predictor_num_attention_heads: int = 12
    predictor_intermediate_size: int = 1536
    mask_observation_roi_fraction: FractionRange = (0.84, 1.0)
    mask_observation_time_fraction: FractionRange = (0.84, 1.0)
    mask_alpha_roi_fraction: FractionRange = (0.45, 0.6)
    mask_alpha_time_fraction: FractionRange = (0.2, 0.6)
    mask_edge_roi_fraction: FractionRange = (0.15, 0.3)
    mask_edge_time_fraction: FractionRange = (0.0, 0.4)
    mask_min_keep: int = 4
    ema_momentum_start: float = 0.996
    ema_momentum_end: float = 1.0
    ema_initial_weight_share: float | None = 0.01
    exported_encoder: str | None = None

    @property
    def num_tokens(self) -> int:
        """Tokens per series, `num_rois * num_time_patches` (7200 by default)."""
        return self.num_rois * self.num_time_patches

    def validate_grid(self):
        """Positive grid and patch sizes."""
        for name in (
            "num_rois",
            "num_time_patches",
            "base_patch_length",
            "num_geometric_modes",
            "num_gradient_components",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}.")
        if self.window_seconds <= 0:
            raise ValueError(f"window_seconds must be positive seconds, got {self.window_seconds}.")

    def validate_roi_identity(self):
        """ROI labels, one per ROI; a known table source; no more gradients than the atlas's connectivity can give."""
        if self.roi_labels is not None and len(self.roi_labels) != self.num_rois:
            raise ValueError(
                f"roi_labels has {len(self.roi_labels)} labels but num_rois={self.num_rois}: list one label per ROI, "
                "in model order."
            )
        if self.exported_encoder not in (None, "target", "context"):
            raise ValueError(f"exported_encoder must be 'target', 'context' or None, got {self.exported_encoder!r}.")
        if self.roi_tables not in ROI_TABLE_SOURCES:
            raise ValueError(f"roi_tables must be one of {ROI_TABLE_SOURCES}, got {self.roi_tables!r}.")
        if self.roi_tables != "placeholder" and self.num_gradient_components > self.num_rois - 2:
            raise ValueError(
                f"num_gradient_components={self.num_gradient_components} but atlas {self.atlas!r} has {self.num_rois} "
                f"ROIs, and a diffusion map of its {self.num_rois} x {self.num_rois} connectivity gives at most "
                f"{self.num_rois - 2} gradients: set num_gradient_components to at most {self.num_rois - 2}."
            )

    def validate_token_packing(self):
        check_token_packing(self.token_packing)

    def validate_widths(self):
        """Each stack's width splits evenly over its heads and into a time half and a ROI half."""
        for prefix in ("", "predictor_"):
            width, heads = getattr(self, f"{prefix}hidden_size"), getattr(self, f"{prefix}num_attention_heads")
            if width % heads != 0:
                raise ValueError(
                    f"{prefix}hidden_size = {width} is not a multiple of {prefix}num_attention_heads = {heads}: "
                    "choose a head count that divides the width."
                )
            if width % 4 != 0:
                raise ValueError(
                    f"{prefix}hidden_size = {width} must be a multiple of 4: half the width is a sin-cos time "
                    "embedding (itself half sines, half cosines) and half a ROI embedding."
                )

    def validate_mask_fractions(self):
        """Every mask range is an ordered pair inside [0, 1]."""
        for name in (
            "mask_observation_roi_fraction",
            "mask_observation_time_fraction",
            "mask_alpha_roi_fraction",
            "mask_alpha_time_fraction",
            "mask_edge_roi_fraction",
            "mask_edge_time_fraction",
        ):
            value = getattr(self, name)
            if len(value) != 2 or not 0.0 <= value[0] <= value[1] <= 1.0:
                raise ValueError(f"{name} must be a pair (low, high) with 0 <= low <= high <= 1, got {list(value)}.")
        if self.mask_min_keep < 1:
            raise ValueError(f"mask_min_keep must be at least 1, got {self.mask_min_keep}.")

    def validate_ema_momentum(self):
        """Momenta in [0, 1], not decreasing; a share of initial weights in (0, 1) or None."""
        if not 0.0 <= self.ema_momentum_start <= self.ema_momentum_end <= 1.0:
            raise ValueError(
                "EMA momenta must satisfy 0 <= ema_momentum_start <= ema_momentum_end <= 1, got "
                f"{self.ema_momentum_start} and {self.ema_momentum_end}."
            )
        if self.ema_initial_weight_share is not None and not 0.0 < self.ema_initial_weight_share < 1.0:
            raise ValueError(
                f"ema_initial_weight_share must be in (0, 1) or None, got {self.ema_initial_weight_share}: it is the "
                "largest share of the target encoder's initial weights a run may leave."
            )


__all__ = ["FunctionJEPAConfig"]
