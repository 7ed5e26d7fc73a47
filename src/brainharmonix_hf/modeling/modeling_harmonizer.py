# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""The Harmonizer: fuses fMRI and T1 encoder latents into a CLS token and K hub tokens.

Tokens seen by the encoder: CLS, the fMRI latents, the T1 latents and the hub tokens, with a fixed 1D sin-cos position
over `[CLS, fMRI latents, T1 latents]` (CLS at index 0 gets the zero row) and learned positions on the hub tokens.
Padded fMRI tokens and missing modalities are dropped before the transformer (token packing), so their cost is never
paid; CLS and hub tokens are always kept. Each subject's computed sequence is laid out `[CLS, hub tokens, valid
latent tokens]` (attention does not depend on the order; positions are in the embeddings), per subject or the whole
batch as one varlen sequence (`config.token_packing`), so the output tokens lead each subject's sequence whatever the
batch. Output: `[CLS, hub tokens]`.
"""

from dataclasses import dataclass, replace

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutputWithPooling, SequenceClassifierOutput
from transformers.modeling_utils import PreTrainedModel
from transformers.utils import ModelOutput

from ._compat import (
    TransformersKwargs,
    Unpack,
    can_return_tuple,
    capture_outputs,
    init,
    merge_with_config_defaults,
)
from .configuration_harmonizer import HarmonizerConfig
from .harmonizer_tokens import combine_modalities, hide_one_modality, reconstruction_loss_mask
from .hub_mixin import BrainHarmonixHubMixin
from .hub_token_head import HubTokenClassifier, init_hub_token_classifier_output
from .layers import BrainSelfAttention, TransformerLayer, build_encoder_layers, build_layers
from .losses import masked_token_mse, standardise_per_token
from .positions import sincos_1d_with_cls
from .token_packing import (
    PackedTokens,
    attention_inputs,
    leading_tokens,
    pack_tokens,
    packing_layout,
    prepend_tokens,
)


@dataclass
class HarmonizerForPreTrainingOutput(ModelOutput):
    """Output of [`HarmonizerForPreTraining`].

    Args:
        loss: scalar reconstruction loss (MSE to per-token standardised latents over the counted tokens).
        reconstruction: `(batch, num_fmri_tokens + num_t1_tokens, latent_size)` predicted standardised latents.
        last_hidden_state: `(batch, 1 + num_hub_tokens, hidden_size)` encoder output `[CLS, hub tokens]`.
        hidden_states, attentions: encoder layers' outputs over the computed (packed) sequence
            `[CLS, hub tokens, valid latent tokens]` of each subject.
    """

    loss: torch.Tensor | None = None
    reconstruction: torch.Tensor | None = None
    last_hidden_state: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


class HarmonizerEmbeddings(nn.Module):
    """Builds the packed encoder sequence `[CLS, hub tokens, valid latent tokens]` of every subject."""

    def __init__(self, config: HarmonizerConfig):
        super().__init__()
        self.config = config
        # The pretrained ViT-B Harmonizer reads 768-d latents at 768-d width and has no projection.
        self.input_projection = (
            nn.Identity()
            if config.latent_size == config.hidden_size
            else nn.Linear(config.latent_size, config.hidden_size)
        )
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        self.hub_tokens = nn.Parameter(torch.zeros(config.num_hub_tokens, config.hidden_size))
        self.hub_position_embeddings = nn.Parameter(torch.zeros(config.num_hub_tokens, config.hidden_size))
        self.register_buffer("position_embeddings", self.build_position_table(config), persistent=False)

    @staticmethod
    def build_position_table(config: HarmonizerConfig) -> torch.Tensor:
        """`(1 + num_fmri_tokens + num_t1_tokens, hidden_size)` sin-cos table, row 0 (CLS) zero."""
        return sincos_1d_with_cls(config.hidden_size, config.num_fmri_tokens + config.num_t1_tokens)

    def forward(self, latents: torch.Tensor, token_mask: torch.Tensor) -> PackedTokens:
        """
        Args:
            latents: `(batch, num_latent_tokens, latent_size)` fMRI then T1 latents.
            token_mask: `(batch, num_latent_tokens)`, nonzero for tokens to compute.

        Returns:
            The packed sequence `[CLS, hub tokens, valid latent tokens]` of every subject (`hidden_size` wide), per
            subject `(batch, 1 + num_hub_tokens + max_valid, hidden_size)` or the whole batch as one sequence
            (`config.token_packing`). A subject's valid tokens keep their order.
        """
        packed = pack_tokens(latents, token_mask, packing_layout(self.config))
        dtype = self.hub_tokens.dtype
        positions = self.position_embeddings.to(dtype)
        tokens = self.input_projection(packed.hidden_states.to(dtype)) + positions[1:][packed.positions]
        batch_size = latents.shape[0]
        cls = (self.cls_token + positions[:1]).expand(batch_size, -1, -1)
        hub = (self.hub_tokens + self.hub_position_embeddings).expand(batch_size, -1, -1)
        return prepend_tokens(replace(packed, hidden_states=tokens), torch.cat([cls, hub], dim=1))


class HarmonizerDecoder(nn.Module):
    """Pretraining decoder: reconstructs every latent token from the encoder's `[CLS, hub tokens]`.

    Sequence: `[CLS, one mask token per latent position]` plus a fixed sin-cos table, then the hub tokens plus learned
    positions; no attention mask (mask tokens carry no data, so all of them are computed).
    """

    def __init__(self, config: HarmonizerConfig):
        super().__init__()
        self.embed = nn.Linear(config.hidden_size, config.decoder_hidden_size)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, config.decoder_hidden_size))
        self.hub_position_embeddings = nn.Parameter(torch.zeros(config.num_hub_tokens, config.decoder_hidden_size))
        self.register_buffer("position_embeddings", self.build_position_table(config), persistent=False)
        self.layers = build_layers(
            config,
            config.decoder_num_hidden_layers,
            config.decoder_hidden_size,
            config.decoder_num_attention_heads,
            config.decoder_intermediate_size,
        )
        self.layernorm = nn.LayerNorm(config.decoder_hidden_size, eps=config.layer_norm_eps)
        self.prediction = nn.Linear(config.decoder_hidden_size, config.latent_size)

    @staticmethod
    def build_position_table(config: HarmonizerConfig) -> torch.Tensor:
        """`(1 + num_fmri_tokens + num_t1_tokens, decoder_hidden_size)` sin-cos table, row 0 (CLS) zero."""
        return sincos_1d_with_cls(config.decoder_hidden_size, config.num_fmri_tokens + config.num_t1_tokens)

    def forward(self, encoder_output: torch.Tensor) -> torch.Tensor:
        """`(batch, 1 + num_hub_tokens, hidden_size)` -> `(batch, num_latent_tokens, latent_size)`."""
        hidden_states = self.embed(encoder_output)
        batch_size = hidden_states.shape[0]
        num_latent_tokens = self.position_embeddings.shape[0] - 1
        mask_tokens = self.mask_token.expand(batch_size, num_latent_tokens, -1)
        positions = self.position_embeddings.to(hidden_states.dtype)
        hidden_states = torch.cat(
            [
                torch.cat([hidden_states[:, :1], mask_tokens], dim=1) + positions,
                hidden_states[:, 1:] + self.hub_position_embeddings,
            ],
            dim=1,
        )
        for layer in self.layers:
            hidden_states = layer(hidden_states, None)
        hidden_states = self.prediction(self.layernorm(hidden_states))
        return hidden_states[:, 1 : 1 + num_latent_tokens]


class HarmonizerPreTrainedModel(BrainHarmonixHubMixin, PreTrainedModel):
    config: HarmonizerConfig
    base_model_prefix = "harmonizer"
    # Inputs are encoder latents of an fMRI series (time) and a T1 volume (image); fMRI is the primary one.
    main_input_name = "fmri_latents"
    input_modalities = ("time", "image")
    supports_gradient_checkpointing = True
    _input_embed_layer = "embeddings"
    _no_split_modules = ["TransformerLayer"]
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    # Recorded inside `HarmonizerModel` only: the pretraining decoder's layers live outside it and are never recorded.
    _can_record_outputs = {"hidden_states": TransformerLayer, "attentions": BrainSelfAttention}

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        std = self.config.initializer_range
        if init_hub_token_classifier_output(self, module):
            return
        if isinstance(module, nn.Linear):
            # MAE-style init of every other Linear, as the reference pretraining.
            init.xavier_uniform_(module.weight)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, HarmonizerEmbeddings):
            init.normal_(module.cls_token, std=std)
            init.normal_(module.hub_tokens, std=1.0)
            init.normal_(module.hub_position_embeddings, std=1.0)
            init.copy_(module.position_embeddings, module.build_position_table(self.config))
        elif isinstance(module, HarmonizerDecoder):
            init.normal_(module.mask_token, std=std)
            init.normal_(module.hub_position_embeddings, std=1.0)
            init.copy_(module.position_embeddings, module.build_position_table(self.config))


# The Harmonizer's final LayerNorm in a checkpoint of a Harmonizer, a model holding one, or a pretraining folder.
FINAL_LAYERNORM_KEYS = r"(^|\bharmonizer\.)layernorm\."


class HarmonizerModel(HarmonizerPreTrainedModel):
    """Harmonizer encoder. Returns `[CLS, hub tokens]` and, as `pooler_output`, the mean of the hub tokens.

    Args:
        config: the model config.
        add_final_layernorm: apply the final LayerNorm to the output. Fine-tuning heads drop it (the reference removes
            it and normalises the pooled hub tokens instead).
    """

    # From a pretraining folder: the decoder is pretraining-only.
    _keys_to_ignore_on_load_unexpected = [r"^decoder\."]
    _refuses_missing_weights = True
    # A task head's checkpoint has no final LayerNorm (heads drop it): loaded from one, it starts at unit scale and
    # zero shift (a model holding this one gathers the pattern too).
    _keys_to_ignore_on_load_missing = [FINAL_LAYERNORM_KEYS]

    def __init__(self, config: HarmonizerConfig, add_final_layernorm: bool = True):
        super().__init__(config)
        self.embeddings = HarmonizerEmbeddings(config)
        self.layers = build_encoder_layers(config)
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps) if add_final_layernorm else None
        if not add_final_layernorm:  # a checkpoint's final LayerNorm is expected and unused (the model that holds
            # this one gathers the pattern too)
            self._keys_to_ignore_on_load_unexpected = [
                *self._keys_to_ignore_on_load_unexpected,
                FINAL_LAYERNORM_KEYS,
            ]
        self.post_init()

    @merge_with_config_defaults
    @capture_outputs(tie_last_hidden_states=False)
    def forward(
        self,
        fmri_latents: torch.Tensor | None = None,
        fmri_token_mask: torch.Tensor | None = None,
        t1_latents: torch.Tensor | None = None,
        t1_token_mask: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> BaseModelOutputWithPooling:
        r"""
        Args:
            fmri_latents: `(batch, num_fmri_tokens, latent_size)` FunctionJEPA last hidden state, or `None` when no
                subject in the batch has fMRI.
            fmri_token_mask: `(batch, num_fmri_tokens)`, 1 for valid tokens, 0 for padded ones (or all zero for a
                subject without fMRI); `None` means all valid.
            t1_latents: `(batch, num_t1_tokens, latent_size)` StructureMAE last hidden state without CLS, or `None`.
            t1_token_mask: `(batch, num_t1_tokens)`, all zero for a subject without T1; `None` means all valid.

        Every subject needs at least one valid token. While training, `config.modality_dropout` hides one modality
        of subjects that have both.

        Returns:
            `BaseModelOutputWithPooling` with `last_hidden_state` `(batch, 1 + num_hub_tokens, hidden_size)`
            = `[CLS, hub tokens]` (after the final LayerNorm when the model has one), `pooler_output`
            `(batch, hidden_size)` = mean of the hub tokens, and `hidden_states` / `attentions` over the computed
            sequence `[CLS, hub tokens, valid latent tokens]` (see the module docstring).
        """
        latents, token_mask = combine_modalities(self.config, fmri_latents, fmri_token_mask, t1_latents, t1_token_mask)
        if self.training and self.config.modality_dropout > 0:
            token_mask = hide_one_modality(token_mask, self.config.num_fmri_tokens, self.config.modality_dropout)

        packed = self.embeddings(latents, token_mask)
        attention_mask, attention_kwargs = attention_inputs(self.config, packed)
        hidden_states = packed.hidden_states
        for layer in self.layers:
            hidden_states = layer(hidden_states, attention_mask, **kwargs, **attention_kwargs)

        output_tokens = leading_tokens(packed, hidden_states, 1 + self.config.num_hub_tokens)
        if self.layernorm is not None:
            output_tokens = self.layernorm(output_tokens)
        return BaseModelOutputWithPooling(last_hidden_state=output_tokens, pooler_output=output_tokens[:, 1:].mean(1))


class HarmonizerForPreTraining(HarmonizerPreTrainedModel):
    """Harmonizer with the reconstruction decoder: every latent token is predicted back from `[CLS, hub tokens]`.

    Loss: MSE between the reconstruction and the per-token standardised input latents
    (`(t - mean) / sqrt(var + 1e-6)` over the features), over valid tokens (or, with
    `config.include_padded_fmri_in_loss`, also over padded fMRI tokens of subjects with fMRI). The loss is a plain
    mean over the batch's counted tokens, so Trainer divides it for gradient accumulation.
    """

    accepts_loss_kwargs = False

    def __init__(self, config: HarmonizerConfig):
        super().__init__(config)
        self.harmonizer = HarmonizerModel(config)
        self.decoder = HarmonizerDecoder(config)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        fmri_latents: torch.Tensor | None = None,
        fmri_token_mask: torch.Tensor | None = None,
        t1_latents: torch.Tensor | None = None,
        t1_token_mask: torch.Tensor | None = None,
        return_loss: bool = True,
        **kwargs: Unpack[TransformersKwargs],
    ) -> HarmonizerForPreTrainingOutput:
        r"""
        Args:
            fmri_latents, fmri_token_mask, t1_latents, t1_token_mask: as in [`HarmonizerModel.forward`].
            return_loss: compute the reconstruction loss. Tokens hidden by modality dropout still count: the model
                learns to reconstruct the hidden modality from the other one.

        Returns:
            [`HarmonizerForPreTrainingOutput`].
        """
        outputs = self.harmonizer(fmri_latents, fmri_token_mask, t1_latents, t1_token_mask, **kwargs)
        reconstruction = self.decoder(outputs.last_hidden_state)

        loss = None
        if return_loss:
            # The encoder above checked these inputs.
            latents, token_mask = combine_modalities(
                self.config, fmri_latents, fmri_token_mask, t1_latents, t1_token_mask, check_subjects=False
            )
            loss_mask = reconstruction_loss_mask(
                token_mask, self.config.num_fmri_tokens, self.config.include_padded_fmri_in_loss
            )
            loss = masked_token_mse(reconstruction, standardise_per_token(latents), loss_mask)

        return HarmonizerForPreTrainingOutput(
            loss=loss,
            reconstruction=reconstruction,
            last_hidden_state=outputs.last_hidden_state,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )


class HarmonizerForSequenceClassification(HarmonizerPreTrainedModel):
    """Harmonizer encoder (without its final LayerNorm) + mean of the hub tokens + LayerNorm + Linear.

    `config.num_labels` outputs; `config.problem_type` selects the loss as in transformers' sequence classification
    heads (`num_labels == 1` -> regression / MSE, integer labels -> cross-entropy, float multi-hot -> BCE). The loss is
    a plain batch mean, so Trainer divides it for gradient accumulation (use `TrainingArguments.label_smoothing_factor`
    for label smoothing). `config.drop_path_rate` sets the encoder's stochastic depth.
    """

    accepts_loss_kwargs = False

    def __init__(self, config: HarmonizerConfig):
        super().__init__(config)
        self.harmonizer = HarmonizerModel(config, add_final_layernorm=False)
        self.classifier = HubTokenClassifier.from_config(config, config.num_labels)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        fmri_latents: torch.Tensor | None = None,
        fmri_token_mask: torch.Tensor | None = None,
        t1_latents: torch.Tensor | None = None,
        t1_token_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> SequenceClassifierOutput:
        r"""
        Args:
            fmri_latents, fmri_token_mask, t1_latents, t1_token_mask: as in [`HarmonizerModel.forward`].
            labels: `(batch,)` class indices, `(batch, num_labels)` multi-hot floats, or `(batch,)` /
                `(batch, 1)` regression targets.

        Returns:
            `SequenceClassifierOutput` with `logits` `(batch, num_labels)`.
        """
        outputs = self.harmonizer(fmri_latents, fmri_token_mask, t1_latents, t1_token_mask, **kwargs)
        return self.classifier.classify(outputs, labels, self.loss_function, self.config)


class HarmonizerForLinearProbing(HarmonizerPreTrainedModel):
    """Linear probe on the frozen Harmonizer: pooled hub tokens (after the final LayerNorm) -> BatchNorm without
    affine parameters -> Linear. The Harmonizer stays frozen and in eval mode (also under `model.train()`); only the
    Linear has gradients, and the BatchNorm fits its running statistics while training.

    Loads from any Harmonizer checkpoint (`from_pretrained`). The loss is transformers' sequence-classification loss,
    as in [`HarmonizerForSequenceClassification`]: `config.num_labels == 1` -> regression (MSE), integer labels ->
    cross-entropy, float multi-hot labels -> BCE (or `config.problem_type`); a plain batch mean, so Trainer divides
    it for gradient accumulation (use `TrainingArguments.label_smoothing_factor` for label smoothing).
    """

    accepts_loss_kwargs = False

    def __init__(self, config: HarmonizerConfig):
        super().__init__(config)
        # transformers derives the loss from the class name (`LOSS_MAPPING` keys such as "ForSequenceClassification");
        # this name holds none, so the loss type is named here.
        self.loss_type = "ForSequenceClassification"
        self.harmonizer = HarmonizerModel(config)
        self.classifier = HubTokenClassifier.linear_probe(config, config.num_labels)
        self.post_init()

    def initialize_weights(self) -> None:
        """Initialise as usual, then freeze the Harmonizer (also after loading, which builds fresh parameters)."""
        super().initialize_weights()
        self.harmonizer.requires_grad_(False)

    def train(self, mode: bool = True) -> "HarmonizerForLinearProbing":
        super().train(mode)
        self.harmonizer.eval()
        return self

    @can_return_tuple
    def forward(
        self,
        fmri_latents: torch.Tensor | None = None,
        fmri_token_mask: torch.Tensor | None = None,
        t1_latents: torch.Tensor | None = None,
        t1_token_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        pooled_hub_tokens: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> SequenceClassifierOutput:
        r"""
        Args:
            fmri_latents, fmri_token_mask, t1_latents, t1_token_mask: as in [`HarmonizerModel.forward`].
            labels: `(batch,)` class indices, `(batch, num_labels)` multi-hot floats, or `(batch,)` /
                `(batch, 1)` regression targets.
            pooled_hub_tokens: `(batch, hidden_size)` pooled hub tokens the frozen Harmonizer already computed (the
                `embedding` column of a `brainharmonix embed` output), instead of the latents.

        Returns:
            `SequenceClassifierOutput` with `loss` (given labels) and `logits` `(batch, num_labels)`.
        """
        if pooled_hub_tokens is not None:
            outputs = BaseModelOutputWithPooling(pooler_output=pooled_hub_tokens.to(self.classifier.dense.weight.dtype))
        else:
            with torch.no_grad():
                outputs = self.harmonizer(fmri_latents, fmri_token_mask, t1_latents, t1_token_mask, **kwargs)
        return self.classifier.classify(outputs, labels, self.loss_function, self.config)


__all__ = [
    "HarmonizerForLinearProbing",
    "HarmonizerForPreTraining",
    "HarmonizerForPreTrainingOutput",
    "HarmonizerForSequenceClassification",
    "HarmonizerModel",
    "HarmonizerPreTrainedModel",
]
