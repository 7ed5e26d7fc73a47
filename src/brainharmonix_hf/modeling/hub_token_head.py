# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""The task heads on pooled hub tokens, shared by every sequence classifier and linear probe (Harmonizer and end-to-end
BrainHarmonix): pooled hub tokens -> normalisation -> Linear.

- Fine-tuning head (`HubTokenClassifier.from_config`): LayerNorm -> Linear, on the mean of the K hub tokens (the
  Harmonizer's `pooler_output`, CLS excluded) of an encoder without its final LayerNorm, as the reference fine-tuning.
- Linear probe (`HubTokenClassifier.linear_probe`): BatchNorm without affine parameters -> Linear, on the pooled hub
  tokens of the frozen encoder (after its final LayerNorm), as MAE-style linear probing.

The Linear starts near zero: the head declares the std of its output layer (`initializer_range`: the config's
`classifier_initializer_range`, 2e-5, for fine-tuning; 0.01 for the probe), and each model's `_init_weights` draws it
through `init_hub_token_classifier_output` (transformers' per-module init visits the Linear itself, not the
parameter-less head, in models defined outside transformers).
"""

import torch
from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.utils import ModelOutput

from ._compat import init
from .configuration_harmonizer import HarmonizerConfig

LINEAR_PROBE_INITIALIZER_RANGE = 0.01


class HubTokenClassifier(nn.Module):
    """`(batch, hidden_size)` pooled hub tokens -> `norm` -> Linear -> `(batch, num_labels)` logits.

    Args:
        norm: the normalisation of the pooled tokens (LayerNorm for fine-tuning, BatchNorm without affine parameters
            for linear probing).
        hidden_size: width of the hub tokens.
        num_labels: outputs (1 for regression).
        initializer_range: std of the truncated-normal init of the output Linear.
    """

    def __init__(self, norm: nn.Module, hidden_size: int, num_labels: int, initializer_range: float):
        super().__init__()
        self.initializer_range = initializer_range
        self.norm = norm
        self.dense = nn.Linear(hidden_size, num_labels)

    @classmethod
    def from_config(cls, harmonizer_config: HarmonizerConfig, num_labels: int) -> "HubTokenClassifier":
        """The fine-tuning head (LayerNorm -> Linear) on the hub tokens of a Harmonizer built from
        `harmonizer_config`."""
        norm = nn.LayerNorm(harmonizer_config.hidden_size, eps=harmonizer_config.layer_norm_eps)
        return cls(norm, harmonizer_config.hidden_size, num_labels, harmonizer_config.classifier_initializer_range)

    @classmethod
    def linear_probe(cls, harmonizer_config: HarmonizerConfig, num_labels: int) -> "HubTokenClassifier":
        """The linear probe (BatchNorm without affine parameters -> Linear) on the hub tokens of a Harmonizer built
        from `harmonizer_config`."""
        norm = nn.BatchNorm1d(harmonizer_config.hidden_size, affine=False, eps=1e-6)
        return cls(norm, harmonizer_config.hidden_size, num_labels, LINEAR_PROBE_INITIALIZER_RANGE)

    def forward(self, pooled_hub_tokens: torch.Tensor) -> torch.Tensor:
        return self.dense(self.norm(pooled_hub_tokens))

    def classify(
        self, outputs: ModelOutput, labels: torch.Tensor | None, loss_function, config
    ) -> SequenceClassifierOutput:
        """Logits from an encoder output's `pooler_output` (the mean hub token) and, with `labels`, the loss
        `loss_function(labels, logits, config)` (transformers' sequence-classification loss: `config.num_labels` and
        `config.problem_type` select regression, single- or multi-label classification)."""
        logits = self(outputs.pooler_output)
        loss = loss_function(labels, logits, config) if labels is not None else None
        return SequenceClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )


def init_hub_token_classifier_output(model: nn.Module, module: nn.Module) -> bool:
    """If `module` is the output Linear of a `HubTokenClassifier` inside `model`, draw it (truncated normal with the
    head's `initializer_range`, zero bias; loaded weights are kept) and return `True`; else do nothing and return
    `False`."""
    for head in model.modules():
        if isinstance(head, HubTokenClassifier) and head.dense is module:
            init.trunc_normal_(module.weight, std=head.initializer_range)
            init.zeros_(module.bias)
            return True
    return False


__all__ = ["LINEAR_PROBE_INITIALIZER_RANGE", "HubTokenClassifier", "init_hub_token_classifier_output"]
