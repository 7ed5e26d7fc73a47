# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Drop padded tokens before attention and put results back afterwards.

fMRI series shorter than the full window leave many padded tokens (a 5-minute scan at TR 2 s fills 9 of 18 time
patches). Rather than computing them and masking, models pack the valid tokens of every sample to the front of a
shorter sequence (`(batch, max_valid, dim)`), run the stack with a mask over that shorter sequence, then unpack.
"""

from dataclasses import dataclass

import torch


@dataclass
class PackedTokens:
    """Valid tokens moved to the front, in their original order.

    Attributes:
        hidden_states: `(batch, max_valid, dim)`; rows past a sample's valid count are zero (and masked out by
            `mask`), whatever the padded tokens held.
        mask: `(batch, max_valid)` long, 1 for a real token.
        index: `(batch, max_valid)` position of each packed token in the unpacked sequence.
        seq_len: length of the unpacked sequence.
    """

    hidden_states: torch.Tensor
    mask: torch.Tensor
    index: torch.Tensor
    seq_len: int


def pack_tokens(hidden_states: torch.Tensor, token_mask: torch.Tensor) -> PackedTokens:
    """Gather the valid tokens of each sample.

    Args:
        hidden_states: `(batch, seq_len, dim)`.
        token_mask: `(batch, seq_len)`, nonzero for valid tokens.

    Returns:
        `PackedTokens` whose sequence length is the largest valid count in the batch.
    """
    valid = token_mask.bool()
    counts = valid.sum(dim=1)
    max_valid = max(int(counts.max()), 1)
    # A stable sort on "is padding" keeps the valid tokens first and in order.
    index = torch.sort((~valid).to(torch.int8), dim=1, stable=True).indices[:, :max_valid]
    packed = torch.gather(hidden_states, 1, index.unsqueeze(-1).expand(-1, -1, hidden_states.shape[-1]))
    mask = (torch.arange(max_valid, device=valid.device).unsqueeze(0) < counts.unsqueeze(1)).long()
    # `where`, not a product: a padded token holding NaN or Inf must not reach attention (NaN · 0 = NaN).
    packed = torch.where(mask.bool().unsqueeze(-1), packed, 0.0)
    return PackedTokens(packed, mask, index, hidden_states.shape[1])


def unpack_tokens(packed: PackedTokens, hidden_states: torch.Tensor) -> torch.Tensor:
    """Scatter `(batch, max_valid, dim)` results back to `(batch, seq_len, dim)`; padded positions are zero."""
    batch_size, _, dim = hidden_states.shape
    out = hidden_states.new_zeros(batch_size, packed.seq_len, dim)
    keep = packed.mask.bool().unsqueeze(-1)
    out.scatter_(1, packed.index.unsqueeze(-1).expand(-1, -1, dim), torch.where(keep, hidden_states, 0.0))
    return out
