"""Strict mapping: every reference key is accounted for, anything else fails naming the key; round trip back to the
reference layout; the published sizes' key and shape table (meta tensors, nothing allocated)."""

import pytest
import reference_checkpoints as ref
import torch

from brainharmonix_hf import (
    BrainHarmonixConfig,
    FunctionJEPAForPreTraining,
    HarmonizerForPreTraining,
    StructureMAEModel,
)
from brainharmonix_hf.convert import ConversionError, convert_reference_release
from brainharmonix_hf.convert.function import convert_function, function_rules, roi_table_keys
from brainharmonix_hf.convert.harmonizer import (
    convert_classifier,
    convert_harmonizer,
    decoder_rules,
)
from brainharmonix_hf.convert.harmonizer import encoder_rules as harmonizer_encoder_rules
from brainharmonix_hf.convert.key_mapping import plan_conversion
from brainharmonix_hf.convert.structure import convert_structure, structure_rules

CONFIG = ref.tiny_config()


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    return ref.write_table_csvs(tmp_path_factory.mktemp("tables"))


def convert_tiny_function(state, tables):
    return convert_function(state, CONFIG.function_config, tables[2], tables[3])


def test_round_trip_back_to_the_reference_layout(tables):
    structure, function = ref.structure_reference(), ref.function_reference()
    harmonizer, classifier = ref.harmonizer_reference(), ref.classifier_reference()
    conversions = {
        "structure": (structure, convert_structure(structure, CONFIG.structure_config)),
        "function": (function, convert_tiny_function(function, tables)),
        "harmonizer": (harmonizer, convert_harmonizer(harmonizer, CONFIG.harmonizer_config)),
        "classifier": (classifier, convert_classifier(classifier, CONFIG.harmonizer_config)),
    }
    for name, (original, (model, plan)) in conversions.items():
        back = plan.to_reference(model.state_dict())
        assert set(back) == set(original) - set(plan.skipped), name
        for key, tensor in back.items():
            # Weights come back bit for bit; the rebuilt sin-cos tables (11-patch pretraining grid for harmonix-f)
            # equal the stored ones to float32 rounding.
            tolerance = 1e-6 if key in plan.regenerated else 0.0
            torch.testing.assert_close(tensor, original[key], atol=tolerance, rtol=0, msg=f"{name}: {key}")
    assert set(conversions["function"][1][1].skipped) == {
        "encoder_ema.pos_embed.decoder_pos_embed_proj.weight",
        "encoder_ema.pos_embed.decoder_pos_embed_proj.bias",
    }


def test_an_unknown_key_fails_naming_it():
    state = ref.structure_reference() | {"blocks.0.attn.relative_position_bias": torch.zeros(3)}
    with pytest.raises(ConversionError, match=r"'blocks\.0\.attn\.relative_position_bias' \(3,\) is unknown"):
        convert_structure(state, CONFIG.structure_config)


def test_a_wrong_shape_fails_naming_both_keys():
    state = ref.structure_reference() | {"norm.weight": torch.ones(23)}
    with pytest.raises(ConversionError, match=r"'norm\.weight' has shape \(23,\) but model key 'structure\.layernorm"):
        convert_structure(state, CONFIG.structure_config)


def test_a_missing_weight_fails_naming_the_model_key():
    state = ref.structure_reference()
    del state["blocks.1.mlp.fc2.bias"]
    with pytest.raises(
        ConversionError, match=r"model key 'structure\.layers\.1\.mlp\.fc2\.bias' \(24,\) gets no weight"
    ):
        convert_structure(state, CONFIG.structure_config)


def test_an_extra_layer_fails_and_says_to_check_the_config():
    state = ref.structure_reference(with_decoder=False)
    state |= {key.replace("blocks.1.", "blocks.2."): value for key, value in state.items() if "blocks.1." in key}
    with pytest.raises(ConversionError, match=r"(?s)maps to 'layers\.2\.norm1\.weight'.*config's sizes"):
        convert_structure(state, CONFIG.structure_config)


def test_a_position_table_in_another_layout_fails():
    state = ref.structure_reference()
    table = state["pos_embed"].clone()
    third = ref.WIDTH // 3
    state["pos_embed"] = torch.cat([table[..., third : 2 * third], table[..., :third], table[..., 2 * third :]], -1)
    with pytest.raises(ConversionError, match=r"fixed table 'pos_embed' differs .* another position layout"):
        convert_structure(state, CONFIG.structure_config)


def test_fmri_time_tables_must_fit_the_roi_grid(tables):
    state = ref.function_reference()
    state["encoder_ema.pos_embed.emb_h_encoder"] = state["encoder_ema.pos_embed.emb_h_encoder"][:-1]
    with pytest.raises(ConversionError, match=r"'encoder_ema\.pos_embed\.emb_h_encoder': .*num_rois = 400"):
        convert_tiny_function(state, tables)


def test_shared_position_module_copies_must_be_equal(tables):
    state = ref.function_reference()
    key = "decoder.predictor_pos_embed.geo_harm_proj.weight"
    state[key] = state[key] + 1e-3
    with pytest.raises(ConversionError, match=rf"'{key}' should be the same tensor as 'encoder\.pos_embed"):
        convert_tiny_function(state, tables)


def test_target_encoder_alone_gives_the_encoder_model(tables):
    state = {key: value for key, value in ref.function_reference().items() if key.startswith("encoder_ema.")}
    model, _ = convert_tiny_function(state, tables)
    assert type(model).__name__ == "FunctionJEPAModel"
    assert torch.equal(model.roi_positions.geometric_harmonics, tables[2])
    partial = {key: value for key, value in ref.function_reference().items() if not key.startswith("decoder.")}
    with pytest.raises(ConversionError, match=r"lacks \['decoder'\]"):
        convert_tiny_function(partial, tables)


def test_stage_files_given_in_the_wrong_place_are_refused():
    with pytest.raises(ConversionError, match="classification head"):
        convert_harmonizer(ref.classifier_reference(), CONFIG.harmonizer_config)
    with pytest.raises(ConversionError, match="not a stage-2 fine-tuned classifier"):
        convert_classifier(ref.harmonizer_reference(), CONFIG.harmonizer_config)


def test_release_arguments_and_tables_are_checked(tmp_path, tables):
    gradients_path = tables[1]
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("keep me")
    with pytest.raises(ConversionError, match="not an empty folder"):
        convert_reference_release(tmp_path / "taken", harmonizer="h.pth")
    assert (tmp_path / "taken" / "notes.txt").read_text() == "keep me"
    with pytest.raises(ConversionError, match="needs the reference ROI tables"):
        convert_reference_release(tmp_path / "out", function="f.pth")
    with pytest.raises(ConversionError, match="pass --structure and --function"):
        convert_reference_release(tmp_path / "out", classifier="c.pth")
    torch.save(ref.function_reference(), tmp_path / "f.pth")
    with pytest.raises(
        ConversionError,
        match=r"gradient_mapping_400\.csv: the geometric harmonics table is 400 × 30 but the model needs 400 ROIs",
    ):
        convert_reference_release(
            tmp_path / "out", function=tmp_path / "f.pth", geometric_harmonics=gradients_path, gradients=gradients_path
        )
    assert not (tmp_path / "out").exists()


# --- published sizes: key and shape table of the released files (reference/official.md §8), on meta tensors --------


def vit_shapes(prefix: str, depth: int, width: int, mlp: int) -> dict:
    shapes = {}
    for index in range(depth):
        block = f"{prefix}.{index}"
        shapes |= {f"{block}.norm1.weight": (width,), f"{block}.norm1.bias": (width,)}
        shapes |= {f"{block}.attn.qkv.weight": (3 * width, width), f"{block}.attn.qkv.bias": (3 * width,)}
        shapes |= {f"{block}.attn.proj.weight": (width, width), f"{block}.attn.proj.bias": (width,)}
        shapes |= {f"{block}.norm2.weight": (width,), f"{block}.norm2.bias": (width,)}
        shapes |= {f"{block}.mlp.fc1.weight": (mlp, width), f"{block}.mlp.fc1.bias": (mlp,)}
        shapes |= {f"{block}.mlp.fc2.weight": (width, mlp), f"{block}.mlp.fc2.bias": (width,)}
    return shapes


def linear_shapes(name: str, out_features: int, in_features: int) -> dict:
    return {f"{name}.weight": (out_features, in_features), f"{name}.bias": (out_features,)}


def published_function_shapes() -> dict:
    shapes = {}
    for encoder in ("encoder", "encoder_ema"):
        shapes |= {f"{encoder}.patch_embed.proj.weight": (768, 1, 1, 48), f"{encoder}.patch_embed.proj.bias": (768,)}
        shapes |= vit_shapes(f"{encoder}.blocks", 12, 768, 3072) | linear_shapes(f"{encoder}.norm", 768, 1)
        shapes[f"{encoder}.norm.weight"] = (768,)
    for module in ("encoder.pos_embed", "encoder_ema.pos_embed", "decoder.predictor_pos_embed"):
        shapes |= {f"{module}.emb_h_encoder": (400 * 11, 384), f"{module}.emb_h_decoder": (400 * 11, 192)}
        shapes |= linear_shapes(f"{module}.geo_harm_proj", 384, 200) | linear_shapes(f"{module}.grad_proj", 384, 30)
        shapes |= linear_shapes(f"{module}.decoder_pos_embed_proj", 192, 384)
    shapes |= {"decoder.mask_token": (1, 1, 384)} | linear_shapes("decoder.predictor_embed", 384, 768)
    shapes |= vit_shapes("decoder.predictor_blocks", 6, 384, 1536) | linear_shapes("decoder.predictor_proj", 768, 384)
    shapes |= {"decoder.predictor_norm.weight": (384,), "decoder.predictor_norm.bias": (384,)}
    return shapes


def published_structure_shapes() -> dict:
    shapes = {"cls_token": (1, 1, 768), "pos_embed": (1, 1201, 768), "patch_embed.proj.weight": (768, 1, 16, 16, 16)}
    shapes |= {"patch_embed.proj.bias": (768,), "norm.weight": (768,), "norm.bias": (768,)}
    return shapes | vit_shapes("blocks", 12, 768, 3072)


def published_harmonizer_shapes() -> dict:
    shapes = {"cls_token": (1, 1, 768), "pos_embed": (1, 8401, 768), "latent_tokens": (128, 768)}
    shapes |= {"enc_latent_token_positional_embedding": (128, 768), "norm.weight": (768,), "norm.bias": (768,)}
    shapes |= vit_shapes("blocks", 12, 768, 3072) | linear_shapes("decoder_embed", 512, 768)
    shapes |= {"mask_token": (1, 1, 512), "decoder_pos_embed": (1, 8401, 512)}
    shapes |= {"dec_latent_token_positional_embedding": (1, 128, 512)}
    shapes |= vit_shapes("decoder_blocks", 8, 512, 2048) | linear_shapes("decoder_pred", 768, 512)
    return shapes | {"decoder_norm.weight": (512,), "decoder_norm.bias": (512,)}


def meta(shapes: dict) -> dict:
    return {key: torch.empty(shape, device="meta") for key, shape in shapes.items()}


def test_published_sizes_map_every_key_with_matching_shapes():
    config = BrainHarmonixConfig()
    with torch.device("meta"):
        structure = StructureMAEModel(config.structure_config)
        function = FunctionJEPAForPreTraining(config.function_config)
        harmonizer = HarmonizerForPreTraining(config.harmonizer_config)
    structure_plan = plan_conversion(
        meta(published_structure_shapes()),
        structure.state_dict(),
        structure_rules(config.structure_config, with_decoder=False),
    )
    function_plan = plan_conversion(
        meta(published_function_shapes()),
        function.state_dict(),
        function_rules(config.function_config, pretraining=True),
        dict.fromkeys(roi_table_keys(pretraining=True), "CSV"),
    )
    harmonizer_plan = plan_conversion(
        meta(published_harmonizer_shapes()),
        harmonizer.state_dict(),
        harmonizer_encoder_rules(config.harmonizer_config, "harmonizer.", True)
        + decoder_rules(config.harmonizer_config),
    )
    assert (
        len(structure_plan.loads) == len(structure.state_dict()) == 3 + 12 * 12 + 2
    )  # cls token, patch kernel and bias, 12 blocks, final norm
    assert set(structure_plan.regenerated) == {"pos_embed"}
    assert function_plan.loads["target_encoder.patch_embedding.proj.weight"] == "encoder_ema.patch_embed.proj.weight"
    assert function_plan.reference_shapes["encoder_ema.patch_embed.proj.weight"] == (768, 1, 1, 48)
    assert (
        len(function_plan.regenerated) == 6 and len(function_plan.duplicates) == 6 and len(function_plan.skipped) == 2
    )
    assert len(function_plan.loads) + len(function_plan.supplied) == len(function.state_dict())
    assert harmonizer_plan.squeezed == {"decoder.hub_position_embeddings": (128, 512)}
    assert set(harmonizer_plan.regenerated) == {"pos_embed", "decoder_pos_embed"}
    assert len(harmonizer_plan.loads) == len(harmonizer.state_dict())
