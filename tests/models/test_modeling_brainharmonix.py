# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""The end-to-end BrainHarmonix model: common tests, missing modalities, padding, loading, and the processor."""

import unittest

import numpy as np
import pytest
import torch
from hf_common.upstream.test_configuration_common import ConfigTester
from hf_common.upstream.test_modeling_common import ModelTesterMixin, floats_tensor
from small_configs import assert_checkpoint_without_roi_tables_is_refused
from small_configs import tiny6_brainharmonix_config as tiny_config
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForSequenceClassification,
    AutoProcessor,
    Trainer,
    TrainingArguments,
)

from brainharmonix_hf import (
    BrainHarmonixConfig,
    BrainHarmonixForSequenceClassification,
    BrainHarmonixModel,
    BrainHarmonixProcessor,
    FMRIFeatureExtractor,
    FunctionJEPAModel,
    HarmonizerModel,
    StructureMAEConfig,
    StructureMAEModel,
    T1VolumeFeatureExtractor,
)


def tiny_inputs(batch_size: int = 3, seed: int = 0) -> dict:
    """Mixed TRs: even subjects at TR 1 s (8-frame patches, 32 frames = 4 patches), odd ones at TR 2 s with 6 real
    frames (2 of 4 patches valid)."""
    generator = torch.Generator().manual_seed(seed)
    repetition_time = torch.tensor([1.0 if index % 2 == 0 else 2.0 for index in range(batch_size)])
    attention_mask = torch.ones(batch_size, 32, dtype=torch.long)
    attention_mask[1::2, 6:] = 0
    fmri_values = torch.randn(batch_size, 6, 32, generator=generator) * attention_mask.unsqueeze(1)
    return {
        "pixel_values": torch.randn(batch_size, 1, 32, 32, 32, generator=generator),
        "fmri_values": fmri_values,
        "repetition_time": repetition_time,
        "attention_mask": attention_mask,
    }


class BrainHarmonixModelTester:
    def __init__(self, parent, batch_size=3, is_training=True):
        self.parent = parent
        self.batch_size = batch_size
        self.is_training = is_training
        self.hidden_size = 24
        self.num_hidden_layers = 1
        self.num_attention_heads = 2
        # Tokens the Harmonizer attends over for the fullest subject: CLS + 4 hub + 24 fMRI + 8 T1.
        self.seq_length = 1 + 4 + 24 + 8

    def get_config(self) -> BrainHarmonixConfig:
        return tiny_config()

    def prepare_config_and_inputs_for_common(self) -> tuple[BrainHarmonixConfig, dict]:
        inputs = tiny_inputs(self.batch_size)
        inputs["pixel_values"] = floats_tensor([self.batch_size, 1, 32, 32, 32])
        return self.get_config(), inputs


class BrainHarmonixCommonTest(ModelTesterMixin, unittest.TestCase):
    all_model_classes = (BrainHarmonixModel, BrainHarmonixForSequenceClassification)
    pipeline_model_mapping = {}
    test_resize_embeddings = False
    test_torch_exportable = False
    has_attentions = True
    # Three sub-configs, one per stage: run the composite attention-dispatch tests too.
    _is_composite = True

    def setUp(self):
        self.model_tester = BrainHarmonixModelTester(self)
        self.config_tester = ConfigTester(self, config_class=BrainHarmonixConfig, has_text_modality=False)

    # Both common tests reload a checkpoint without any weight; ours must refuse one without its ROI tables.
    def test_can_init_all_missing_weights(self):
        assert_checkpoint_without_roi_tables_is_refused(self)

    def test_model_weights_reload_no_missing_tied_weights(self):
        assert_checkpoint_without_roi_tables_is_refused(self)

    def test_config(self):
        self.config_tester.run_common_tests()

    # The mixin adds labels only for classes named in transformers' own mappings; ours are registered, not named.
    def _prepare_for_class(self, inputs_dict, model_class, return_labels=False):
        inputs_dict = super()._prepare_for_class(inputs_dict, model_class, return_labels=return_labels)
        if return_labels and model_class is BrainHarmonixForSequenceClassification:
            inputs_dict["labels"] = torch.zeros(self.model_tester.batch_size, dtype=torch.long)
        return inputs_dict

    def _check_head_trains(self, configure_model=None):
        config, inputs = self.model_tester.prepare_config_and_inputs_for_common()
        model = BrainHarmonixForSequenceClassification(config).train()
        if configure_model is not None:
            configure_model(model)
        model(**inputs, labels=torch.tensor([0, 1, 1])).loss.backward()
        trainable = {name for name, p in model.named_parameters() if p.requires_grad}
        self.assertTrue(
            trainable
            and all(not name.startswith(("brainharmonix.structure", "brainharmonix.function")) for name in trainable),
            "encoders must be frozen",
        )
        self.assertEqual([name for name, p in model.named_parameters() if p.requires_grad and p.grad is None], [])

    # The mixin decides which classes have a loss from transformers' own base-model names; our registered base
    # class is not among them, so these run on the classification head (Harmonizer and head train, encoders frozen).
    def test_training(self):
        self._check_head_trains()

    def check_training_gradient_checkpointing(self, gradient_checkpointing_kwargs=None):
        def enable(model):
            model.activation_checkpointing_enable(activation_checkpointing_kwargs=gradient_checkpointing_kwargs)
            self.assertTrue(model.is_activation_checkpointing)

        self._check_head_trains(enable)

    @unittest.skip(reason="Inputs are a volume and ROI series; there is no nn.Embedding input layer.")
    def test_model_get_set_embeddings(self):
        pass


# Behaviour beyond the common contract.


@pytest.fixture(scope="module")
def model() -> BrainHarmonixModel:
    torch.manual_seed(0)
    return BrainHarmonixModel(tiny_config()).eval()


def hub_tokens(model, **inputs) -> torch.Tensor:
    with torch.no_grad():
        return model(**inputs).last_hidden_state


def test_output_shapes_and_frozen_encoders(model):
    outputs = model(**tiny_inputs())
    assert outputs.last_hidden_state.shape == (3, 5, 24)
    assert outputs.pooler_output.shape == (3, 24)
    torch.testing.assert_close(outputs.pooler_output, outputs.last_hidden_state[:, 1:].mean(1))
    assert not any(p.requires_grad for p in model.structure.parameters())
    assert not any(p.requires_grad for p in model.function.parameters())
    assert all(p.requires_grad for p in model.harmonizer.parameters())
    model.train()
    assert model.harmonizer.training and not model.structure.training and not model.function.training
    model.eval()


def test_encoders_trainable_when_not_frozen():
    model = BrainHarmonixModel(tiny_config(freeze_encoders=False)).train()
    model(**tiny_inputs()).pooler_output.sum().backward()
    assert model.structure.embeddings.patch_embeddings.proj.weight.grad is not None
    assert model.function.patch_embedding.proj.weight.grad is not None


def test_hub_tokens_depend_on_both_modalities(model):
    inputs = tiny_inputs()
    reference = hub_tokens(model, **inputs)
    for key in ("pixel_values", "fmri_values"):
        perturbed = dict(inputs)
        perturbed[key] = inputs[key] + 0.5 * torch.randn_like(inputs[key]) * (inputs[key] != 0)
        change = (hub_tokens(model, **perturbed) - reference).abs().amax(dim=(1, 2))
        assert torch.all(change > 1e-3), f"hub tokens ignore {key}: {change}"


def test_padded_frames_do_not_change_hub_tokens(model):
    inputs = tiny_inputs()
    noisy = dict(inputs)
    padding = 1 - inputs["attention_mask"].unsqueeze(1)
    noisy["fmri_values"] = inputs["fmri_values"] + 100.0 * torch.randn_like(inputs["fmri_values"]) * padding
    torch.testing.assert_close(hub_tokens(model, **noisy), hub_tokens(model, **inputs), rtol=0, atol=1e-6)


def test_nan_and_inf_in_padded_frames_and_missing_modalities_leave_hub_tokens_unchanged(model):
    inputs = dict(tiny_inputs(batch_size=4), has_t1=torch.tensor([True, True, False, True]))
    inputs["has_fmri"] = torch.tensor([True, True, True, False])
    poisoned = {key: value.clone() for key, value in inputs.items()}
    padding = ~inputs["attention_mask"].bool()
    poisoned["fmri_values"][1].transpose(0, 1)[padding[1]] = float("nan")  # padded frames of a mixed-TR batch
    poisoned["fmri_values"][3] = float("inf")  # a subject without fMRI
    poisoned["pixel_values"][2] = float("nan")  # a subject without T1
    dirty = hub_tokens(model, **poisoned)
    assert torch.isfinite(dirty).all()
    torch.testing.assert_close(dirty, hub_tokens(model, **inputs), rtol=0, atol=1e-6)


def trainable_tensors(model) -> int:
    return sum(parameter.requires_grad for parameter in model.parameters())


def test_encoders_stay_frozen_after_build_from_pretrained_and_in_trainer(tmp_path):
    torch.manual_seed(0)
    classifier = BrainHarmonixForSequenceClassification(tiny_config(num_labels=2))
    head_and_harmonizer = len(list(classifier.brainharmonix.harmonizer.parameters())) + len(
        list(classifier.classifier.parameters())
    )
    assert trainable_tensors(classifier) == head_and_harmonizer
    classifier.save_pretrained(tmp_path)

    loaded = BrainHarmonixForSequenceClassification.from_pretrained(tmp_path)
    assert trainable_tensors(loaded) == head_and_harmonizer
    assert not any(p.requires_grad for p in loaded.brainharmonix.structure.parameters())
    assert not any(p.requires_grad for p in loaded.brainharmonix.function.parameters())
    composite = BrainHarmonixModel.from_pretrained(tmp_path)
    assert trainable_tensors(composite) == len(list(composite.harmonizer.parameters()))

    trainer = Trainer(
        model=loaded, args=TrainingArguments(output_dir=str(tmp_path / "run"), report_to=[], use_cpu=True)
    )
    optimizer = trainer.create_optimizer()
    in_optimizer = [p for group in optimizer.param_groups for p in group["params"]]
    assert len(in_optimizer) == head_and_harmonizer
    frozen = {id(p) for p in loaded.brainharmonix.structure.parameters()} | {
        id(p) for p in loaded.brainharmonix.function.parameters()
    }
    assert not frozen & {id(p) for p in in_optimizer}


def test_missing_modality_in_a_mixed_batch_equals_the_masked_computation(model):
    inputs = tiny_inputs()
    has_t1 = torch.tensor([True, False, True])
    has_fmri = torch.tensor([True, True, False])
    # The missing entries hold garbage: it must not matter.
    inputs["pixel_values"][1] = 1e3
    inputs["fmri_values"][2] = -1e3
    mixed = hub_tokens(model, **inputs, has_t1=has_t1, has_fmri=has_fmri)
    assert torch.isfinite(mixed).all()

    with torch.no_grad():
        latents = model.encode_modalities(**tiny_inputs())
        t1_mask = latents.t1_token_mask * has_t1.long().unsqueeze(1)
        fmri_mask = latents.fmri_token_mask * has_fmri.long().unsqueeze(1)
        masked = model.harmonizer(latents.fmri_latents, fmri_mask, latents.t1_latents, t1_mask).last_hidden_state
    torch.testing.assert_close(mixed, masked, rtol=0, atol=1e-5)

    # Each incomplete subject alone, with its missing modality left out, gives the same hub tokens.
    only_fmri = {key: value[1:2] for key, value in tiny_inputs().items() if key != "pixel_values"}
    torch.testing.assert_close(mixed[1:2], hub_tokens(model, **only_fmri), rtol=0, atol=1e-5)
    only_t1 = {"pixel_values": tiny_inputs()["pixel_values"][2:3]}
    torch.testing.assert_close(mixed[2:3], hub_tokens(model, **only_t1), rtol=0, atol=1e-5)


def test_a_subject_without_any_modality_is_refused(model):
    inputs = tiny_inputs()
    with pytest.raises(ValueError, match="neither"):
        model(**inputs, has_t1=torch.tensor([True, False, True]), has_fmri=torch.tensor([True, False, True]))


def test_bad_presence_flags_and_missing_tr_are_refused(model):
    inputs = tiny_inputs()
    with pytest.raises(ValueError, match="one flag per subject"):
        model(**inputs, has_t1=torch.tensor([True, False]))
    with pytest.raises(ValueError, match="repetition_time"):
        model(fmri_values=inputs["fmri_values"], attention_mask=inputs["attention_mask"])


def test_config_refuses_stages_that_do_not_fit_with_the_numbers_on_the_first_line():
    config = tiny_config()
    with pytest.raises(ValueError) as refused:
        BrainHarmonixConfig(
            structure_config=config.structure_config.to_dict(),
            function_config=config.function_config.to_dict(),
            harmonizer_config=config.harmonizer_config.to_dict() | {"num_fmri_tokens": 20, "latent_size": 16},
        )
    assert str(refused.value).splitlines()[0] == (
        "The stages do not fit: num_fmri_tokens: encoders give 24, harmonizer_config has 20; latent_size (T1 encoder "
        "width): encoders give 24, harmonizer_config has 16; latent_size (fMRI encoder width): encoders give 24, "
        "harmonizer_config has 16."
    )


def test_save_and_load_round_trip(model, tmp_path):
    model.save_pretrained(tmp_path)
    # Besides weights and config: the model card and the code (`*.py`) that loads it without the package.
    saved = sorted(path.name for path in tmp_path.iterdir() if path.suffix != ".py")
    assert saved == ["README.md", "config.json", "model.safetensors"]
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, BrainHarmonixModel)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name
    assert not any(p.requires_grad for p in loaded.structure.parameters())
    # Weights are bit-identical; outputs agree to float32 rounding (memory-mapped tensors are not 64-byte aligned,
    # so BLAS may take a different vector path).
    torch.testing.assert_close(
        hub_tokens(loaded, **tiny_inputs()), hub_tokens(model, **tiny_inputs()), rtol=0, atol=1e-6
    )
    # Each stage's config can be read from the composite folder.
    assert AutoConfig.from_pretrained(tmp_path).harmonizer_config.num_hub_tokens == 4
    assert StructureMAEConfig.from_pretrained(tmp_path).image_size == [32, 32, 32]


def test_assembled_from_separately_saved_stages(model, tmp_path):
    for name in ("structure", "function", "harmonizer"):
        getattr(model, name).save_pretrained(tmp_path / name)
    stages = (
        StructureMAEModel.from_pretrained(tmp_path / "structure"),
        FunctionJEPAModel.from_pretrained(tmp_path / "function"),
        HarmonizerModel.from_pretrained(tmp_path / "harmonizer"),
    )
    assembled = BrainHarmonixModel.from_stages(*stages).eval()
    torch.testing.assert_close(
        hub_tokens(assembled, **tiny_inputs()), hub_tokens(model, **tiny_inputs()), rtol=0, atol=1e-6
    )


def test_classification_head_loads_the_composite_and_computes_losses(model, tmp_path):
    model.save_pretrained(tmp_path)
    classifier = AutoModelForSequenceClassification.from_pretrained(tmp_path, num_labels=3).eval()
    assert isinstance(classifier, BrainHarmonixForSequenceClassification)
    torch.testing.assert_close(
        classifier.brainharmonix.harmonizer.layers[0].mlp.fc1.weight, model.harmonizer.layers[0].mlp.fc1.weight
    )
    labels = torch.tensor([0, 2, 1])
    outputs = classifier(**tiny_inputs(), labels=labels)
    assert outputs.logits.shape == (3, 3)
    torch.testing.assert_close(outputs.loss, torch.nn.functional.cross_entropy(outputs.logits, labels))
    # The head is initialised near zero (std 2e-5), so untrained logits are tiny.
    assert classifier.classifier.dense.weight.std().item() < 1e-4

    regressor = AutoModelForSequenceClassification.from_pretrained(tmp_path, num_labels=1).eval()
    targets = torch.tensor([0.5, -1.0, 2.0])
    outputs = regressor(**tiny_inputs(), labels=targets)
    torch.testing.assert_close(outputs.loss, torch.nn.functional.mse_loss(outputs.logits.squeeze(-1), targets))


# The combined processor.


@pytest.fixture
def processor() -> BrainHarmonixProcessor:
    # Random volumes are not brains in MNI space: skip that check (tests/processing covers it).
    t1 = T1VolumeFeatureExtractor(volume_size=[32, 32, 32], reference_padding=[[0, 0]] * 3, check_mni_space=False)
    fmri = FMRIFeatureExtractor(num_rois=6, atlas="tiny6", num_time_patches=4, window_seconds=8.0)
    return BrainHarmonixProcessor(t1, fmri)


def test_processor_round_trip_through_auto_processor(processor, model, tmp_path):
    processor.fmri_feature_extractor.normalization = "zscore"
    processor.save_pretrained(tmp_path)
    model.save_pretrained(tmp_path)
    loaded = AutoProcessor.from_pretrained(tmp_path)
    assert isinstance(loaded, BrainHarmonixProcessor)
    assert loaded.fmri_feature_extractor.normalization == "zscore"
    assert loaded.t1_feature_extractor.volume_size == [32, 32, 32]
    rng = np.random.default_rng(0)
    volume, series = rng.random((30, 34, 32)), rng.random((6, 14))
    expected = processor(t1=volume, fmri=series, repetition_time=2.0, layout="rois_first", affine=np.eye(4))
    got = loaded(t1=volume, fmri=series, repetition_time=2.0, layout="rois_first", affine=np.eye(4))
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key])


def test_processor_batch_with_missing_modalities_feeds_the_model(processor, model):
    rng = np.random.default_rng(1)
    features = processor(
        t1=[rng.random((32, 32, 32)), None, rng.random((32, 32, 32))],
        fmri=[rng.random((6, 30)), rng.random((6, 12)), None],
        repetition_time=[1.0, 2.0, None],
        layout="rois_first",
        affine=np.eye(4),
        return_tensors="pt",
    )
    assert features["pixel_values"].shape == (3, 1, 32, 32, 32)
    assert features["has_t1"].tolist() == [True, False, True]
    assert features["has_fmri"].tolist() == [True, True, False]
    assert torch.count_nonzero(features["pixel_values"][1]) == 0
    assert features["attention_mask"].sum(1).tolist() == [30, 12, 0]
    assert torch.isnan(features["repetition_time"][2])
    outputs = model(**features)
    assert torch.isfinite(outputs.last_hidden_state).all()


def test_processor_errors_name_the_fix(processor):
    with pytest.raises(ValueError, match="at least one modality"):
        processor()
    with pytest.raises(ValueError, match="one entry per subject"):
        processor(t1=[np.ones((32, 32, 32))], fmri=[np.ones((6, 8)), np.ones((6, 8))], repetition_time=1.0)
    with pytest.raises(ValueError, match="fmri_atlas_image"):
        processor(fmri="run.nii.gz")
    with pytest.raises(ValueError, match=r"run.txt holds.*ROI table \(.csv/.tsv"):
        processor(fmri="run.txt", repetition_time=1.0)
