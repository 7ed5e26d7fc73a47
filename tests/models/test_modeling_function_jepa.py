# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""FunctionJEPA: transformers' common model and config tests with a tiny config, then behaviour tests.

The common tests run in two classes, one per model class, because only the pretraining head takes `context_indices` /
`target_indices` (fixed index tensors here, so its forward pass is deterministic).
"""

import ast
import sys
import unittest
from pathlib import Path

import pytest
import torch
from hf_common.upstream.test_configuration_common import ConfigTester
from hf_common.upstream.test_modeling_common import ModelTesterMixin, floats_tensor
from huggingface_hub.errors import StrictDataclassClassValidationError
from safetensors import safe_open
from small_configs import assert_checkpoint_without_roi_tables_is_refused

import brainharmonix_hf
from brainharmonix_hf import (
    FunctionJEPAConfig,
    FunctionJEPAForPreTraining,
    FunctionJEPAModel,
    ema_momentum,
)
from brainharmonix_hf.modeling._compat import create_bidirectional_mask
from brainharmonix_hf.roi_positions.tables import load_roi_tables

NUM_ROIS, NUM_TIME_PATCHES, NUM_FRAMES = 8, 4, 32


def tiny_config(**overrides) -> FunctionJEPAConfig:
    """8 ROIs × 4 time patches of 8 s (8 frames at TR 1 s), width 32, 2 encoder and 2 predictor layers."""
    settings = {
        "num_rois": NUM_ROIS,
        "atlas": "tiny_chain",
        "roi_tables": "placeholder",
        "num_time_patches": NUM_TIME_PATCHES,
        "window_seconds": 8.0,
        "base_patch_length": 8,
        "num_geometric_modes": 6,
        "num_gradient_components": 3,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 64,
        "predictor_hidden_size": 16,
        "predictor_num_hidden_layers": 2,
        "predictor_num_attention_heads": 2,
        "predictor_intermediate_size": 32,
    }
    return FunctionJEPAConfig(**{**settings, **overrides})


def token_index(roi: int, time_patch: int) -> int:
    return roi * NUM_TIME_PATCHES + time_patch


# Every series holds real frames in time patches 0 and 1 (see the tester's TRs), so these tokens are valid for all.
CONTEXT_TOKENS = [token_index(roi, 0) for roi in range(NUM_ROIS)] + [token_index(roi, 1) for roi in range(4)]
TARGET_TOKENS = [token_index(roi, 1) for roi in range(4, NUM_ROIS)]


class FunctionJEPAModelTester:
    """Batch 7 (the size the eager-vs-SDPA test uses) of 32-frame series at TR 1 s (4 full patches) and TR 0.5 s
    (16-frame patches: 2 valid, 2 padded), so packing and padding run in every common test."""

    def __init__(self, parent, with_masks: bool, batch_size: int = 7, is_training: bool = True):
        self.parent = parent
        self.with_masks = with_masks
        self.batch_size = batch_size
        self.is_training = is_training
        config = self.get_config()
        self.hidden_size = config.hidden_size
        self.num_hidden_layers = config.num_hidden_layers
        self.num_attention_heads = config.num_attention_heads
        # Tokens the encoder attends over: the context of the head, else every token (some series fill all 4
        # patches, so the packed length is the full grid).
        self.seq_length = len(CONTEXT_TOKENS) if with_masks else config.num_tokens

    def get_config(self) -> FunctionJEPAConfig:
        return tiny_config()

    def prepare_config_and_inputs_for_common(self) -> tuple[FunctionJEPAConfig, dict]:
        repetition_time = torch.tensor([1.0, 0.5] * self.batch_size)[: self.batch_size]
        inputs = {
            "fmri_values": floats_tensor([self.batch_size, NUM_ROIS, NUM_FRAMES]),
            "repetition_time": repetition_time,
            "attention_mask": torch.ones(self.batch_size, NUM_FRAMES, dtype=torch.long),
        }
        if self.with_masks:
            inputs["context_indices"] = torch.tensor(CONTEXT_TOKENS).repeat(self.batch_size, 1)
            inputs["target_indices"] = torch.tensor(TARGET_TOKENS).repeat(self.batch_size, 1)
        return self.get_config(), inputs


class FunctionJEPACommonTestMixin(ModelTesterMixin):
    """Adaptations of transformers' common tests shared by both classes."""

    pipeline_model_mapping = {}
    test_resize_embeddings = False
    test_torch_exportable = False
    has_attentions = True
    additional_model_inputs = ["repetition_time"]

    @unittest.skip(reason="The input embedding is the TAPE patch embedding (a resized Conv2d), not an nn.Embedding.")
    def test_model_get_set_embeddings(self):
        pass

    # Both common tests reload a checkpoint without any weight; ours must refuse one without its ROI tables.
    def test_can_init_all_missing_weights(self):
        assert_checkpoint_without_roi_tables_is_refused(self)

    def test_model_weights_reload_no_missing_tied_weights(self):
        assert_checkpoint_without_roi_tables_is_refused(self)


class FunctionJEPAModelCommonTest(FunctionJEPACommonTestMixin, unittest.TestCase):
    all_model_classes = (FunctionJEPAModel,)

    def setUp(self):
        self.model_tester = FunctionJEPAModelTester(self, with_masks=False)
        # The strict config refuses the tester's default hidden_size=37 (not a multiple of the heads or of 4).
        self.config_tester = ConfigTester(
            self, config_class=FunctionJEPAConfig, has_text_modality=False, hidden_size=32, num_attention_heads=4
        )

    def test_config(self):
        self.config_tester.run_common_tests()

    # The mixin finds the classes without a loss by transformers' own base-model names, which do not include ours:
    # the encoder has no loss, so training runs in the pretraining head's class below.
    @unittest.skip(reason="FunctionJEPAModel has no loss; FunctionJEPAForPreTrainingCommonTest runs test_training.")
    def test_training(self):
        pass

    @unittest.skip(reason="FunctionJEPAModel has no loss; the head's common tests train with checkpointing.")
    def test_training_gradient_checkpointing(self):
        pass

    @unittest.skip(reason="FunctionJEPAModel has no loss; the head's common tests train with checkpointing.")
    def test_training_gradient_checkpointing_use_reentrant_false(self):
        pass

    @unittest.skip(reason="FunctionJEPAModel has no loss; the head's common tests train with checkpointing.")
    def test_training_gradient_checkpointing_use_reentrant_true(self):
        pass


class FunctionJEPAForPreTrainingCommonTest(FunctionJEPACommonTestMixin, unittest.TestCase):
    all_model_classes = (FunctionJEPAForPreTraining,)
    additional_model_inputs = ["repetition_time", "context_indices", "target_indices"]

    def setUp(self):
        self.model_tester = FunctionJEPAModelTester(self, with_masks=True)


# ---------------------------------------------------------------------------------------------------------------------
# Behaviour


def padded_batch(seed: int = 0) -> dict:
    """Three series at three TRs: 32 frames at TR 1 s (4 patches), 20 frames at TR 2 s (p = 4: 4 patches, cropped
    to 16 frames), 12 frames at TR 1 s (2 of 4 patches valid, the last one half padded)."""
    generator = torch.Generator().manual_seed(seed)
    attention_mask = torch.ones(3, NUM_FRAMES, dtype=torch.long)
    attention_mask[1, 20:] = 0
    attention_mask[2, 12:] = 0
    fmri_values = torch.randn(3, NUM_ROIS, NUM_FRAMES, generator=generator) * attention_mask[:, None]
    return {
        "fmri_values": fmri_values,
        "repetition_time": torch.tensor([1.0, 2.0, 1.0]),
        "attention_mask": attention_mask,
    }


def masked_reference_forward(model: FunctionJEPAModel, batch: dict) -> torch.Tensor:
    """The encoder run over every token with padded tokens masked in attention (no packing)."""
    embedded = model.patch_embedding(batch["fmri_values"], batch["repetition_time"], batch["attention_mask"])
    hidden_states = embedded.embeddings + model.roi_positions()
    attention_mask = create_bidirectional_mask(
        config=model.config, inputs_embeds=hidden_states, attention_mask=embedded.token_mask
    )
    for layer in model.layers:
        hidden_states = layer(hidden_states, attention_mask)
    return model.layernorm(hidden_states)


def fixed_masks(batch_size: int) -> dict:
    return {
        "context_indices": torch.tensor(CONTEXT_TOKENS).repeat(batch_size, 1),
        "target_indices": torch.tensor(TARGET_TOKENS).repeat(batch_size, 1),
    }


@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
def test_packing_matches_masked_computation_on_valid_tokens(attn_implementation):
    torch.manual_seed(0)
    model = FunctionJEPAModel(tiny_config(attn_implementation=attn_implementation)).eval()
    batch = padded_batch()
    with torch.no_grad():
        outputs = model(**batch)
        reference = masked_reference_forward(model, batch)
    valid = outputs.token_mask.bool()
    assert outputs.token_mask.view(3, NUM_ROIS, NUM_TIME_PATCHES)[:, 0].sum(-1).tolist() == [4, 4, 2]
    torch.testing.assert_close(outputs.last_hidden_state[valid], reference[valid], atol=1e-5, rtol=1e-5)
    assert torch.count_nonzero(outputs.last_hidden_state[~valid]) == 0


def test_eager_and_sdpa_agree_on_padded_mixed_tr_batch():
    torch.manual_seed(0)
    eager = FunctionJEPAModel(tiny_config(attn_implementation="eager")).eval()
    sdpa = FunctionJEPAModel(tiny_config(attn_implementation="sdpa")).eval()
    sdpa.load_state_dict(eager.state_dict())
    batch = padded_batch()
    with torch.no_grad():
        torch.testing.assert_close(
            eager(**batch).last_hidden_state, sdpa(**batch).last_hidden_state, atol=1e-5, rtol=1e-5
        )


def test_shipped_atlas_tables_are_loaded_and_saved_with_the_model(tmp_path):
    tables = load_roi_tables("schaefer400_7networks")
    config = tiny_config(
        atlas="schaefer400_7networks",
        roi_tables="shipped",
        num_rois=400,
        num_geometric_modes=200,
        num_gradient_components=30,
        num_hidden_layers=1,
    )
    assert config.roi_order == tables.roi_order
    model = FunctionJEPAModel(config)
    assert torch.equal(model.roi_positions.geometric_harmonics, tables.geometric_harmonics)
    assert torch.equal(model.roi_positions.functional_gradients, tables.functional_gradients)
    model.save_pretrained(tmp_path)
    with safe_open(str(tmp_path / "model.safetensors"), framework="pt") as saved:
        assert torch.equal(saved.get_tensor("roi_positions.geometric_harmonics"), tables.geometric_harmonics)
        assert torch.equal(saved.get_tensor("roi_positions.functional_gradients"), tables.functional_gradients)


def test_shipped_atlas_with_other_sizes_is_refused():
    with pytest.raises(ValueError, match="shipped for atlas 'schaefer400_7networks'"):
        FunctionJEPAModel(tiny_config(atlas="schaefer400_7networks", roi_tables="shipped"))


def test_save_load_round_trip_is_exact_with_custom_roi_tables(tmp_path):
    torch.manual_seed(0)
    model = FunctionJEPAForPreTraining(tiny_config()).eval()
    harmonics, gradients = torch.randn(NUM_ROIS, 6), torch.randn(NUM_ROIS, 3)
    model.set_roi_tables(harmonics, gradients)
    model.save_pretrained(tmp_path)
    with safe_open(str(tmp_path / "model.safetensors"), framework="pt") as saved:
        for prefix in ("encoder", "target_encoder"):
            assert torch.equal(saved.get_tensor(f"{prefix}.roi_positions.geometric_harmonics"), harmonics)
            assert torch.equal(saved.get_tensor(f"{prefix}.roi_positions.functional_gradients"), gradients)

    reloaded = FunctionJEPAForPreTraining.from_pretrained(tmp_path).eval()
    for key, tensor in model.state_dict().items():
        assert torch.equal(tensor, reloaded.state_dict()[key]), key
    assert not any(parameter.requires_grad for parameter in reloaded.target_encoder.parameters())
    batch = {**padded_batch(), **fixed_masks(3)}
    with torch.no_grad():
        assert torch.equal(model(**batch).loss, reloaded(**batch).loss)


def test_set_roi_tables_refuses_wrong_shapes():
    model = FunctionJEPAModel(tiny_config())
    with pytest.raises(ValueError, match=r"geometric_harmonics must have shape \(8, 6\)"):
        model.set_roi_tables(torch.zeros(NUM_ROIS + 1, 6), torch.zeros(NUM_ROIS, 3))


def test_encoder_loads_the_target_encoder_of_a_pretraining_checkpoint(tmp_path):
    torch.manual_seed(0)
    pretraining = FunctionJEPAForPreTraining(tiny_config())
    with torch.no_grad():
        for parameter in pretraining.encoder.parameters():
            parameter.add_(1.0)  # the two encoders now differ
    pretraining.save_pretrained(tmp_path)
    encoder, info = FunctionJEPAModel.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"]
    for key, tensor in encoder.state_dict().items():
        assert torch.equal(tensor, pretraining.target_encoder.state_dict()[key]), key


@pytest.mark.parametrize("own_tables", [False, True], ids=["initial_tables", "own_tables"])
def test_pretraining_model_built_from_an_encoder_checkpoint_starts_both_encoders_from_it(tmp_path, own_tables):
    torch.manual_seed(0)
    encoder = FunctionJEPAModel(tiny_config())
    if own_tables:  # tables that no fresh model starts with: both encoders must take the checkpoint's
        encoder.set_roi_tables(torch.randn(NUM_ROIS, 6), torch.randn(NUM_ROIS, 3))
    encoder.save_pretrained(tmp_path)
    pretraining = FunctionJEPAForPreTraining.from_pretrained(tmp_path)
    for key, tensor in encoder.state_dict().items():
        assert torch.equal(pretraining.target_encoder.state_dict()[key], tensor), key
        assert torch.equal(pretraining.encoder.state_dict()[key], tensor), key


def test_new_pretraining_model_has_equal_independent_encoders():
    model = FunctionJEPAForPreTraining(tiny_config())
    for context, target in zip(model.encoder.parameters(), model.target_encoder.parameters(), strict=True):
        assert torch.equal(context, target)
        assert context.data_ptr() != target.data_ptr()
        assert context.requires_grad and not target.requires_grad


def test_update_target_encoder_moves_weights_by_one_minus_momentum():
    torch.manual_seed(0)
    model = FunctionJEPAForPreTraining(tiny_config())
    with torch.no_grad():
        for parameter in model.encoder.parameters():
            parameter.add_(torch.randn_like(parameter))
    context = [parameter.detach().clone() for parameter in model.encoder.parameters()]
    before = [parameter.detach().clone() for parameter in model.target_encoder.parameters()]
    model.update_target_encoder(0.75)
    for old, new, source in zip(before, model.target_encoder.parameters(), context, strict=True):
        torch.testing.assert_close(new, 0.75 * old + 0.25 * source)
    model.update_target_encoder(1.0)
    torch.testing.assert_close(next(model.target_encoder.parameters()), 0.75 * before[0] + 0.25 * context[0])
    model.update_target_encoder(0.0)
    target = model.target_encoder.parameters()
    assert all(torch.equal(new, source) for new, source in zip(target, context, strict=True))
    with pytest.raises(ValueError, match="momentum must be in"):
        model.update_target_encoder(1.5)


def test_ema_momentum_is_linear_per_step():
    # A run long enough for the configured momenta (the reference's ~150,000 steps): they are kept exactly.
    assert ema_momentum(0, 150_000) == pytest.approx(0.996)
    assert ema_momentum(75_000, 150_000) == pytest.approx(0.998)
    assert ema_momentum(150_000, 150_000) == pytest.approx(1.0)
    assert ema_momentum(250_000, 150_000) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="total_steps"):
        ema_momentum(0, 0)


def test_ema_momentum_reads_the_config_momenta():
    config = tiny_config(ema_momentum_start=0.5, ema_momentum_end=0.9, ema_initial_weight_share=None)
    assert ema_momentum(0, 4, config) == pytest.approx(0.5)
    assert ema_momentum(1, 4, config) == pytest.approx(0.6)
    assert ema_momentum(9, 4, config) == pytest.approx(0.9)
    # The defaults come from the config class too: one source of truth.
    defaults = FunctionJEPAConfig()
    long_run = 150_000
    assert ema_momentum(0, long_run) == defaults.ema_momentum_start
    assert ema_momentum(long_run, long_run) == defaults.ema_momentum_end


@pytest.mark.parametrize("total_steps", [20, 150, 1000])
def test_short_run_target_encoder_keeps_at_most_the_configured_share_of_its_initial_weights(total_steps):
    """The exported target encoder of a short run is not its initialisation: with the default config, after the run's
    EMA steps toward a fixed context encoder, at most 1 % of the initial weights is left (74 % over 150 steps with
    the reference momenta as they were)."""
    torch.manual_seed(0)
    config = tiny_config()
    model = FunctionJEPAForPreTraining(config)
    initial = [parameter.detach().clone() for parameter in model.target_encoder.parameters()]
    with torch.no_grad():
        for parameter in model.encoder.parameters():
            parameter.add_(torch.randn_like(parameter))
    for step in range(total_steps):
        model.update_target_encoder(ema_momentum(step, total_steps, config))
    # target = share * initial + (1 - share) * context, the same share for every weight.
    first_initial, first_target, first_context = (
        initial[0],
        *(next(m.parameters()) for m in (model.target_encoder, model.encoder)),
    )
    share = ((first_target - first_context) / (first_initial - first_context)).mean().item()
    assert 0.005 < share <= 0.0101
    assert ema_momentum(0, total_steps, config) < config.ema_momentum_start
    kept = tiny_config(ema_initial_weight_share=None)
    assert ema_momentum(0, total_steps, kept) == kept.ema_momentum_start


def test_ema_initial_weight_share_is_checked():
    with pytest.raises(StrictDataclassClassValidationError, match="ema_initial_weight_share must be in"):
        tiny_config(ema_initial_weight_share=1.5)


def test_loss_falls_when_overfitting_with_ema_updates():
    torch.manual_seed(0)
    config = tiny_config(ema_initial_weight_share=None)  # the reference momenta: a slowly moving target
    model = FunctionJEPAForPreTraining(config).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    batch = {**padded_batch(), **fixed_masks(3)}
    total_steps = 60
    losses = []
    for step in range(total_steps):
        loss = model(**batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        model.update_target_encoder(ema_momentum(step, total_steps, config))
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


def test_pretraining_forward_requires_the_masks():
    model = FunctionJEPAForPreTraining(tiny_config())
    masks = fixed_masks(3)
    for given in ({}, {"context_indices": masks["context_indices"]}, {"target_indices": masks["target_indices"]}):
        with pytest.raises(ValueError, match=r"needs context_indices and target_indices.*SpatiotemporalMaskSampler"):
            model(**padded_batch(), **given)


def test_modeling_modules_import_only_siblings_and_allowed_packages():
    """modeling/ never imports training/ (masks come from the collator) nor anything outside itself but the
    libraries a Hub checkpoint's remote code may rely on."""
    allowed = {"torch", "numpy", "transformers", "huggingface_hub", "safetensors"}
    standard = set(sys.stdlib_module_names)
    modeling_dir = Path(brainharmonix_hf.__file__).parent / "modeling"
    offending = []
    for path in sorted(modeling_dir.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level > 0:
                if node.level != 1 or node.module is None:
                    offending.append(f"{path.name}: from {'.' * node.level}{node.module or ''} import ...")
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module]
                offending += [f"{path.name}: {name}" for name in names if name.split(".")[0] not in allowed | standard]
    assert not offending, offending


def test_targets_are_layer_normalised_target_encoder_features():
    torch.manual_seed(0)
    model = FunctionJEPAForPreTraining(tiny_config()).eval()
    batch = {**padded_batch(), **fixed_masks(3)}
    with torch.no_grad():
        outputs = model(**batch)
        features = model.target_encoder(**padded_batch()).last_hidden_state[:, TARGET_TOKENS]
    expected = (features - features.mean(-1, keepdim=True)) / torch.sqrt(
        features.var(-1, unbiased=False, keepdim=True) + 1e-5
    )
    torch.testing.assert_close(outputs.targets, expected, atol=1e-5, rtol=1e-5)
    loss = torch.nn.functional.smooth_l1_loss(outputs.predictions, expected)
    torch.testing.assert_close(outputs.loss, loss)  # every fixed target is a real token: the plain mean


def test_nan_and_inf_in_padded_frames_leave_tokens_and_loss_unchanged():
    torch.manual_seed(0)
    model = FunctionJEPAForPreTraining(tiny_config()).eval()
    batch = {**padded_batch(), **fixed_masks(3)}
    poisoned = dict(batch, fmri_values=batch["fmri_values"].clone())
    padding = ~batch["attention_mask"].bool()
    poisoned["fmri_values"][1].transpose(0, 1)[padding[1]] = float("nan")
    poisoned["fmri_values"][2].transpose(0, 1)[padding[2]] = float("inf")
    with torch.no_grad():
        clean = model.target_encoder(**padded_batch()).last_hidden_state
        dirty = model.target_encoder(**{k: poisoned[k] for k in padded_batch()}).last_hidden_state
    assert torch.isfinite(dirty).all()
    torch.testing.assert_close(dirty, clean, rtol=0, atol=1e-6)
    loss = model(**poisoned).loss
    loss.backward()
    torch.testing.assert_close(loss, model(**batch).loss, rtol=0, atol=1e-6)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_residual_outputs_start_depth_scaled_in_both_stacks_and_loading_keeps_them(tmp_path):
    torch.manual_seed(0)
    model = FunctionJEPAForPreTraining(tiny_config(hidden_size=128, intermediate_size=256, predictor_hidden_size=64))
    for stack in (model.encoder, model.predictor):
        for depth, layer in enumerate(stack.layers, start=1):
            expected = 0.02 / (2 * depth) ** 0.5
            for residual_output in (layer.attention.proj, layer.mlp.fc2):
                assert abs(residual_output.weight.std().item() / expected - 1.0) < 0.1
            assert abs(layer.attention.qkv.weight.std().item() / 0.02 - 1.0) < 0.1
    model.save_pretrained(tmp_path)
    reloaded = FunctionJEPAForPreTraining.from_pretrained(tmp_path)
    assert torch.equal(reloaded.encoder.layers[1].mlp.fc2.weight, model.encoder.layers[1].mlp.fc2.weight)


def test_out_of_grid_token_indices_are_refused():
    model = FunctionJEPAForPreTraining(tiny_config())
    masks = fixed_masks(3)
    masks["target_indices"][0, 0] = NUM_ROIS * NUM_TIME_PATCHES
    with pytest.raises(ValueError, match="target_indices holds indices outside"):
        model(**padded_batch(), **masks)


if __name__ == "__main__":
    unittest.main()


def test_fresh_patch_embedding_gives_tokens_as_large_as_their_positions():
    """A z-scored series must not vanish under the positions: with the patch kernel drawn at std 0.02 (the usual ViT
    linear init, sized for 768-value image patches) a 48-frame token held a quarter of the positions' amplitude, JEPA
    targets were mostly position, and a short run reached a near-zero loss by predicting positions (collapse).
    Drawn at 1 / sqrt(frames per token), the content of a unit-variance series has unit variance per channel."""
    torch.manual_seed(0)
    config = tiny_config(window_seconds=48.0, base_patch_length=48)  # 48 frames per token at TR 1 s: the stored kernel
    encoder = FunctionJEPAModel(config)
    series = torch.randn(16, NUM_ROIS, 48 * NUM_TIME_PATCHES)
    with torch.no_grad():
        content = encoder.patch_embedding(series, torch.ones(16)).embeddings
        positions = encoder.roi_positions()
    content_rms, position_rms = content.pow(2).mean().sqrt().item(), positions.pow(2).mean().sqrt().item()
    assert content_rms == pytest.approx(1.0, abs=0.1)
    assert 1.0 < content_rms / position_rms < 3.0
