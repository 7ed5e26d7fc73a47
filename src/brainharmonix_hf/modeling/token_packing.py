# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Drop padded tokens before attention and put results back afterwards.

fMRI series shorter than the full window leave many padded tokens (a 5-minute scan at TR 2 s fills 9 of 18 time
patches). Models never compute them: the valid tokens are packed before the transformer layers and scattered back
afterwards, in one of two layouts.

- `"per_sample"`: `(batch, max_valid, dim)`, each sample's valid tokens first and in order, rows past a sample's count
  masked. Attention gets the padding mask from `create_bidirectional_mask`.
- `"varlen"`: the valid tokens of the whole batch in one sequence `(1, total_valid, dim)`, sample after sample, with
  the boundaries `cu_seq_lens` `(batch + 1,)`: nothing is padded at all. Flash-attention kernels take the
  boundaries directly (transformers' varlen keyword arguments `cu_seq_lens_q/k` and `max_length_q/k`); any other
  attention implementation gets a block-diagonal mask (a token attends to the tokens of its own sample only).

`config.token_packing` chooses: `"auto"` (the default) packs the whole batch for kernels that take sequence
boundaries and per sample otherwise, since SDPA and eager attention compute a block-diagonal mask in full
(`total_valid²` scores instead of `Σ valid_i²`); `"per_sample"` and `"varlen"` force a layout. Both layouts give the
same outputs (up to float rounding).
"""

from dataclasses import dataclass, replace

import torch
from transformers.configuration_utils import PreTrainedConfig

from ._compat import (
    ALL_MASK_ATTENTION_FUNCTIONS,
    create_bidirectional_mask,
    flash_attention_mask,
    packed_sequence_mask_function,
)

TOKEN_PACKING_MODES = ("auto", "per_sample", "varlen")


@dataclass
class PackedTokens:
    """Valid tokens of a batch, in their original order within each sample.

    Attributes:
        hidden_states: `(batch, max_valid, dim)` (per-sample layout; rows past a sample's valid count are zero) or
            `(1, total_valid, dim)` (varlen layout).
        mask: `(batch, max_valid)` long, 1 for a real token, in the per-sample layout; `None` in the varlen layout,
            where every token is real and `cu_seq_lens` marks the samples.
        sequence_ids: same leading shape as `hidden_states`, long: the sample each packed token comes from.
        positions: same leading shape, long: its position in that sample's unpacked sequence.
        seq_len: length of the unpacked sequences.
        complete: no sample had a padded token (unpacking is then a reshape).
        cu_seq_lens: `(batch + 1,)` int32 sample boundaries in the varlen layout, `None` per sample.
        max_length: the longest sample's valid count in the varlen layout, `None` per sample.
    """

    hidden_states: torch.Tensor
    mask: torch.Tensor | None
    sequence_ids: torch.Tensor
    positions: torch.Tensor
    seq_len: int
    complete: bool
    cu_seq_lens: torch.Tensor | None = None
    max_length: int | None = None

    @property
    def batch_size(self) -> int:
        return self.hidden_states.shape[0] if self.cu_seq_lens is None else self.cu_seq_lens.shape[0] - 1


def check_token_packing(mode: str) -> None:
    """Raise a `ValueError` unless `mode` is a `config.token_packing` value."""
    if mode not in TOKEN_PACKING_MODES:
        raise ValueError(f"token_packing must be one of {TOKEN_PACKING_MODES}, got {mode!r}.")


def takes_sequence_boundaries(config: PreTrainedConfig) -> bool:
    """Whether the config's attention implementation reads sample boundaries (`cu_seq_lens_*`) instead of a mask: the
    flash-attention family and any kernel registered with transformers' flash-attention mask."""
    return ALL_MASK_ATTENTION_FUNCTIONS._global_mapping.get(config._attn_implementation) is flash_attention_mask


def packing_layout(config: PreTrainedConfig) -> str:
    """`"per_sample"` or `"varlen"`, from `config.token_packing` and the attention implementation (module docstring)."""
    mode = getattr(config, "token_packing", "auto")
    if mode == "auto":
        return "varlen" if takes_sequence_boundaries(config) else "per_sample"
    return mode


def pack_tokens(hidden_states: torch.Tensor, token_mask: torch.Tensor, layout: str = "per_sample") -> PackedTokens:
    """Gather the valid tokens of each sample.

    Args:
        hidden_states: `(batch, seq_len, dim)`.
        token_mask: `(batch, seq_len)`, nonzero for valid tokens.
        layout: `"per_sample"` or `"varlen"` (module docstring).

    Returns:
        `PackedTokens`. One host synchronisation (the valid counts) whatever the layout.
    """
    if layout not in TOKEN_PACKING_MODES[1:]:
        raise ValueError(f"layout must be 'per_sample' or 'varlen', got {layout!r}.")
    batch_size, seq_len, dim = hidden_states.shape
    valid = token_mask.bool()
    counts = valid.sum(dim=1)
    fewest, most, total = torch.stack([counts.min(), counts.max(), counts.sum()]).tolist()
    complete = fewest == seq_len
    device = hidden_states.device
    if layout == "per_sample":
        max_valid = max(most, 1)
        if complete:
            positions = torch.arange(seq_len, device=device).expand(batch_size, -1)
            packed = hidden_states
        else:
            # A stable sort on "is padding" keeps the valid tokens first and in order.
            positions = torch.sort((~valid).to(torch.int8), dim=1, stable=True).indices[:, :max_valid]
            packed = torch.gather(hidden_states, 1, positions.unsqueeze(-1).expand(-1, -1, dim))
        mask = (torch.arange(max_valid, device=device).unsqueeze(0) < counts.unsqueeze(1)).long()
        # `where`, not a product: a padded token holding NaN or Inf must not reach attention (NaN · 0 = NaN).
        if not complete:
            packed = torch.where(mask.bool().unsqueeze(-1), packed, 0.0)
        sequence_ids = torch.arange(batch_size, device=device).unsqueeze(1).expand(-1, max_valid)
        return PackedTokens(packed, mask, sequence_ids, positions, seq_len, complete)

    if complete:
        order = torch.arange(batch_size * seq_len, device=device)
        packed = hidden_states.reshape(1, batch_size * seq_len, dim)
    else:
        # Flat indices of the valid tokens, sample after sample, in order (the padded ones sort last).
        order = torch.sort((~valid.reshape(-1)).to(torch.int8), stable=True).indices[:total]
        packed = hidden_states.reshape(batch_size * seq_len, dim)[order].unsqueeze(0)
    cu_seq_lens = torch.nn.functional.pad(counts.cumsum(0), (1, 0)).to(torch.int32)
    return PackedTokens(
        hidden_states=packed,
        mask=None,
        sequence_ids=(order // seq_len).unsqueeze(0),
        positions=(order % seq_len).unsqueeze(0),
        seq_len=seq_len,
        complete=complete,
        cu_seq_lens=cu_seq_lens,
        max_length=most,
    )


def unpack_tokens(packed: PackedTokens, hidden_states: torch.Tensor) -> torch.Tensor:
    """Scatter packed results (the packed layout, any width) back to `(batch, seq_len, dim)`; padded positions are
    zero."""
    batch_size, dim = packed.batch_size, hidden_states.shape[-1]
    if packed.complete:
        return hidden_states.reshape(batch_size, packed.seq_len, dim)
    values = hidden_states.reshape(-1, dim)
    if packed.cu_seq_lens is None:
        # Rows past a sample's count point at its padded positions: they write zeros there.
        values = torch.where(packed.mask.reshape(-1, 1).bool(), values, 0.0)
    flat_index = (packed.sequence_ids * packed.seq_len + packed.positions).reshape(-1)
    out = values.new_zeros(batch_size * packed.seq_len, dim).index_copy(0, flat_index, values)
    return out.reshape(batch_size, packed.seq_len, dim)


def prepend_tokens(packed: PackedTokens, prefix: torch.Tensor) -> PackedTokens:
    """Put `prefix` `(batch, num_prefix, dim)` in front of each sample's packed tokens (always real, never masked).

    The result describes samples whose unpacked sequence is `[prefix, original sequence]`.
    """
    batch_size, num_prefix, _ = prefix.shape
    device = prefix.device
    prefix_positions = torch.arange(num_prefix, device=device).expand(batch_size, -1)
    prefix_ids = torch.arange(batch_size, device=device).unsqueeze(1).expand(-1, num_prefix)
    if packed.cu_seq_lens is None:
        return replace(
            packed,
            hidden_states=torch.cat([prefix, packed.hidden_states], dim=1),
            mask=torch.cat([packed.mask.new_ones(batch_size, num_prefix), packed.mask], dim=1),
            sequence_ids=torch.cat([prefix_ids, packed.sequence_ids], dim=1),
            positions=torch.cat([prefix_positions, packed.positions + num_prefix], dim=1),
            seq_len=packed.seq_len + num_prefix,
        )
    cu_seq_lens = packed.cu_seq_lens + num_prefix * torch.arange(batch_size + 1, device=device, dtype=torch.int32)
    # Token r of sample s moves past the s + 1 prefixes up to and including its own; prefix j of sample b lands at
    # the start of sample b's new range.
    token_destination = torch.arange(packed.hidden_states.shape[1], device=device) + num_prefix * (
        packed.sequence_ids[0] + 1
    )
    prefix_destination = cu_seq_lens[:-1].long().unsqueeze(1) + prefix_positions
    destination = torch.cat([prefix_destination.reshape(-1), token_destination])
    total = destination.shape[0]

    def placed(prefix_values: torch.Tensor, token_values: torch.Tensor) -> torch.Tensor:
        prefix_rows = prefix_values.reshape(total - token_values.shape[0], *token_values.shape[1:])
        values = torch.cat([prefix_rows, token_values])
        return values.new_empty(values.shape).index_copy(0, destination, values)

    return replace(
        packed,
        hidden_states=placed(prefix, packed.hidden_states[0]).unsqueeze(0),
        sequence_ids=placed(prefix_ids, packed.sequence_ids[0]).unsqueeze(0),
        positions=placed(prefix_positions, packed.positions[0] + num_prefix).unsqueeze(0),
        seq_len=packed.seq_len + num_prefix,
        cu_seq_lens=cu_seq_lens,
        max_length=packed.max_length + num_prefix,
    )


def leading_tokens(packed: PackedTokens, hidden_states: torch.Tensor, count: int) -> torch.Tensor:
    """The first `count` tokens of every sample (e.g. what `prepend_tokens` put there), `(batch, count, dim)`, from
    results in the packed layout."""
    if packed.cu_seq_lens is None:
        return hidden_states[:, :count]
    starts = packed.cu_seq_lens[:-1].long().unsqueeze(1)
    return hidden_states[0][starts + torch.arange(count, device=starts.device)]


def attention_inputs(config: PreTrainedConfig, packed: PackedTokens) -> tuple[object, dict]:
    """The attention mask and the extra attention keyword arguments for layers running on `packed.hidden_states`.

    Per sample: the padding mask (`None` for SDPA when nothing is padded). Varlen with a kernel that takes sequence
    boundaries: no mask and `cu_seq_lens_q/k`, `max_length_q/k`. Varlen otherwise: the block-diagonal mask in the
    implementation's format (boolean for SDPA, additive for eager, a `BlockMask` for flex attention).
    """
    if packed.cu_seq_lens is None:
        # Whether anything is padded is known: transformers need not read the mask back to the host to find out.
        if packed.complete:
            return create_bidirectional_mask(config=config, inputs_embeds=packed.hidden_states, attention_mask=None), {}
        mask = create_bidirectional_mask(
            config=config,
            inputs_embeds=packed.hidden_states,
            attention_mask=packed.mask,
            allow_is_bidirectional_skip=False,
        )
        return mask, {}
    if takes_sequence_boundaries(config):
        boundaries = {
            "cu_seq_lens_q": packed.cu_seq_lens,
            "cu_seq_lens_k": packed.cu_seq_lens,
            "max_length_q": packed.max_length,
            "max_length_k": packed.max_length,
        }
        return None, boundaries
    mask = create_bidirectional_mask(
        config=config,
        inputs_embeds=packed.hidden_states,
        attention_mask=None,
        and_mask_function=packed_sequence_mask_function(packed.sequence_ids),
    )
    return mask, {}


__all__ = [
    "TOKEN_PACKING_MODES",
    "PackedTokens",
    "attention_inputs",
    "check_token_packing",
    "leading_tokens",
    "pack_tokens",
    "packing_layout",
    "prepend_tokens",
    "takes_sequence_boundaries",
    "unpack_tokens",
]
