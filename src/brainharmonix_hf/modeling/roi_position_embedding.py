# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Positions of the ROI-major fMRI token grid: a time half (fixed sin-cos) and a ROI half (learned from tables).

Token `n = roi * W + t` gets `[sincos(t) | s(roi)]`. The ROI half `s` comes from two per-ROI tables, geometric
harmonics E `(R, 200)` and functional gradients G `(R, 30)`:
`s = minmax_to[-1, 1](0.5 · (Linear(E) + Linear(G)))`, rescaled over the whole `(R, D/2)` matrix at once. The tables are
persistent buffers, so a checkpoint carries the tables it was trained with.

A fresh model starts with the tables `config.roi_tables` says: `"shipped"`, the tables registered for `config.atlas`
(`register_atlas_tables`; importing `brainharmonix_hf` registers the atlases whose tables ship in
`brainharmonix_hf.roi_positions`, Schaefer-400 in 7- and 17-network order, and this module never reads table files
itself); `"custom"`, zeros that `model.set_roi_tables(geometric_harmonics, functional_gradients)` must replace before
the first forward pass; or an explicit `"placeholder"`: the graph harmonics of a chain of ROIs (cosines, see
`chain_harmonics`), distinct per ROI and deterministic but not anatomical (warns).
"""

import math
from collections.abc import Callable

import torch
from torch import nn
from transformers.utils import logging

from .configuration_function_jepa import FunctionJEPAConfig
from .positions import time_sincos_table

logger = logging.get_logger(__name__)

# Keeps the min-max rescaling finite when every ROI embedding is equal (e.g. all-zero projections).
MINMAX_EPS = 1e-12

# Atlas name -> loader returning its `(geometric_harmonics, functional_gradients)` tables.
_ATLAS_TABLES: dict[str, Callable[[], tuple[torch.Tensor, torch.Tensor]]] = {}


def register_atlas_tables(atlas: str, loader: Callable[[], tuple[torch.Tensor, torch.Tensor]]) -> None:
    """Make `loader` the source of the tables a fresh model with `config.atlas == atlas` starts with.

    Args:
        atlas: atlas name as configs spell it, e.g. "schaefer400_7networks".
        loader: returns `(num_rois, num_geometric_modes)` harmonics and `(num_rois, num_gradient_components)`
            gradients; called once per model built.
    """
    _ATLAS_TABLES[atlas] = loader


def chain_harmonics(num_rois: int, num_modes: int, first_mode: int = 0) -> torch.Tensor:
    """Laplacian eigenvectors of a path graph over the ROIs: `cos(π k (r + 1/2) / R)` for `k = first_mode, ...`.

    Returns:
        `(num_rois, num_modes)` in the default dtype.
    """
    roi = torch.arange(num_rois, dtype=torch.float64).unsqueeze(1) + 0.5
    mode = torch.arange(first_mode, first_mode + num_modes, dtype=torch.float64).unsqueeze(0)
    return torch.cos(math.pi * mode * roi / num_rois).to(torch.get_default_dtype())


def initial_roi_tables(config: FunctionJEPAConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """The tables a freshly built model starts with, by `config.roi_tables`: the registered ones for `config.atlas`
    (`"shipped"`), zeros to be replaced with `set_roi_tables` (`"custom"`), or the chain placeholder
    (`"placeholder"`, with a warning). On the meta device (a model being loaded) always zeros.

    Returns:
        `(num_rois, num_geometric_modes)` and `(num_rois, num_gradient_components)` tables in the default dtype.
    """
    harmonics_shape = (config.num_rois, config.num_geometric_modes)
    gradients_shape = (config.num_rois, config.num_gradient_components)
    dtype = torch.get_default_dtype()
    # `from_pretrained` builds the model on the meta device and then reads the tables from the checkpoint (whose
    # loading refuses a file without them): nothing to read, warn about or compute here.
    if config.roi_tables == "custom" or torch.empty(0).is_meta:
        return torch.zeros(harmonics_shape, dtype=dtype), torch.zeros(gradients_shape, dtype=dtype)
    if config.roi_tables == "placeholder":
        logger.warning_once(
            f"Atlas {config.atlas!r} starts with placeholder ROI tables (roi_tables='placeholder'): chain harmonics, "
            "not anatomy. Give real tables with `model.set_roi_tables(geometric_harmonics, functional_gradients)`."
        )
        return (
            chain_harmonics(config.num_rois, config.num_geometric_modes, first_mode=0),
            chain_harmonics(config.num_rois, config.num_gradient_components, first_mode=1),
        )
    if config.atlas not in _ATLAS_TABLES:
        raise ValueError(
            f"No ROI position tables are registered for atlas {config.atlas!r} (registered: {sorted(_ATLAS_TABLES)}; "
            "`import brainharmonix_hf` registers the shipped ones). Compute yours (`compute_geometric_harmonics`, "
            "`compute_gradients`; see the README's 'Other atlases'), build the model with roi_tables='custom' and call "
            "`model.set_roi_tables(...)`; or opt in to non-anatomical placeholders with roi_tables='placeholder'."
        )
    geometric_harmonics, functional_gradients = _ATLAS_TABLES[config.atlas]()
    shipped = (tuple(geometric_harmonics.shape), tuple(functional_gradients.shape))
    if shipped != (harmonics_shape, gradients_shape):
        raise ValueError(
            f"The tables shipped for atlas {config.atlas!r} have shapes {shipped[0]} and {shipped[1]}, but the config "
            f"asks for {harmonics_shape} and {gradients_shape}. Match num_rois / num_geometric_modes / "
            "num_gradient_components to the atlas, or give the config another atlas name with roi_tables='custom' "
            "and call `model.set_roi_tables(...)` with your own tables."
        )
    return geometric_harmonics.to(dtype), functional_gradients.to(dtype)


def grid_positions(time_table: torch.Tensor, roi_table: torch.Tensor) -> torch.Tensor:
    """`(W, a)` time rows and `(R, b)` ROI rows -> `(R * W, a + b)` positions in ROI-major token order."""
    num_time_patches, num_rois = time_table.shape[0], roi_table.shape[0]
    return torch.cat([time_table.repeat(num_rois, 1), roi_table.repeat_interleave(num_time_patches, dim=0)], dim=1)


class RoiPositionEmbedding(nn.Module):
    """Encoder positions `(R * W, hidden_size)`: `[time sin-cos (D/2) | ROI embedding (D/2)]`.

    Buffers: `geometric_harmonics` `(R, num_geometric_modes)` and `functional_gradients` `(R, num_gradient_components)`
    (persistent), `time_embedding` `(W, D/2)` (recomputed). Parameters: `geometric_projection` and
    `gradient_projection`, Linear layers to D/2.
    """

    def __init__(self, config: FunctionJEPAConfig):
        super().__init__()
        half = config.hidden_size // 2
        geometric_harmonics, functional_gradients = initial_roi_tables(config)
        self.register_buffer("geometric_harmonics", geometric_harmonics)
        self.register_buffer("functional_gradients", functional_gradients)
        self.register_buffer("time_embedding", time_sincos_table(half, config.num_time_patches), persistent=False)
        self.geometric_projection = nn.Linear(config.num_geometric_modes, half)
        self.gradient_projection = nn.Linear(config.num_gradient_components, half)
        # Whether the tables were seen set (not all zero): checked at the first forward after they last changed, not on
        # every forward (the check reads a device value back to the host).
        self._tables_checked = False

    def roi_embedding(self) -> torch.Tensor:
        """`(R, D/2)` ROI half, rescaled to [-1, 1] over the whole matrix."""
        dtype = self.geometric_projection.weight.dtype
        combined = 0.5 * (
            self.geometric_projection(self.geometric_harmonics.to(dtype))
            + self.gradient_projection(self.functional_gradients.to(dtype))
        )
        low, high = combined.min(), combined.max()
        return 2 * (combined - low) / (high - low).clamp_min(MINMAX_EPS) - 1

    def forward(self) -> torch.Tensor:
        """`(R * W, D)` positions."""
        if not self._tables_checked:
            if not bool(self.geometric_harmonics.any()):
                raise ValueError(
                    "The ROI position tables were never set (roi_tables='custom'): call "
                    "`model.set_roi_tables(geometric_harmonics, functional_gradients)` before using the model."
                )
            self._tables_checked = True
        roi_half = self.roi_embedding()
        return grid_positions(self.time_embedding.to(roi_half.dtype), roi_half)

    @torch.no_grad()
    def set_tables(self, geometric_harmonics: torch.Tensor, functional_gradients: torch.Tensor) -> None:
        """Replace the ROI tables (same shapes as the buffers); see `FunctionJEPAPreTrainedModel.set_roi_tables`."""
        for name, table in (
            ("geometric_harmonics", geometric_harmonics),
            ("functional_gradients", functional_gradients),
        ):
            buffer = getattr(self, name)
            table = torch.as_tensor(table)
            if tuple(table.shape) != tuple(buffer.shape):
                raise ValueError(
                    f"{name} must have shape {tuple(buffer.shape)} (num_rois × columns of this config), got "
                    f"{tuple(table.shape)}: check the atlas and that rows are ROIs in the config's roi_order."
                )
            buffer.copy_(table)
        self._tables_checked = False

    def _load_from_state_dict(self, *args, **kwargs):
        super()._load_from_state_dict(*args, **kwargs)
        self._tables_checked = False


__all__ = ["RoiPositionEmbedding", "chain_harmonics", "grid_positions", "initial_roi_tables", "register_atlas_tables"]
