# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""StructureMAE: transformers' common model and config tests on a tiny 3D config, then our own behaviour tests."""

import math
import tempfile
import unittest
from pathlib import Path

import pytest
import torch
from hf_common.upstream.test_configuration_common import ConfigTester
from hf_common.upstream.test_modeling_common import ModelTesterMixin, floats_tensor
from huggingface_hub.errors import StrictDataclassClassValidationError
from nilearn.datasets import load_mni152_template
from small_configs import reload_without_weights_refused_by_inference_models
from transformers import AutoModel, AutoModelForPreTraining

from brainharmonix_hf import StructureMAEConfig, StructureMAEForPreTraining, StructureMAEModel
from brainharmonix_hf.processing.feature_extraction_t1 import T1VolumeFeatureExtractor


def tiny_config(**overrides) -> StructureMAEConfig:
    """A (16, 32, 16) volume in 8³ patches (a (2, 4, 2) grid), 2 encoder layers of width 48, a 1-layer decoder."""
    settings = {
        "image_size": [16, 32, 16],
        "patch_size": 8,
        "hidden_size": 48,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 96,
        "decoder_hidden_size": 32,
        "decoder_num_hidden_layers": 1,
        "decoder_num_attention_heads": 4,
        "decoder_intermediate_size": 64,
    }
    return StructureMAEConfig(**{**settings, **overrides})


class StructureMAEModelTester:
    """The tiny config with half of the 16 patches masked, batch 2."""

    def __init__(self, parent, batch_size=2, is_training=True):
        self.parent = parent
        self.batch_size = batch_size
        self.is_training = is_training
        self.mask_ratio = 0.5
        config = self.get_config()
        self.volume_size = config.image_size
        self.num_patches = config.num_patches
        self.hidden_size = config.hidden_size
        self.num_hidden_layers = config.num_hidden_layers
        self.num_attention_heads = config.num_attention_heads
        # The mixin's eager-vs-SDPA test builds `noise` of shape (batch, (image_size // patch_size) ** 2), a 2D-image
        # assumption; these two values make that 16, the number of patches of the (2, 4, 2) grid.
        self.image_size = 32
        self.patch_size = config.patch_size
        # Tokens seen by attention: CLS + the visible half of the patches.
        self.seq_length = 1 + int(self.num_patches * (1 - self.mask_ratio))

    def get_config(self) -> StructureMAEConfig:
        return tiny_config(mask_ratio=self.mask_ratio)

    def prepare_config_and_inputs_for_common(self) -> tuple[StructureMAEConfig, dict]:
        # Both classes get the same mask ratio (the base model defaults to none), so attention and hidden-state
        # shapes agree, and a fixed `noise`, so masks are reproducible and the determinism, batching and
        # save/load tests apply to the masked path too.
        inputs = {
            "pixel_values": floats_tensor([self.batch_size, 1, *self.volume_size]),
            "noise": torch.rand(self.batch_size, self.num_patches),
            "mask_ratio": self.mask_ratio,
        }
        return self.get_config(), inputs


class StructureMAECommonTest(ModelTesterMixin, unittest.TestCase):
    """The mixin's own skips on this CPU machine: GPU, multi-device, MPS, flash-attention 2/3/4, kernels, deepspeed and
    compile tests (need hardware or packages), RoPE, MoE, sliding-window, cache, `inputs_embeds`, composite-model,
    tensor-parallel, fp32-module and weight-conversion tests (features this model does not have), resize-embedding
    tests (`test_resize_embeddings = False`: no vocabulary), and the gradient-checkpointing input-grad test (the
    input embedding is a Conv3d inside `patch_embeddings`, which has no `.weight` of its own).
    """

    all_model_classes = (StructureMAEModel, StructureMAEForPreTraining)
    pipeline_model_mapping = {}
    test_resize_embeddings = False
    test_torch_exportable = False
    has_attentions = True

    def setUp(self):
        self.model_tester = StructureMAEModelTester(self)
        # The strict config refuses the tester's default hidden_size=37 (not a multiple of 6 or of the heads).
        self.config_tester = ConfigTester(
            self, config_class=StructureMAEConfig, has_text_modality=False, hidden_size=48, num_attention_heads=4
        )

    # The common test reloads a checkpoint without any weight: the base model must refuse it.
    def test_model_weights_reload_no_missing_tied_weights(self):
        reload_without_weights_refused_by_inference_models(self)

    def test_config(self):
        self.config_tester.run_common_tests()

    # The mixin decides which classes have a loss by looking up transformers' own base-model names; our registered
    # base class is not among them, so these two run only on the pretraining head.
    def test_training(self):
        config, inputs = self.model_tester.prepare_config_and_inputs_for_common()
        model = StructureMAEForPreTraining(config).train()
        model(**inputs).loss.backward()
        self.assertTrue(all(p.grad is not None for p in model.parameters() if p.requires_grad))

    def check_training_gradient_checkpointing(self, gradient_checkpointing_kwargs=None):
        config, inputs = self.model_tester.prepare_config_and_inputs_for_common()
        model = StructureMAEForPreTraining(config).train()
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=gradient_checkpointing_kwargs)
        self.assertTrue(model.is_activation_checkpointing)
        model(**inputs).loss.backward()
        self.assertTrue(all(p.grad is not None for p in model.parameters() if p.requires_grad))

    @unittest.skip(reason="The input embedding is a Conv3d patch embedding, not an nn.Embedding.")
    def test_model_get_set_embeddings(self):
        pass


def random_volume(config: StructureMAEConfig, batch_size: int = 2) -> torch.Tensor:
    return torch.randn(batch_size, config.num_channels, *config.image_size)


def reference_sincos(width: int, position: int) -> torch.Tensor:
    """`[sin(p ω_k), cos(p ω_k)]` with ω_k = 1 / 10000^(2k / width), written out independently of the package."""
    omega = 1.0 / 10000 ** (torch.arange(width // 2, dtype=torch.float64) * 2 / width)
    return torch.cat([torch.sin(position * omega), torch.cos(position * omega)]).float()


def test_round_trip_writes_safetensors_and_reproduces_outputs():
    config = tiny_config()
    model = StructureMAEForPreTraining(config).eval()
    pixel_values, noise = random_volume(config), torch.rand(2, config.num_patches)
    with torch.no_grad():
        expected = model(pixel_values, noise=noise)
        expected_tokens = model.structure(pixel_values).last_hidden_state
    with tempfile.TemporaryDirectory() as folder:
        model.save_pretrained(folder)
        # Besides weights and config: the model card and the code (`*.py`) that loads it without the package.
        saved = sorted(path.name for path in Path(folder).iterdir() if path.suffix != ".py")
        assert saved == ["README.md", "config.json", "model.safetensors"]
        reloaded = AutoModelForPreTraining.from_pretrained(folder).eval()
        encoder_only = AutoModel.from_pretrained(folder).eval()
    assert type(reloaded) is StructureMAEForPreTraining and type(encoder_only) is StructureMAEModel
    with torch.no_grad():
        actual = reloaded(pixel_values, noise=noise)
        actual_tokens = encoder_only(pixel_values).last_hidden_state
    torch.testing.assert_close(actual.logits, expected.logits, rtol=0, atol=0)
    torch.testing.assert_close(actual.loss, expected.loss, rtol=0, atol=0)
    torch.testing.assert_close(actual_tokens, expected_tokens, rtol=0, atol=0)


def test_encoder_returns_patch_tokens_without_cls_and_their_mean():
    config = tiny_config()
    model = StructureMAEModel(config).eval()
    with torch.no_grad():
        outputs = model(random_volume(config), output_hidden_states=True)
    assert outputs.last_hidden_state.shape == (2, config.num_patches, config.hidden_size)
    assert outputs.mask is None and outputs.ids_restore is None
    torch.testing.assert_close(outputs.pooler_output, outputs.last_hidden_state.mean(dim=1))
    # The returned tokens are the last layer's patch outputs (CLS dropped) after the final LayerNorm.
    torch.testing.assert_close(outputs.last_hidden_state, model.layernorm(outputs.hidden_states[-1])[:, 1:])


def test_masking_keeps_the_lowest_noise_patches_visible():
    config = tiny_config()
    model = StructureMAEModel(config).eval()
    noise = torch.rand(2, config.num_patches)
    with torch.no_grad():
        outputs = model(random_volume(config), mask_ratio=0.75, noise=noise)
    num_visible = config.num_patches // 4
    assert outputs.last_hidden_state.shape == (2, num_visible, config.hidden_size)
    visible = torch.argsort(noise, dim=1)[:, :num_visible]
    expected_mask = torch.ones(2, config.num_patches).scatter_(1, visible, 0.0)
    torch.testing.assert_close(outputs.mask, expected_mask)
    torch.testing.assert_close(torch.argsort(outputs.ids_restore, dim=1), torch.argsort(noise, dim=1))


def test_eager_and_sdpa_attention_agree():
    config = tiny_config()
    model = StructureMAEModel(config).eval()
    pixel_values = random_volume(config)
    with torch.no_grad():
        model.set_attn_implementation("sdpa")
        sdpa = model(pixel_values).last_hidden_state
        model.set_attn_implementation("eager")
        eager = model(pixel_values).last_hidden_state
    torch.testing.assert_close(eager, sdpa, rtol=1e-5, atol=1e-5)


def test_gradient_checkpointing_gives_the_same_gradients():
    config = tiny_config(drop_path_rate=0.0)
    pixel_values, noise = random_volume(config), torch.rand(2, config.num_patches)
    torch.manual_seed(0)
    model = StructureMAEForPreTraining(config).train()

    def gradients() -> dict[str, torch.Tensor]:
        model.zero_grad()
        model(pixel_values, noise=noise).loss.backward()
        return {name: param.grad.clone() for name, param in model.named_parameters()}

    plain = gradients()
    model.activation_checkpointing_enable()
    checkpointed = gradients()
    assert plain.keys() == checkpointed.keys()
    for name in plain:
        torch.testing.assert_close(checkpointed[name], plain[name], msg=name)


def test_position_table_encodes_axis1_then_axis0_then_axis2():
    # Real grid (10, 12, 10), narrow width: three 8-wide sin-cos parts.
    config = StructureMAEConfig(hidden_size=24, num_attention_heads=2, num_hidden_layers=1, intermediate_size=48)
    table = StructureMAEModel(config).embeddings.position_embeddings
    d0, d1, d2 = config.grid_size
    assert table.shape == (d0 * d1 * d2, 24)
    for i, j, k in [(3, 7, 5), (9, 11, 0), (0, 0, 9)]:
        row = table[(i * d1 + j) * d2 + k]
        expected = torch.cat([reference_sincos(8, j), reference_sincos(8, i), reference_sincos(8, k)])
        torch.testing.assert_close(row, expected, rtol=0, atol=1e-6)


def test_decoder_positions_leave_the_width_remainder_at_zero():
    config = tiny_config(decoder_hidden_size=32)  # 32 = 5 * 6 + 2
    table = StructureMAEForPreTraining(config).decoder.position_embeddings
    assert table.shape == (config.num_patches, 32)
    assert torch.count_nonzero(table[:, 30:]) == 0
    d1, d2 = config.grid_size[1:]
    i, j, k = 1, 3, 1
    expected = torch.cat([reference_sincos(10, j), reference_sincos(10, i), reference_sincos(10, k)])
    torch.testing.assert_close(table[(i * d1 + j) * d2 + k, :30], expected, rtol=0, atol=1e-6)


def test_patches_are_row_major_in_the_grid_and_patchify_inverts():
    config = tiny_config()
    model = StructureMAEForPreTraining(config).eval()
    (_, g1, g2), (p0, p1, p2) = config.grid_size, config.patch_shape
    i, j, k = 1, 2, 0
    volume = torch.zeros(1, 1, *config.image_size)
    volume[..., i * p0 : (i + 1) * p0, j * p1 : (j + 1) * p1, k * p2 : (k + 1) * p2] = torch.rand(p0, p1, p2) + 1
    token = (i * g1 + j) * g2 + k
    patches = model.patchify(volume)
    assert patches.shape == (1, config.num_patches, p0 * p1 * p2)
    assert torch.nonzero(patches.abs().sum(-1))[:, 1].tolist() == [token]
    patch_embeddings = model.structure.embeddings.patch_embeddings
    with torch.no_grad():
        embedded = patch_embeddings(volume) - patch_embeddings.proj.bias
    assert torch.nonzero(embedded.abs().sum(-1))[:, 1].tolist() == [token]
    batch = random_volume(config)
    torch.testing.assert_close(model.unpatchify(model.patchify(batch)), batch, rtol=0, atol=0)


def test_patch_embedding_equals_the_strided_convolution():
    # Two channels and an anisotropic patch, so channel and axis orders inside a patch are both exercised.
    config = tiny_config(num_channels=2, patch_size=[8, 4, 8])
    model = StructureMAEForPreTraining(config).eval()
    patch_embeddings = model.structure.embeddings.patch_embeddings
    volume = random_volume(config)
    with torch.no_grad():
        expected = torch.nn.functional.conv3d(
            volume, patch_embeddings.proj.weight, patch_embeddings.proj.bias, stride=config.patch_shape
        )
        actual = patch_embeddings(volume)
    torch.testing.assert_close(actual, expected.flatten(2).transpose(1, 2), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(model.unpatchify(model.patchify(volume)), volume, rtol=0, atol=0)


@pytest.mark.parametrize("norm_pix_loss", [False, True])
def test_loss_is_the_mean_squared_error_on_masked_patches(norm_pix_loss):
    config = tiny_config(norm_pix_loss=norm_pix_loss)
    model = StructureMAEForPreTraining(config).eval()
    # A zero prediction head makes the loss the mean squared target over the masked patches.
    torch.nn.init.zeros_(model.decoder.pred.weight)
    torch.nn.init.zeros_(model.decoder.pred.bias)
    pixel_values = random_volume(config) * 3 + 1
    with torch.no_grad():
        outputs = model(pixel_values, noise=torch.rand(2, config.num_patches))
    voxels_per_patch = math.prod(config.patch_shape)
    if norm_pix_loss:
        # Standardised with the unbiased variance: the mean square is (n - 1) / n per patch.
        expected = torch.tensor((voxels_per_patch - 1) / voxels_per_patch)
    else:
        per_patch = model.patchify(pixel_values).pow(2).mean(-1)
        expected = (per_patch * outputs.mask).sum() / outputs.mask.sum()
    torch.testing.assert_close(outputs.loss, expected, rtol=1e-4, atol=1e-4)
    assert outputs.mask.sum() == 2 * (config.num_patches - int(config.num_patches * (1 - config.mask_ratio)))
    assert model(pixel_values, return_loss=False).loss is None


def test_bfloat16_weights_run_and_stay_close_to_float32():
    config = tiny_config()
    model = StructureMAEModel(config).eval()
    pixel_values = random_volume(config)
    with torch.no_grad():
        expected = model(pixel_values).last_hidden_state
        actual = model.to(torch.bfloat16)(pixel_values).last_hidden_state
    assert actual.dtype == torch.bfloat16
    torch.testing.assert_close(actual.float(), expected, rtol=0.05, atol=0.1)


def test_bad_inputs_raise_errors_naming_the_fix():
    config = tiny_config()
    model = StructureMAEForPreTraining(config)
    shape_error = r"pixel_values must have shape \(batch, 1, 16, 32, 16\).*T1VolumeFeatureExtractor"
    with pytest.raises(ValueError, match=shape_error):
        model(torch.zeros(1, 1, 16, 16, 16))
    with pytest.raises(ValueError, match=r"noise must have shape \(batch, num_patches\) = \(2, 16\)"):
        model(random_volume(config), noise=torch.rand(2, 8))
    with pytest.raises(ValueError, match=r"hides none of the 16 patches.*StructureMAEModel"):
        model(random_volume(config), mask_ratio=0.0)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"image_size": [16, 30, 16]}, r"image_size\[1\] = 30 is not divisible by patch size 8.*= 24"),
        ({"patch_size": [8, 8]}, "patch_size must be an int or a list of 3 sizes"),
        ({"num_attention_heads": 5}, "hidden_size = 48 is not a multiple of num_attention_heads = 5"),
        ({"decoder_num_attention_heads": 3}, "decoder_hidden_size = 32 is not a multiple of decoder_num_attention_he"),
        ({"hidden_size": 40, "num_attention_heads": 4}, "must be a multiple of 6 for the 3D sin-cos positions"),
        ({"mask_ratio": 1.0}, r"mask_ratio must be in \[0, 1\)"),
    ],
)
def test_config_rejects_inconsistent_geometry(overrides, message):
    with pytest.raises(StrictDataclassClassValidationError, match=message):
        tiny_config(**overrides)


def test_config_grid_and_save_round_trip():
    config = StructureMAEConfig(patch_size=[16, 16, 32])
    assert config.grid_size == (10, 12, 5) and config.num_patches == 600
    assert StructureMAEConfig().grid_size == (10, 12, 10)
    with tempfile.TemporaryDirectory() as folder:
        config.save_pretrained(folder)
        reloaded = StructureMAEConfig.from_pretrained(folder)
    assert reloaded.grid_size == (10, 12, 5) and reloaded.patch_shape == (16, 16, 32)


def test_mae_loss_falls_when_overfitting_the_mni152_template():
    pixel_values = T1VolumeFeatureExtractor()(load_mni152_template(resolution=1), return_tensors="pt")["pixel_values"]
    assert pixel_values.shape == (1, 1, 160, 192, 160)
    # Real image size and patch grid, tiny width and depth so a few CPU steps suffice.
    config = StructureMAEConfig(
        hidden_size=24,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=48,
        decoder_hidden_size=24,
        decoder_num_hidden_layers=1,
        decoder_num_attention_heads=2,
        decoder_intermediate_size=48,
    )
    torch.manual_seed(0)
    model = StructureMAEForPreTraining(config).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    losses = []
    for _ in range(20):  # a fresh random mask every step
        loss = model(pixel_values).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-3:]) / 3 < 0.7 * losses[0], losses
