# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Transformer building blocks shared by StructureMAE, FunctionJEPA and the Harmonizer.

Every stack in the package (encoders, the MAE decoder, the JEPA predictor, the Harmonizer decoder) is a list of
`TransformerLayer`s: pre-norm self-attention + MLP with optional stochastic depth. Attention goes through the
transformers attention interface, so `attn_implementation="eager" | "sdpa" | "flash_attention_2" | "flex_attention"`
chosen at `from_pretrained` applies everywhere. Parameter names (`norm1`, `attention.qkv`, `attention.proj`, `norm2`,
`mlp.fc1`, `mlp.fc2`) follow the ViT/MAE convention so reference checkpoints map one-to-one.

The shared configuration fields read here are `qkv_bias`, `layer_norm_eps`, `hidden_act`,
`attention_probs_dropout_prob` and `hidden_dropout_prob`; each model config declares them.
"""

from collections.abc import Callable

import torch
from torch import nn
from transformers.activations import ACT2FN
from transformers.configuration_utils import PreTrainedConfig

from ._compat import ALL_ATTENTION_FUNCTIONS, GradientCheckpointingLayer, TransformersKwargs, Unpack


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs: Unpack[TransformersKwargs],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference attention: softmax in fp32, additive mask.

    Args:
        query, key, value: `(batch, num_heads, seq_len, head_dim)`.
        attention_mask: additive `(batch, 1, seq_len, seq_len)` mask or `None`.

    Returns:
        `(batch, seq_len, num_heads, head_dim)` outputs and `(batch, num_heads, seq_len, seq_len)` weights.
    """
    attn_weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        attn_weights = attn_weights + attention_mask
    attn_weights = nn.functional.softmax(attn_weights, dim=-1, dtype=torch.float32).to(query.dtype)
    attn_weights = nn.functional.dropout(attn_weights, p=dropout, training=module.training)
    attn_output = torch.matmul(attn_weights, value).transpose(1, 2).contiguous()
    return attn_output, attn_weights


class BrainSelfAttention(nn.Module):
    """Multi-head self-attention with a fused qkv projection, dispatched through `ALL_ATTENTION_FUNCTIONS`."""

    def __init__(self, config: PreTrainedConfig, hidden_size: int, num_attention_heads: int):
        super().__init__()
        if hidden_size % num_attention_heads != 0:
            raise ValueError(
                f"hidden size {hidden_size} is not a multiple of the number of attention heads {num_attention_heads}."
            )
        self.config = config
        self.num_attention_heads = num_attention_heads
        self.head_dim = hidden_size // num_attention_heads
        self.scaling = self.head_dim**-0.5
        self.attention_dropout = config.attention_probs_dropout_prob
        self.is_causal = False
        self.qkv = nn.Linear(hidden_size, 3 * hidden_size, bias=config.qkv_bias)
        self.proj = nn.Linear(hidden_size, hidden_size)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """`hidden_states`: `(batch, seq_len, hidden_size)`; `attention_mask` from `create_bidirectional_mask`."""
        batch_size, seq_len, _ = hidden_states.shape
        qkv = self.qkv(hidden_states).view(batch_size, seq_len, 3, self.num_attention_heads, self.head_dim)
        query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)

        attention_interface: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(
            self.config._attn_implementation, eager_attention_forward
        )
        attn_output, attn_weights = attention_interface(
            self,
            query,
            key,
            value,
            attention_mask,
            dropout=0.0 if not self.training else self.attention_dropout,
            scaling=self.scaling,
            **kwargs,
        )
        attn_output = self.proj(attn_output.reshape(batch_size, seq_len, -1))
        return attn_output, attn_weights


class BrainMLP(nn.Module):
    """Two-layer feed-forward block `hidden -> intermediate -> hidden`."""

    def __init__(self, config: PreTrainedConfig, hidden_size: int, intermediate_size: int):
        super().__init__()
        self.fc1 = nn.Linear(hidden_size, intermediate_size)
        self.activation_fn = ACT2FN[config.hidden_act]
        self.fc2 = nn.Linear(intermediate_size, hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.activation_fn(self.fc1(hidden_states)))


def drop_path(hidden_states: torch.Tensor, drop_prob: float, training: bool) -> torch.Tensor:
    """Stochastic depth: zero whole samples' residual branches with probability `drop_prob` while training."""
    if drop_prob == 0.0 or not training:
        return hidden_states
    keep_prob = 1.0 - drop_prob
    shape = (hidden_states.shape[0],) + (1,) * (hidden_states.ndim - 1)
    keep = hidden_states.new_empty(shape).bernoulli_(keep_prob)
    return hidden_states * keep / keep_prob


class BrainDropPath(nn.Module):
    """Stochastic depth per sample on a residual branch."""

    def __init__(self, drop_prob: float = 0.0):
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return drop_path(hidden_states, self.drop_prob, self.training)

    def extra_repr(self) -> str:
        return f"p={self.drop_prob}"


class TransformerLayer(GradientCheckpointingLayer):
    """Pre-norm transformer block: `x + drop_path(attn(norm1(x)))`, then `x + drop_path(mlp(norm2(x)))`.

    Args:
        config: the model config (attention implementation and the shared fields listed in the module docstring).
        hidden_size: width of this stack (encoders, decoders and predictors differ).
        num_attention_heads: heads of this stack.
        intermediate_size: MLP width.
        drop_path_rate: stochastic-depth probability of this layer.
    """

    def __init__(
        self,
        config: PreTrainedConfig,
        hidden_size: int,
        num_attention_heads: int,
        intermediate_size: int,
        drop_path_rate: float = 0.0,
    ):
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden_size, eps=config.layer_norm_eps)
        self.attention = BrainSelfAttention(config, hidden_size, num_attention_heads)
        self.norm2 = nn.LayerNorm(hidden_size, eps=config.layer_norm_eps)
        self.mlp = BrainMLP(config, hidden_size, intermediate_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.drop_path = BrainDropPath(drop_path_rate)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> torch.Tensor:
        """`hidden_states`: `(batch, seq_len, hidden_size)` -> same shape."""
        attn_output, _ = self.attention(self.norm1(hidden_states), attention_mask, **kwargs)
        hidden_states = hidden_states + self.drop_path(self.dropout(attn_output))
        mlp_output = self.mlp(self.norm2(hidden_states))
        return hidden_states + self.drop_path(self.dropout(mlp_output))


def build_layers(
    config: PreTrainedConfig,
    num_layers: int,
    hidden_size: int,
    num_attention_heads: int,
    intermediate_size: int,
    drop_path_rate: float = 0.0,
) -> nn.ModuleList:
    """A stack of `num_layers` `TransformerLayer`s with stochastic depth rising linearly from 0 to `drop_path_rate`."""
    # Plain Python, not torch.linspace: models are also built under `torch.device("meta")`, where tensors hold no data.
    if num_layers > 1:
        rates = [drop_path_rate * index / (num_layers - 1) for index in range(num_layers)]
    else:
        rates = [drop_path_rate] * num_layers
    return nn.ModuleList(
        TransformerLayer(config, hidden_size, num_attention_heads, intermediate_size, rate) for rate in rates
    )


def build_encoder_layers(config: PreTrainedConfig) -> nn.ModuleList:
    """The encoder stack a model config describes (`num_hidden_layers`, `hidden_size`, `num_attention_heads`,
    `intermediate_size`, `drop_path_rate`)."""
    return build_layers(
        config,
        config.num_hidden_layers,
        config.hidden_size,
        config.num_attention_heads,
        config.intermediate_size,
        config.drop_path_rate,
    )
