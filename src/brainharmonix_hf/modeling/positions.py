# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Fixed sin-cos position tables of every model: 1D (Harmonizer sequence, fMRI time patches) and 3D (T1 patch grid).

Tables are computed in float64 and returned in the default dtype, so a model built under `dtype=torch.bfloat16`
gets bf16 tables; callers cast at use (`table.to(hidden_states.dtype)`).
"""

import torch
from torch import nn


def sincos_1d(embed_dim: int, positions: torch.Tensor) -> torch.Tensor:
    """Standard 1D sin-cos embedding (first half sines, second half cosines, ω_k = 1/10000^(2k/embed_dim)).

    Args:
        embed_dim: even embedding width.
        positions: `(num_positions,)` positions (any real values).

    Returns:
        `(num_positions, embed_dim)` table in the default dtype.
    """
    if embed_dim % 2 != 0:
        raise ValueError(f"sin-cos embedding width must be even, got {embed_dim}.")
    omega = 1.0 / 10000 ** (torch.arange(embed_dim // 2, dtype=torch.float64) / (embed_dim / 2.0))
    angles = positions.to(torch.float64).reshape(-1, 1) * omega.reshape(1, -1)
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1).to(torch.get_default_dtype())


def sincos_1d_with_cls(embed_dim: int, num_positions: int) -> torch.Tensor:
    """1D table over positions `0..num_positions-1` preceded by an all-zero row for a CLS token.

    Returns:
        `(1 + num_positions, embed_dim)`.
    """
    table = sincos_1d(embed_dim, torch.arange(num_positions))
    return torch.cat([table.new_zeros(1, embed_dim), table], dim=0)


def sincos_3d(embed_dim: int, grid_size: tuple[int, int, int]) -> torch.Tensor:
    """3D sin-cos table for a `(d0, d1, d2)` token grid flattened row-major (token `n = (i*d1 + j)*d2 + k`).

    The width splits into three equal parts that encode, in order, the axis-1 index `j`, the axis-0 index `i` and the
    axis-2 index `k`: this ordering reproduces the pretrained BrainHarmonix-S tables exactly.

    Returns:
        `(d0 * d1 * d2, embed_dim)`.
    """
    if embed_dim % 6 != 0:
        raise ValueError(f"3D sin-cos embedding width must be a multiple of 6, got {embed_dim}.")
    part = embed_dim // 3
    i, j, k = torch.meshgrid(*(torch.arange(size) for size in grid_size), indexing="ij")
    return torch.cat(
        [sincos_1d(part, j.reshape(-1)), sincos_1d(part, i.reshape(-1)), sincos_1d(part, k.reshape(-1))], dim=1
    )


def padded_sincos_3d(embed_dim: int, grid_size: tuple[int, int, int]) -> torch.Tensor:
    """`sincos_3d` for any width: the largest multiple of 6 carries positions, the last `embed_dim % 6` columns are 0.

    The StructureMAE decoder's default width (512) is not a multiple of 6, so its two last channels get no position.

    Returns:
        `(prod(grid_size), embed_dim)` table in the default dtype.
    """
    table = sincos_3d(embed_dim - embed_dim % 6, grid_size)
    return nn.functional.pad(table, (0, embed_dim % 6))


def time_sincos_table(width: int, num_time_patches: int) -> torch.Tensor:
    """`(num_time_patches, width)` sin-cos table of the fMRI time-patch index."""
    return sincos_1d(width, torch.arange(num_time_patches))
