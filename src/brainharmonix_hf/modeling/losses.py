# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Reconstruction losses shared by the masked autoencoders (StructureMAE voxels, Harmonizer latents)."""

import torch

# Added to the variance when standardising targets per token (MAE's normalised-pixel loss).
STANDARDISE_EPS = 1e-6


def standardise_per_token(values: torch.Tensor) -> torch.Tensor:
    """`(t - mean) / sqrt(var + 1e-6)` over the last axis of `(batch, num_tokens, features)`, computed in float32
    (variance with Bessel's correction, as MAE's normalised-pixel targets)."""
    values = values.float()
    mean = values.mean(dim=-1, keepdim=True)
    return (values - mean) / (values.var(dim=-1, keepdim=True) + STANDARDISE_EPS).sqrt()


def masked_token_mse(predictions: torch.Tensor, targets: torch.Tensor, token_mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error per token (over features), averaged over the tokens `token_mask` counts.

    Args:
        predictions, targets: `(batch, num_tokens, features)`.
        token_mask: `(batch, num_tokens)`, 1 for tokens that count.
    """
    per_token = (predictions.float() - targets.float()).pow(2).mean(dim=-1)
    return (per_token * token_mask).sum() / token_mask.sum()
