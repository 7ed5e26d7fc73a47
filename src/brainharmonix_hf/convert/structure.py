# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""BrainHarmonix-S (`harmonix-s/model.pth`, weights under `["model"]`, MAE names) -> StructureMAE.

The encoder (`cls_token`, `patch_embed.proj`, `blocks.N`, `norm`) goes to `StructureMAEModel`. When the file also
holds the MAE decoder (`mask_token`, `decoder_embed`, `decoder_blocks.N`, `decoder_norm`, `decoder_pred`), the model is
`StructureMAEForPreTraining` (encoder under `structure.`). The fixed sin-cos tables `pos_embed` and
`decoder_pos_embed` are rebuilt by the model and checked against the stored ones (the released file has no decoder;
a decoder whose table differs from ours stops the conversion rather than loading a decoder that would not reproduce
the reference).
"""

from collections.abc import Mapping

import torch

from ..modeling.configuration_structure_mae import StructureMAEConfig
from ..modeling.modeling_structure_mae import StructureMAEForPreTraining, StructureMAEModel, padded_sincos_3d
from ..modeling.positions import sincos_3d
from .key_mapping import (
    ConversionPlan,
    Load,
    Regenerate,
    Rule,
    convert_into,
    table_with_cls_row,
    transformer_block_rules,
)

DECODER_KEYS = ("mask_token", "decoder_")


def has_decoder(reference: Mapping[str, torch.Tensor]) -> bool:
    """Whether a harmonix-s state dict holds the MAE pretraining decoder."""
    return any(key.startswith(DECODER_KEYS) for key in reference)


def structure_rules(config: StructureMAEConfig, with_decoder: bool) -> list[Rule]:
    """Rules from the reference MAE names onto `StructureMAEModel` (or `StructureMAEForPreTraining`)."""
    encoder = "structure." if with_decoder else ""
    rules = [
        Load(r"cls_token", f"{encoder}embeddings.cls_token"),
        Load(r"patch_embed\.proj\.(weight|bias)", rf"{encoder}embeddings.patch_embeddings.proj.\1"),
        Regenerate(
            r"pos_embed",
            lambda shape: table_with_cls_row(sincos_3d(config.hidden_size, config.grid_size), shape, "pos_embed"),
            "fixed 3D sin-cos positions (CLS row zero); the model rebuilds them",
        ),
        *transformer_block_rules("blocks", f"{encoder}layers"),
        Load(r"norm\.(weight|bias)", rf"{encoder}layernorm.\1"),
    ]
    if with_decoder:
        rules += [
            Load(r"mask_token", "decoder.mask_token"),
            Load(r"decoder_embed\.(weight|bias)", r"decoder.embed.\1"),
            Regenerate(
                r"decoder_pos_embed",
                lambda shape: table_with_cls_row(
                    padded_sincos_3d(config.decoder_hidden_size, config.grid_size), shape, "decoder_pos_embed"
                ),
                "fixed 3D sin-cos positions of the MAE decoder (CLS row zero); the model rebuilds them",
            ),
            *transformer_block_rules("decoder_blocks", "decoder.layers"),
            Load(r"decoder_norm\.(weight|bias)", r"decoder.norm.\1"),
            Load(r"decoder_pred\.(weight|bias)", r"decoder.pred.\1"),
        ]
    return rules


def convert_structure(
    reference: Mapping[str, torch.Tensor], config: StructureMAEConfig, checkpoint_name: str = "harmonix-s"
) -> tuple[StructureMAEModel | StructureMAEForPreTraining, ConversionPlan]:
    """Convert a harmonix-s state dict (the `["model"]` entry).

    Returns:
        `StructureMAEForPreTraining` when the file holds the MAE decoder, else `StructureMAEModel`, and the plan.
    """
    with_decoder = has_decoder(reference)
    model_class = StructureMAEForPreTraining if with_decoder else StructureMAEModel
    return convert_into(model_class, config, reference, structure_rules(config, with_decoder), None, checkpoint_name)
