# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""The Harmonizer's latent sequence: fMRI tokens then T1 tokens, with a token mask that marks what is real.

A subject may lack a modality (its latents are `None` for the whole batch, or its mask is all zero for that subject)
and fMRI series shorter than the full window leave padded fMRI tokens. Everything here works on the combined
`(batch, num_fmri_tokens + num_t1_tokens)` token mask, 1 = real token.
"""

import torch

from .configuration_harmonizer import HarmonizerConfig


def _check_modality(
    name: str, latents: torch.Tensor | None, token_mask: torch.Tensor | None, num_tokens: int, latent_size: int
) -> None:
    if latents is None:
        if token_mask is not None:
            raise ValueError(f"{name}_token_mask was given without {name}_latents; pass both or neither.")
        return
    if latents.ndim != 3 or latents.shape[1:] != (num_tokens, latent_size):
        raise ValueError(
            f"{name}_latents must have shape (batch, {num_tokens}, {latent_size}) (the encoder's last hidden state), "
            f"got {tuple(latents.shape)}; check the encoder output or the config's num_{name}_tokens / latent_size."
        )
    if token_mask is not None and token_mask.shape != latents.shape[:2]:
        raise ValueError(
            f"{name}_token_mask must have shape {tuple(latents.shape[:2])} (one entry per {name} token), "
            f"got {tuple(token_mask.shape)}."
        )


def combine_modalities(
    config: HarmonizerConfig,
    fmri_latents: torch.Tensor | None,
    fmri_token_mask: torch.Tensor | None,
    t1_latents: torch.Tensor | None,
    t1_token_mask: torch.Tensor | None,
    check_subjects: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenate the two modalities, standing in zeros (masked out) for a modality that is `None`.

    Args:
        fmri_latents: `(batch, num_fmri_tokens, latent_size)` or `None`.
        fmri_token_mask: `(batch, num_fmri_tokens)`, nonzero for valid tokens; `None` means all valid.
        t1_latents: `(batch, num_t1_tokens, latent_size)` or `None`.
        t1_token_mask: `(batch, num_t1_tokens)`; `None` means all valid.
        check_subjects: refuse subjects without any valid token (a host synchronisation); off where the same inputs
            were checked already.

    Returns:
        latents `(batch, num_fmri_tokens + num_t1_tokens, latent_size)` and the long token mask
        `(batch, num_fmri_tokens + num_t1_tokens)`.

    Raises:
        ValueError: on wrong shapes, a mask without latents, or a subject with no valid token at all.
    """
    _check_modality("fmri", fmri_latents, fmri_token_mask, config.num_fmri_tokens, config.latent_size)
    _check_modality("t1", t1_latents, t1_token_mask, config.num_t1_tokens, config.latent_size)
    if fmri_latents is None and t1_latents is None:
        raise ValueError("The Harmonizer needs fmri_latents, t1_latents or both; neither was given.")
    if fmri_latents is not None and t1_latents is not None and fmri_latents.shape[0] != t1_latents.shape[0]:
        raise ValueError(
            f"fmri_latents and t1_latents must hold the same subjects, got batch sizes {fmri_latents.shape[0]} and "
            f"{t1_latents.shape[0]}; pass None (or a zero token mask) for subjects that lack a modality."
        )

    reference = fmri_latents if fmri_latents is not None else t1_latents
    parts, masks = [], []
    for latents, token_mask, num_tokens in (
        (fmri_latents, fmri_token_mask, config.num_fmri_tokens),
        (t1_latents, t1_token_mask, config.num_t1_tokens),
    ):
        if latents is None:
            latents = reference.new_zeros(reference.shape[0], num_tokens, config.latent_size)
            token_mask = torch.zeros(latents.shape[:2], dtype=torch.long, device=latents.device)
        elif token_mask is None:
            token_mask = torch.ones(latents.shape[:2], dtype=torch.long, device=latents.device)
        parts.append(latents)
        masks.append(token_mask.to(device=latents.device).bool().long())
    token_mask = torch.cat(masks, dim=1)

    lacks_tokens = (~token_mask.bool().any(dim=1)).tolist() if check_subjects else []
    empty = [index for index, lacks in enumerate(lacks_tokens) if lacks]
    if empty:
        raise ValueError(
            f"Subject(s) at batch index {empty} have neither a valid fMRI token nor a valid T1 token; remove them "
            "from the batch."
        )
    return torch.cat(parts, dim=1), token_mask


def modality_presence(token_mask: torch.Tensor, num_fmri_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-subject booleans `(batch,)`: has any valid fMRI token, has any valid T1 token."""
    valid = token_mask.bool()
    return valid[:, :num_fmri_tokens].any(dim=1), valid[:, num_fmri_tokens:].any(dim=1)


def hide_one_modality(token_mask: torch.Tensor, num_fmri_tokens: int, probability: float) -> torch.Tensor:
    """Modality dropout: for each subject with both modalities, with `probability`, mask out one of them.

    The hidden modality is fMRI or T1 with equal odds; a subject never loses both, and a subject with one modality
    keeps it.

    Args:
        token_mask: `(batch, num_fmri_tokens + num_t1_tokens)` long mask.
        num_fmri_tokens: where the T1 tokens start.
        probability: chance of hiding a modality per eligible subject.

    Returns:
        A new mask of the same shape.
    """
    has_fmri, has_t1 = modality_presence(token_mask, num_fmri_tokens)
    batch_size = token_mask.shape[0]
    hide = (has_fmri & has_t1) & (torch.rand(batch_size, device=token_mask.device) < probability)
    hide_fmri = hide & (torch.rand(batch_size, device=token_mask.device) < 0.5)
    hide_t1 = hide & ~hide_fmri
    is_fmri_token = torch.arange(token_mask.shape[1], device=token_mask.device) < num_fmri_tokens
    hidden = (hide_fmri[:, None] & is_fmri_token) | (hide_t1[:, None] & ~is_fmri_token)
    return token_mask * (~hidden).long()


def reconstruction_loss_mask(token_mask: torch.Tensor, num_fmri_tokens: int, include_padded_fmri: bool) -> torch.Tensor:
    """Tokens the pretraining loss counts, `(batch, num_fmri_tokens + num_t1_tokens)` float.

    Valid tokens only, or, with `include_padded_fmri` (reference behaviour), every fMRI token of subjects that have
    fMRI. Tokens of a missing modality never count.
    """
    weights = token_mask.bool()
    if include_padded_fmri:
        has_fmri, _ = modality_presence(token_mask, num_fmri_tokens)
        weights = weights.clone()
        weights[:, :num_fmri_tokens] = has_fmri[:, None]
    return weights.float()
