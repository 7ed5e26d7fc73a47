# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Harmonizer checkpoints (`harmonizer/model.pth` and stage-2 fine-tuned classifiers, weights under `["model"]`).

The reference lays the encoder sequence out as `[CLS, latent tokens, hub tokens]`, ours as `[CLS, hub tokens, latent
tokens]`. Attention does not depend on the order and every position is added in the embeddings, so the weights map
one-to-one: the fixed `pos_embed` (1D sin-cos over `[CLS, fMRI tokens, T1 tokens]`) is rebuilt by the model and
checked, `latent_tokens` and `enc_latent_token_positional_embedding` become the hub tokens and their positions.

- Stage 1 (pretraining): the encoder, and the reconstruction decoder when present (`decoder_*`, `mask_token`,
  `dec_latent_token_positional_embedding`) -> `HarmonizerForPreTraining` (or `HarmonizerModel` without decoder).
- Stage 2 (fine-tuning, global pooling): the encoder without its final norm, `fc_norm` and `head` ->
  `HarmonizerForSequenceClassification` (`num_labels` from the head).
"""

from collections.abc import Mapping

import torch

from ..modeling.configuration_harmonizer import HarmonizerConfig
from ..modeling.modeling_harmonizer import (
    HarmonizerForPreTraining,
    HarmonizerForSequenceClassification,
    HarmonizerModel,
)
from ..modeling.positions import sincos_1d_with_cls
from .key_mapping import (
    ConversionError,
    ConversionPlan,
    Load,
    Regenerate,
    Rule,
    convert_into,
    table_with_cls_row,
    transformer_block_rules,
)

DECODER_KEYS = ("decoder_", "mask_token", "dec_latent_token_positional_embedding")


def _position_table(width: int, config: HarmonizerConfig, name: str):
    num_positions = config.num_fmri_tokens + config.num_t1_tokens
    return lambda shape: table_with_cls_row(sincos_1d_with_cls(width, num_positions)[1:], shape, name)


def encoder_rules(config: HarmonizerConfig, target: str, final_norm: bool) -> list[Rule]:
    """Rules for the reference Harmonizer encoder onto `HarmonizerModel` under `target`."""
    rules = [
        Load(r"cls_token", f"{target}embeddings.cls_token"),
        Regenerate(
            r"pos_embed",
            _position_table(config.hidden_size, config, "pos_embed"),
            "fixed 1D sin-cos over [CLS, fMRI tokens, T1 tokens] (CLS row zero); the model rebuilds it. Positions are "
            "added in the embeddings, so the model's [CLS, hub, tokens] layout gives every token the reference's "
            "position",
        ),
        Load(r"latent_tokens", f"{target}embeddings.hub_tokens", squeeze_leading=True),
        Load(
            r"enc_latent_token_positional_embedding",
            f"{target}embeddings.hub_position_embeddings",
            squeeze_leading=True,
        ),
        *transformer_block_rules("blocks", f"{target}layers"),
    ]
    if final_norm:
        rules.append(Load(r"norm\.(weight|bias)", rf"{target}layernorm.\1"))
    return rules


def decoder_rules(config: HarmonizerConfig) -> list[Rule]:
    """Rules for the reference reconstruction decoder onto `HarmonizerDecoder` (`decoder.`)."""
    return [
        Load(r"decoder_embed\.(weight|bias)", r"decoder.embed.\1"),
        Load(r"mask_token", "decoder.mask_token"),
        Regenerate(
            r"decoder_pos_embed",
            _position_table(config.decoder_hidden_size, config, "decoder_pos_embed"),
            "fixed 1D sin-cos of the decoder (CLS row zero); the model rebuilds it",
        ),
        Load(r"dec_latent_token_positional_embedding", "decoder.hub_position_embeddings", squeeze_leading=True),
        *transformer_block_rules("decoder_blocks", "decoder.layers"),
        Load(r"decoder_norm\.(weight|bias)", r"decoder.layernorm.\1"),
        Load(r"decoder_pred\.(weight|bias)", r"decoder.prediction.\1"),
    ]


def convert_harmonizer(
    reference: Mapping[str, torch.Tensor], config: HarmonizerConfig, checkpoint_name: str = "harmonizer"
) -> tuple[HarmonizerModel | HarmonizerForPreTraining, ConversionPlan]:
    """Convert a stage-1 Harmonizer state dict: `HarmonizerForPreTraining` with its decoder, else `HarmonizerModel`."""
    if "head.weight" in reference:
        raise ConversionError(
            f"{checkpoint_name} has a classification head (a stage-2 fine-tuned checkpoint): convert it as the "
            "classifier (--classifier), with the stage-1 Harmonizer as --harmonizer."
        )
    if any(key.startswith(DECODER_KEYS) for key in reference):
        model_class, rules = (
            HarmonizerForPreTraining,
            encoder_rules(config, "harmonizer.", True) + decoder_rules(config),
        )
    else:
        model_class, rules = HarmonizerModel, encoder_rules(config, "", True)
    return convert_into(model_class, config, reference, rules, None, checkpoint_name)


def convert_classifier(
    reference: Mapping[str, torch.Tensor], config: HarmonizerConfig, checkpoint_name: str = "classifier"
) -> tuple[HarmonizerForSequenceClassification, ConversionPlan]:
    """Convert a stage-2 fine-tuned state dict (global pooling: `fc_norm` + `head`, no final encoder norm).

    `num_labels` comes from the head's shape.
    """
    if "head.weight" not in reference or "fc_norm.weight" not in reference:
        raise ConversionError(
            f"{checkpoint_name} has no 'head.weight' / 'fc_norm.weight': it is not a stage-2 fine-tuned classifier "
            "with global pooling of the hub tokens."
        )
    num_labels = int(reference["head.weight"].shape[0])
    fields = {key: value for key, value in config.to_dict().items() if key not in ("id2label", "label2id")}
    config = HarmonizerConfig.from_dict({**fields, "num_labels": num_labels})
    rules = [
        *encoder_rules(config, "harmonizer.", False),
        Load(r"fc_norm\.(weight|bias)", r"classifier.norm.\1"),
        Load(r"head\.(weight|bias)", r"classifier.dense.\1"),
    ]
    return convert_into(HarmonizerForSequenceClassification, config, reference, rules, None, checkpoint_name)
