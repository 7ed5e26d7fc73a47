# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""The task head of both sequence classifiers (Harmonizer and end-to-end BrainHarmonix): pooled hub tokens ->
LayerNorm -> Linear.

The pooled input is the mean of the K hub tokens (the Harmonizer's `pooler_output`, CLS excluded) taken from an encoder
without its final LayerNorm, as the reference fine-tuning does. The Linear starts near zero: the head declares the std
of its output layer (`initializer_range`, 2e-5 by default), and each model's `_init_weights` draws it through
`init_hub_token_classifier_output` (transformers' per-module init visits the Linear itself, not the parameter-less head,
in models defined outside transformers).
"""

import torch
from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.utils import ModelOutput

from ._compat import init
from .configuration_harmonizer import HarmonizerConfig


class HubTokenClassifier(nn.Module):
    """`(batch, hidden_size)` pooled hub tokens -> `(batch, num_labels)` logits.

    Args:
        hidden_size: width of the hub tokens.
        num_labels: outputs (1 for regression).
        layer_norm_eps: epsilon of the LayerNorm.
        initializer_range: std of the truncated-normal init of the output Linear.
    """

    def __init__(self, hidden_size: int, num_labels: int, layer_norm_eps: float, initializer_range: float):
        super().__init__()
        self.initializer_range = initializer_range
        self.norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.dense = nn.Linear(hidden_size, num_labels)

    @classmethod
    def from_config(cls, harmonizer_config: HarmonizerConfig, num_labels: int) -> "HubTokenClassifier":
        """The head on the hub tokens of a Harmonizer built from `harmonizer_config`."""
        return cls(
            harmonizer_config.hidden_size,
            num_labels,
            harmonizer_config.layer_norm_eps,
            harmonizer_config.classifier_initializer_range,
        )

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


__all__ = ["HubTokenClassifier", "init_hub_token_classifier_output"]
