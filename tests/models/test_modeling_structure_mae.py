# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""transformers' common model and config tests run against StructureMAE, with a tiny 3D config."""

import unittest

import torch
from hf_common.upstream.test_configuration_common import ConfigTester
from hf_common.upstream.test_modeling_common import ModelTesterMixin, floats_tensor

from brainharmonix_hf import StructureMAEConfig, StructureMAEForPreTraining, StructureMAEModel


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
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=gradient_checkpointing_kwargs)
        self.assertTrue(model.is_gradient_checkpointing)
        model(**inputs).loss.backward()
        self.assertTrue(all(p.grad is not None for p in model.parameters() if p.requires_grad))

    @unittest.skip(reason="The input embedding is a Conv3d patch embedding, not an nn.Embedding.")
    def test_model_get_set_embeddings(self):
        pass


if __name__ == "__main__":
    unittest.main()
