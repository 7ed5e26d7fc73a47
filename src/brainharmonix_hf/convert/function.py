# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""BrainHarmonix-F (`harmonix-f/model.pth`, a flat state dict) -> FunctionJEPA.

The file holds three parts: `encoder_ema.*` (the EMA target encoder, the one used downstream), `encoder.*` (the
context encoder) and `decoder.*` (the JEPA predictor). With all three the model is `FunctionJEPAForPreTraining`
(`target_encoder.`, `encoder.`, `predictor.`); `FunctionJEPAModel.from_pretrained` on it loads the target encoder.
With `encoder_ema.*` alone the model is `FunctionJEPAModel`.

Facts the rules encode (the reference release's layout):
- the reference encoder and predictor share one position module, so `encoder.pos_embed.*` and
  `decoder.predictor_pos_embed.*` hold the same projections: loaded once, the copy checked equal;
- the target encoder has its own copy of that module, including the predictor's projection, which nothing reads;
- `emb_h_encoder` / `emb_h_decoder` are fixed time sin-cos tables laid out for the pretraining grid (400 × 11 time
  patches in the release): each is checked against the sin-cos table of its own grid and rebuilt by the model for the
  model's grid (400 × 18);
- the ROI tables are not in the file (the reference reads CSVs at init): the converter supplies them, rows exactly as
  the reference used them.
"""

from collections.abc import Mapping

import torch

from ..modeling.configuration_function_jepa import FunctionJEPAConfig
from ..modeling.modeling_function_jepa import FunctionJEPAForPreTraining, FunctionJEPAModel
from ..modeling.positions import sincos_1d
from .key_mapping import (
    ConversionError,
    ConversionPlan,
    Load,
    Regenerate,
    Rule,
    SameAs,
    Skip,
    convert_into,
    transformer_block_rules,
)

REFERENCE_ATLAS = "schaefer400_17networks"
REFERENCE_ROI_ORDER = (
    "Schaefer 2018 400 parcels in 17-network order (labels 1-200 left / 201-400 right), the order of the reference "
    "data and of its gradient table. The geometric-harmonics table keeps the reference's rows, which are in 7-network "
    "order: the released weights were trained with that pairing, so it is kept unchanged. Permute 7-network series "
    "into 17-network order before use."
)
TARGET_ENCODER, CONTEXT_ENCODER, PREDICTOR = "encoder_ema", "encoder", "decoder"


def reference_function_config(config: FunctionJEPAConfig) -> FunctionJEPAConfig:
    """A copy of `config` that states the reference's ROI order (`atlas="schaefer400_17networks"`) and that its ROI
    tables are the reference's own (`roi_tables="custom"`: stored in the weights, not the package's shipped ones)."""
    return FunctionJEPAConfig.from_dict(
        {**config.to_dict(), "atlas": REFERENCE_ATLAS, "roi_order": REFERENCE_ROI_ORDER, "roi_tables": "custom"}
    )


def time_table(num_rois: int, width: int, name: str):
    """Expected values of a stored time sin-cos table `(num_rois · W', width)` (or with a leading 1) for its own grid:
    row `n = roi · W' + t` holds `sincos(t)`."""

    def table(shape: tuple[int, ...]) -> torch.Tensor:
        core = shape[1:] if len(shape) == 3 and shape[0] == 1 else shape
        if len(core) != 2 or core[1] != width or core[0] % num_rois != 0:
            raise ConversionError(
                f"{name} is stored as {tuple(shape)}; expected (num_rois · time patches, {width}) with num_rois = "
                f"{num_rois}"
            )
        num_time_patches = core[0] // num_rois
        return sincos_1d(width, torch.arange(num_time_patches).repeat(num_rois)).reshape(shape)

    return table


def encoder_rules(source: str, target: str, config: FunctionJEPAConfig, has_predictor: bool) -> list[Rule]:
    """Rules for one reference encoder (`source` = "encoder_ema" or "encoder") onto ours under `target`."""
    pos = rf"{source}\.pos_embed"
    rules = [
        Load(rf"{source}\.patch_embed\.proj\.(weight|bias)", rf"{target}patch_embedding.proj.\1"),
        Load(rf"{pos}\.geo_harm_proj\.(weight|bias)", rf"{target}roi_positions.geometric_projection.\1"),
        Load(rf"{pos}\.grad_proj\.(weight|bias)", rf"{target}roi_positions.gradient_projection.\1"),
        Regenerate(
            rf"{pos}\.emb_h_encoder",
            time_table(config.num_rois, config.hidden_size // 2, "emb_h_encoder"),
            "fixed time sin-cos of the encoder, laid out for the pretraining grid; the model rebuilds it for its grid",
        ),
        Regenerate(
            rf"{pos}\.emb_h_decoder",
            time_table(config.num_rois, config.predictor_hidden_size // 2, "emb_h_decoder"),
            "fixed time sin-cos of the predictor, laid out for the pretraining grid; the model rebuilds it",
        ),
        *transformer_block_rules(f"{source}.blocks", f"{target}layers"),
        Load(rf"{source}\.norm\.(weight|bias)", rf"{target}layernorm.\1"),
    ]
    if source == CONTEXT_ENCODER:
        rules.append(
            SameAs(
                rf"{pos}\.decoder_pos_embed_proj\.(weight|bias)",
                rf"{PREDICTOR}.predictor_pos_embed.decoder_pos_embed_proj.\1",
                "the encoder and predictor share one position module; loaded once, as the predictor's projection",
            )
        )
    else:
        reason = "the target encoder's copy of the predictor's position projection; the target encoder never predicts"
        if not has_predictor:
            reason += " (and this file has no predictor)"
        rules.append(Skip(rf"{pos}\.decoder_pos_embed_proj\.(weight|bias)", reason))
    return rules


def predictor_rules(config: FunctionJEPAConfig) -> list[Rule]:
    """Rules for the reference predictor (`decoder.*`) onto `FunctionJEPAPredictor` (`predictor.`)."""
    pos = rf"{PREDICTOR}\.predictor_pos_embed"
    shared = "the encoder and predictor share one position module; loaded once, as the context encoder's projection"
    return [
        Load(rf"{PREDICTOR}\.mask_token", "predictor.mask_token"),
        Load(rf"{PREDICTOR}\.predictor_embed\.(weight|bias)", r"predictor.embed.\1"),
        Load(rf"{pos}\.decoder_pos_embed_proj\.(weight|bias)", r"predictor.position_projection.\1"),
        SameAs(rf"{pos}\.geo_harm_proj\.(weight|bias)", rf"{CONTEXT_ENCODER}.pos_embed.geo_harm_proj.\1", shared),
        SameAs(rf"{pos}\.grad_proj\.(weight|bias)", rf"{CONTEXT_ENCODER}.pos_embed.grad_proj.\1", shared),
        Regenerate(
            rf"{pos}\.emb_h_encoder",
            time_table(config.num_rois, config.hidden_size // 2, "emb_h_encoder"),
            "fixed time sin-cos (shared module's copy); the model rebuilds it for its grid",
        ),
        Regenerate(
            rf"{pos}\.emb_h_decoder",
            time_table(config.num_rois, config.predictor_hidden_size // 2, "emb_h_decoder"),
            "fixed time sin-cos of the predictor; the model rebuilds it for its grid",
        ),
        *transformer_block_rules(f"{PREDICTOR}.predictor_blocks", "predictor.layers"),
        Load(rf"{PREDICTOR}\.predictor_norm\.(weight|bias)", r"predictor.norm.\1"),
        Load(rf"{PREDICTOR}\.predictor_proj\.(weight|bias)", r"predictor.proj.\1"),
    ]


def function_parts(reference: Mapping[str, torch.Tensor]) -> set[str]:
    """Which of `encoder_ema`, `encoder`, `decoder` a harmonix-f state dict holds."""
    return {key.split(".", 1)[0] for key in reference} & {TARGET_ENCODER, CONTEXT_ENCODER, PREDICTOR}


def convert_function(
    reference: Mapping[str, torch.Tensor],
    config: FunctionJEPAConfig,
    geometric_harmonics: torch.Tensor,
    functional_gradients: torch.Tensor,
    table_sources: tuple[str, str] = ("geometric-harmonics CSV", "gradients CSV"),
    checkpoint_name: str = "harmonix-f",
) -> tuple[FunctionJEPAModel | FunctionJEPAForPreTraining, ConversionPlan]:
    """Convert a harmonix-f state dict.

    Args:
        reference: the flat state dict.
        config: sizes of the model; its atlas and ROI order are replaced by the reference's
            (`reference_function_config`).
        geometric_harmonics, functional_gradients: the reference ROI tables, rows as the reference used them.
        table_sources: where the tables come from, for the record.

    Returns:
        `FunctionJEPAForPreTraining` (all three parts) or `FunctionJEPAModel` (`encoder_ema.*` only), and the plan.
    """
    config = reference_function_config(config)
    parts = function_parts(reference)
    if TARGET_ENCODER not in parts:
        raise ConversionError(
            f"{checkpoint_name} has no 'encoder_ema.*' keys (the target encoder used downstream); is it the "
            "harmonix-f checkpoint?"
        )
    pretraining = CONTEXT_ENCODER in parts or PREDICTOR in parts
    if pretraining and parts != {TARGET_ENCODER, CONTEXT_ENCODER, PREDICTOR}:
        missing = sorted({CONTEXT_ENCODER, PREDICTOR} - parts)
        raise ConversionError(f"{checkpoint_name} holds part of the pretraining model; it lacks {missing} keys.")
    model_class = FunctionJEPAForPreTraining if pretraining else FunctionJEPAModel
    tables = {
        "geometric_harmonics": (geometric_harmonics, table_sources[0]),
        "functional_gradients": (functional_gradients, table_sources[1]),
    }
    supplied = {key: tables[which] for key, which in roi_table_keys(pretraining).items()}
    return convert_into(model_class, config, reference, function_rules(config, pretraining), supplied, checkpoint_name)


def _encoder_prefixes(pretraining: bool) -> dict[str, str]:
    if pretraining:
        return {TARGET_ENCODER: "target_encoder.", CONTEXT_ENCODER: "encoder."}
    return {TARGET_ENCODER: ""}


def function_rules(config: FunctionJEPAConfig, pretraining: bool) -> list[Rule]:
    """Rules for a harmonix-f file: the target encoder, and with `pretraining` the context encoder and predictor."""
    rules = []
    for source, target in _encoder_prefixes(pretraining).items():
        rules += encoder_rules(source, target, config, pretraining)
    return rules + predictor_rules(config) if pretraining else rules


def roi_table_keys(pretraining: bool) -> dict[str, str]:
    """Model keys of the ROI tables the converter supplies -> which table ("geometric_harmonics" or
    "functional_gradients")."""
    return {
        f"{target}roi_positions.{which}": which
        for target in _encoder_prefixes(pretraining).values()
        for which in ("geometric_harmonics", "functional_gradients")
    }
