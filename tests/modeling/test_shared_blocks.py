"""Shared building blocks: sin-cos tables, stochastic depth, layer stacks, token packing."""

import math

import pytest
import torch
from transformers import PreTrainedConfig

from brainharmonix_hf.modeling.layers import BrainSelfAttention, build_layers, drop_path
from brainharmonix_hf.modeling.positions import sincos_1d, sincos_1d_with_cls, sincos_3d
from brainharmonix_hf.modeling.token_packing import pack_tokens, unpack_tokens


def test_sincos_1d_values():
    table = sincos_1d(8, torch.arange(3))
    assert table.shape == (3, 8)
    # position 0: sines 0, cosines 1; position p, frequency k: sin(p / 10000^(2k/8))
    torch.testing.assert_close(table[0], torch.tensor([0.0] * 4 + [1.0] * 4))
    assert table[2, 1].item() == pytest.approx(math.sin(2 / 10000 ** (1 / 4)), abs=1e-6)
    assert table[2, 5].item() == pytest.approx(math.cos(2 / 10000 ** (1 / 4)), abs=1e-6)


def test_sincos_tables_follow_default_dtype():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        assert sincos_1d(4, torch.arange(2)).dtype == torch.float64
    finally:
        torch.set_default_dtype(previous)
    assert sincos_1d(4, torch.arange(2)).dtype == previous


def test_sincos_1d_with_cls_prepends_zero_row():
    table = sincos_1d_with_cls(6, 4)
    assert table.shape == (5, 6)
    assert torch.count_nonzero(table[0]) == 0
    torch.testing.assert_close(table[1:], sincos_1d(6, torch.arange(4)))


def test_sincos_3d_axis_order():
    grid = (2, 3, 4)
    table = sincos_3d(12, grid)
    assert table.shape == (24, 12)
    token = (1 * 3 + 2) * 4 + 3  # i=1, j=2, k=3 in row-major order
    torch.testing.assert_close(table[token, :4], sincos_1d(4, torch.tensor([2]))[0])  # axis 1 first
    torch.testing.assert_close(table[token, 4:8], sincos_1d(4, torch.tensor([1]))[0])  # then axis 0
    torch.testing.assert_close(table[token, 8:], sincos_1d(4, torch.tensor([3]))[0])  # then axis 2


def test_sincos_rejects_bad_widths():
    with pytest.raises(ValueError, match="even"):
        sincos_1d(5, torch.arange(2))
    with pytest.raises(ValueError, match="multiple of 6"):
        sincos_3d(16, (2, 2, 2))


def test_drop_path_keeps_expectation_and_is_identity_in_eval():
    x = torch.ones(20000, 4)
    torch.manual_seed(0)
    dropped = drop_path(x, 0.25, training=True)
    zero_rows = (dropped.sum(dim=1) == 0).float().mean().item()
    assert zero_rows == pytest.approx(0.25, abs=0.02)
    assert dropped.mean().item() == pytest.approx(1.0, abs=0.03)
    assert torch.equal(drop_path(x, 0.25, training=False), x)


def _config(**kwargs) -> PreTrainedConfig:
    config = PreTrainedConfig(**kwargs)
    for name, value in dict(
        qkv_bias=True, layer_norm_eps=1e-6, hidden_act="gelu", attention_probs_dropout_prob=0.0, hidden_dropout_prob=0.0
    ).items():
        setattr(config, name, value)
    return config


def test_build_layers_drop_path_rises_linearly():
    layers = build_layers(_config(), 3, 8, 2, 16, drop_path_rate=0.2)
    assert [layer.drop_path.drop_prob for layer in layers] == pytest.approx([0.0, 0.1, 0.2])


def test_attention_rejects_indivisible_heads():
    with pytest.raises(ValueError, match="multiple of the number of attention heads"):
        BrainSelfAttention(_config(), hidden_size=10, num_attention_heads=3)


def test_pack_unpack_round_trip_keeps_order_and_zeroes_padding():
    hidden = torch.randn(3, 7, 5)
    mask = torch.tensor([[1, 0, 1, 1, 0, 0, 1], [0, 0, 0, 0, 0, 0, 1], [1, 1, 1, 1, 1, 1, 1]])
    packed = pack_tokens(hidden, mask)
    assert packed.hidden_states.shape == (3, 7, 5)
    assert packed.mask.sum(dim=1).tolist() == [4, 1, 7]
    torch.testing.assert_close(packed.hidden_states[0, :4], hidden[0, [0, 2, 3, 6]])
    torch.testing.assert_close(unpack_tokens(packed, packed.hidden_states), hidden * mask.unsqueeze(-1))


def test_pack_shortens_to_longest_valid_sample():
    hidden = torch.randn(2, 10, 3)
    mask = torch.zeros(2, 10, dtype=torch.long)
    mask[0, :3] = 1
    mask[1, 4:6] = 1
    packed = pack_tokens(hidden, mask)
    assert packed.hidden_states.shape == (2, 3, 3)
    torch.testing.assert_close(packed.hidden_states[1, :2], hidden[1, 4:6])
