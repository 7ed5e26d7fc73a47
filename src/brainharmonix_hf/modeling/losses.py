# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Pretraining losses: reconstruction of the masked autoencoders (StructureMAE voxels, Harmonizer latents) and the
JEPA feature-prediction loss (FunctionJEPA).

Tokens that do not count are replaced with zeros (`where`) before any arithmetic, never multiplied by 0, so whatever
they hold (NaN and Inf included) reaches neither the loss nor its gradient.
"""

import torch
from torch import nn

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
    counted = token_mask.bool().unsqueeze(-1)
    difference = torch.where(counted, predictions.float() - targets.float(), 0.0)
    # One sum over tokens and features (the features' mean folded into the divisor): no per-token intermediate.
    return difference.square().sum() / (token_mask.sum() * difference.shape[-1])


def jepa_loss(predictions: torch.Tensor, targets: torch.Tensor, target_valid: torch.Tensor) -> torch.Tensor:
    """Smooth-L1 (β = 1) averaged over features, then over each series' valid targets, then over the batch.

    Args:
        predictions, targets: `(batch, num_targets, hidden_size)`.
        target_valid: `(batch, num_targets)`, 1 for a target holding real frames.
    """
    valid = target_valid.bool()
    predictions, targets = (torch.where(valid.unsqueeze(-1), values.float(), 0.0) for values in (predictions, targets))
    per_token = nn.functional.smooth_l1_loss(predictions, targets, reduction="none", beta=1.0).mean(dim=-1)
    return (per_token.sum(dim=1) / valid.sum(dim=1).clamp_min(1)).mean()
