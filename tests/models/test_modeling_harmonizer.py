# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""transformers' common model and config tests run against the three Harmonizer classes, with a tiny config."""

import unittest

import numpy as np
import pytest
import torch
from datasets import Dataset
from hf_common.upstream.test_configuration_common import ConfigTester
from hf_common.upstream.test_modeling_common import ModelTesterMixin, floats_tensor
from huggingface_hub.errors import StrictDataclassClassValidationError
from transformers import (
    AutoConfig,
    AutoModelForPreTraining,
    AutoModelForSequenceClassification,
    EvalPrediction,
    Trainer,
    TrainingArguments,
)

from brainharmonix_hf import (
    HarmonizerConfig,
    HarmonizerForLinearProbing,
    HarmonizerForPreTraining,
    HarmonizerForSequenceClassification,
    HarmonizerModel,
)
from brainharmonix_hf.modeling.harmonizer_tokens import hide_one_modality


def tiny_harmonizer_config(**overrides) -> HarmonizerConfig:
    """12 fMRI + 8 T1 tokens of width 16, a 2-layer 32-wide encoder, 4 hub tokens, a 1-layer 16-wide decoder."""
    fields = {
        "num_fmri_tokens": 12,
        "num_t1_tokens": 8,
        "latent_size": 16,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 64,
        "num_hub_tokens": 4,
        "decoder_hidden_size": 16,
        "decoder_num_hidden_layers": 1,
        "decoder_num_attention_heads": 2,
        "decoder_intermediate_size": 32,
    }
    return HarmonizerConfig(**(fields | overrides))


class HarmonizerModelTester:
    """Three subjects with both modalities; the first has only 6 of its 12 fMRI tokens valid."""

    def __init__(self, parent, batch_size=3, is_training=True):
        self.parent = parent
        self.batch_size = batch_size
        self.is_training = is_training
        self.num_fmri_tokens = 12
        self.num_t1_tokens = 8
        self.latent_size = 16
        self.hidden_size = 32
        self.num_hidden_layers = 2
        self.num_attention_heads = 4
        self.num_hub_tokens = 4
        # Tokens seen by attention: CLS + hub tokens + the valid latent tokens of the fullest subject.
        self.seq_length = 1 + self.num_fmri_tokens + self.num_t1_tokens + self.num_hub_tokens

    def get_config(self) -> HarmonizerConfig:
        return tiny_harmonizer_config()

    def prepare_config_and_inputs_for_common(self) -> tuple[HarmonizerConfig, dict]:
        fmri_token_mask = torch.ones(self.batch_size, self.num_fmri_tokens, dtype=torch.long)
        fmri_token_mask[0, 6:] = 0
        inputs = {
            "fmri_latents": floats_tensor([self.batch_size, self.num_fmri_tokens, self.latent_size]),
            "fmri_token_mask": fmri_token_mask,
            "t1_latents": floats_tensor([self.batch_size, self.num_t1_tokens, self.latent_size]),
        }
        return self.get_config(), inputs


class HarmonizerCommonTest(ModelTesterMixin, unittest.TestCase):
    all_model_classes = (
        HarmonizerModel,
        HarmonizerForPreTraining,
        HarmonizerForSequenceClassification,
        HarmonizerForLinearProbing,
    )
    pipeline_model_mapping = {}
    test_resize_embeddings = False
    test_torch_exportable = False
    has_attentions = True

    def setUp(self):
        self.model_tester = HarmonizerModelTester(self)
        # The strict config refuses the tester's default hidden_size=37 (odd, and not a multiple of the heads).
        self.config_tester = ConfigTester(
            self, config_class=HarmonizerConfig, has_text_modality=False, hidden_size=48, num_attention_heads=4
        )

    def test_config(self):
        self.config_tester.run_common_tests()

    # The mixin adds labels only for classes named in transformers' own mappings; ours are registered, not named.
    def _prepare_for_class(self, inputs_dict, model_class, return_labels=False):
        inputs_dict = super()._prepare_for_class(inputs_dict, model_class, return_labels=return_labels)
        if return_labels and model_class in (HarmonizerForSequenceClassification, HarmonizerForLinearProbing):
            inputs_dict["labels"] = torch.zeros(self.model_tester.batch_size, dtype=torch.long)
        return inputs_dict

    def _loss_of_each_head(self, configure_model=None):
        config, inputs = self.model_tester.prepare_config_and_inputs_for_common()
        labels = torch.tensor([0, 1, 1])
        for model_class, extra in (
            (HarmonizerForPreTraining, {}),
            (HarmonizerForSequenceClassification, {"labels": labels}),
            (HarmonizerForLinearProbing, {"labels": labels}),
        ):
            model = model_class(config).train()
            if configure_model is not None:
                configure_model(model)
            model(**inputs, **extra).loss.backward()
            missing = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
            self.assertEqual(missing, [], f"{model_class.__name__} parameters without gradient")

    # The mixin decides which classes have a loss from transformers' own base-model names; our registered base class
    # is not among them, so these run on the two heads only (every trainable parameter must get a gradient).
    def test_training(self):
        self._loss_of_each_head()

    def check_training_gradient_checkpointing(self, gradient_checkpointing_kwargs=None):
        def enable(model):
            model.activation_checkpointing_enable(activation_checkpointing_kwargs=gradient_checkpointing_kwargs)
            self.assertTrue(model.is_activation_checkpointing)

        self._loss_of_each_head(enable)

    @unittest.skip(reason="Inputs are encoder latents; there is no nn.Embedding input layer.")
    def test_model_get_set_embeddings(self):
        pass


# Behaviour of the Harmonizer beyond the common contract.


def mixed_batch(seed: int = 0) -> dict:
    """Four subjects: fMRI with 6 of 12 tokens valid + T1, both complete, T1 only, fMRI only."""
    generator = torch.Generator().manual_seed(seed)
    fmri_token_mask = torch.ones(4, 12, dtype=torch.long)
    fmri_token_mask[0, 6:] = 0
    fmri_token_mask[2] = 0
    t1_token_mask = torch.ones(4, 8, dtype=torch.long)
    t1_token_mask[3] = 0
    return {
        "fmri_latents": torch.randn(4, 12, 16, generator=generator),
        "fmri_token_mask": fmri_token_mask,
        "t1_latents": torch.randn(4, 8, 16, generator=generator),
        "t1_token_mask": t1_token_mask,
    }


def build(model_class, **overrides):
    torch.manual_seed(0)
    return model_class(tiny_harmonizer_config(attn_implementation="eager", **overrides)).eval()


def masked_reference(model: HarmonizerModel, fmri_latents, fmri_token_mask, t1_latents, t1_token_mask):
    """The encoder over every latent token in the order `[CLS, fMRI, T1, hub]`, padded / missing tokens masked in
    attention instead of dropped (eager additive mask)."""
    embeddings, num_hub = model.embeddings, model.config.num_hub_tokens
    latents = torch.cat([fmri_latents, t1_latents], dim=1)
    batch_size = latents.shape[0]
    positions = embeddings.position_embeddings
    sequence = torch.cat(
        [
            (embeddings.cls_token + positions[:1]).expand(batch_size, -1, -1),
            embeddings.input_projection(latents) + positions[1:],
            (embeddings.hub_tokens + embeddings.hub_position_embeddings).expand(batch_size, -1, -1),
        ],
        dim=1,
    )
    keep = torch.cat([torch.ones(batch_size, 1), fmri_token_mask, t1_token_mask, torch.ones(batch_size, num_hub)], 1)
    additive_mask = torch.zeros(batch_size, 1, 1, keep.shape[1]).masked_fill(
        ~keep.bool()[:, None, None, :], torch.finfo(torch.float32).min
    )
    for layer in model.layers:
        sequence = layer(sequence, additive_mask)
    return model.layernorm(torch.cat([sequence[:, :1], sequence[:, -num_hub:]], dim=1))


@torch.no_grad()
def test_packing_matches_masked_computation():
    model, batch = build(HarmonizerModel), mixed_batch()
    output = model(**batch)
    assert output.last_hidden_state.shape == (4, 1 + 4, 32)
    torch.testing.assert_close(output.last_hidden_state, masked_reference(model, **batch), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(output.pooler_output, output.last_hidden_state[:, 1:].mean(dim=1))


@torch.no_grad()
def test_padded_and_missing_tokens_are_not_computed():
    model, batch = build(HarmonizerModel), mixed_batch()
    # Without the complete subject the fullest one has 6 fMRI + 8 T1 valid tokens.
    subset = {name: value[[0, 2, 3]] for name, value in batch.items()}
    hidden_states = model(**subset, output_hidden_states=True).hidden_states
    assert [h.shape[1] for h in hidden_states] == [1 + 4 + 14] * 3


@torch.no_grad()
def test_padded_fmri_values_do_not_change_output():
    model, batch = build(HarmonizerModel), mixed_batch()
    altered = dict(batch, fmri_latents=batch["fmri_latents"].clone())
    altered["fmri_latents"][0, 6:] = 1e3 * torch.randn(6, 16)
    altered["fmri_latents"][2] = -1e3
    assert torch.equal(model(**batch).last_hidden_state, model(**altered).last_hidden_state)


def with_non_finite_padding(batch: dict) -> dict:
    """`mixed_batch` with NaN in the padded fMRI tokens and the missing fMRI, Inf in the missing T1 tokens."""
    poisoned = dict(batch, fmri_latents=batch["fmri_latents"].clone(), t1_latents=batch["t1_latents"].clone())
    poisoned["fmri_latents"][~batch["fmri_token_mask"].bool()] = float("nan")
    poisoned["t1_latents"][~batch["t1_token_mask"].bool()] = float("inf")
    return poisoned


def test_nan_and_inf_in_padded_latents_leave_outputs_and_loss_unchanged():
    batch = mixed_batch()
    poisoned = with_non_finite_padding(batch)
    model = build(HarmonizerModel)
    with torch.no_grad():
        clean, dirty = model(**batch).last_hidden_state, model(**poisoned).last_hidden_state
    assert torch.isfinite(dirty).all()
    torch.testing.assert_close(dirty, clean, rtol=0, atol=1e-6)

    pretraining = build(HarmonizerForPreTraining)
    loss = pretraining(**poisoned).loss
    loss.backward()
    torch.testing.assert_close(loss, pretraining(**batch).loss, rtol=0, atol=1e-6)
    assert all(torch.isfinite(p.grad).all() for p in pretraining.parameters() if p.grad is not None)


@torch.no_grad()
def test_missing_modality_equals_masked_modality():
    model, batch = build(HarmonizerModel), mixed_batch()
    fmri, t1 = batch["fmri_latents"], batch["t1_latents"]
    no_t1 = torch.zeros(4, 8, dtype=torch.long)
    fmri_only = model(fmri_latents=fmri).last_hidden_state
    masked_t1 = model(fmri_latents=fmri, t1_latents=t1, t1_token_mask=no_t1).last_hidden_state
    assert torch.isfinite(fmri_only).all()
    assert torch.equal(fmri_only, masked_t1)
    torch.testing.assert_close(
        fmri_only, masked_reference(model, fmri, torch.ones(4, 12), t1, no_t1), atol=1e-5, rtol=1e-5
    )

    t1_only = model(t1_latents=t1).last_hidden_state
    masked_fmri = model(fmri_latents=fmri, fmri_token_mask=torch.zeros(4, 12), t1_latents=t1).last_hidden_state
    assert torch.isfinite(t1_only).all()
    assert torch.equal(t1_only, masked_fmri)


@torch.no_grad()
def test_hub_tokens_depend_on_both_modalities():
    model, batch = build(HarmonizerModel), mixed_batch()
    reference = model(**batch).last_hidden_state
    for name, token in (("fmri_latents", 3), ("t1_latents", 2)):
        perturbed = dict(batch, **{name: batch[name].clone()})
        perturbed[name][1, token] += 1.0
        output = model(**perturbed).last_hidden_state
        assert (output[1] - reference[1]).abs().max() > 1e-3, name
        # Subjects are independent of each other.
        assert torch.equal(output[[0, 2, 3]], reference[[0, 2, 3]]), name


@torch.no_grad()
def test_save_load_round_trip_is_exact(tmp_path):
    model, batch = build(HarmonizerForPreTraining), mixed_batch()
    model.save_pretrained(tmp_path)
    # Besides weights and config: the model card and the code (`*.py`) that loads it without the package.
    saved = sorted(path.name for path in tmp_path.iterdir() if path.suffix != ".py")
    assert saved == ["README.md", "config.json", "model.safetensors"]

    loaded = AutoModelForPreTraining.from_pretrained(tmp_path, attn_implementation="eager").eval()
    assert type(loaded) is HarmonizerForPreTraining
    assert isinstance(AutoConfig.from_pretrained(tmp_path), HarmonizerConfig)
    expected, actual = model.state_dict(), loaded.state_dict()
    assert expected.keys() == actual.keys()
    assert all(torch.equal(expected[key], actual[key]) for key in expected)
    before, after = model(**batch), loaded(**batch)
    assert torch.equal(before.reconstruction, after.reconstruction)
    assert torch.equal(before.loss, after.loss)

    # Fine-tuning starts from the pretrained encoder; its final LayerNorm and the decoder are left behind.
    classifier = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    assert type(classifier) is HarmonizerForSequenceClassification
    encoder_keys = [key for key in classifier.state_dict() if key.startswith("harmonizer.")]
    assert len(encoder_keys) > 0
    assert all(torch.equal(classifier.state_dict()[key], expected[key]) for key in encoder_keys)


def test_pretraining_loss_falls_on_fixed_latents():
    model, batch = build(HarmonizerForPreTraining), mixed_batch()
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        loss = model(**batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0], losses


def hand_reconstruction_loss(reconstruction: torch.Tensor, latents: torch.Tensor, counted: torch.Tensor):
    """Mean over the counted tokens of the per-token MSE to the standardised latent token."""
    errors = []
    for subject, token in counted.nonzero().tolist():
        target = latents[subject, token]
        target = (target - target.mean()) / torch.sqrt(target.var() + 1e-6)
        errors.append(torch.nn.functional.mse_loss(reconstruction[subject, token], target))
    return torch.stack(errors).mean()


@torch.no_grad()
def test_loss_counts_valid_tokens_by_default_and_padded_fmri_with_flag():
    model, batch = build(HarmonizerForPreTraining), mixed_batch()
    latents = torch.cat([batch["fmri_latents"], batch["t1_latents"]], dim=1)
    valid = torch.cat([batch["fmri_token_mask"], batch["t1_token_mask"]], dim=1).bool()

    output = model(**batch)
    assert output.reconstruction.shape == (4, 20, 16)
    torch.testing.assert_close(output.loss, hand_reconstruction_loss(output.reconstruction, latents, valid))

    model.config.include_padded_fmri_in_loss = True
    with_padding = model(**batch)
    counted = valid.clone()
    counted[0, :12] = True  # subject 0's padded fMRI tokens; subject 2 has no fMRI and still counts none
    torch.testing.assert_close(
        with_padding.loss, hand_reconstruction_loss(with_padding.reconstruction, latents, counted)
    )
    assert abs(with_padding.loss.item() - output.loss.item()) > 1e-4
    assert model(**batch, return_loss=False).loss is None


@pytest.mark.parametrize(
    ("num_labels", "problem_type", "labels", "expected_loss"),
    [
        (3, None, torch.tensor([0, 2, 1, 2]), torch.nn.functional.cross_entropy),
        (
            3,
            "multi_label_classification",
            torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0], [0.0, 1.0, 0.0]]),
            torch.nn.functional.binary_cross_entropy_with_logits,
        ),
        (1, None, torch.tensor([0.5, -1.0, 2.0, 0.0]), lambda logits, y: ((logits[:, 0] - y) ** 2).mean()),
    ],
    ids=["single_label", "multi_label", "regression"],
)
@torch.no_grad()
def test_classification_and_regression_losses(num_labels, problem_type, labels, expected_loss):
    model = build(HarmonizerForSequenceClassification, num_labels=num_labels, problem_type=problem_type)
    output = model(**mixed_batch(), labels=labels)
    assert output.logits.shape == (4, num_labels)
    torch.testing.assert_close(output.loss, expected_loss(output.logits, labels))


@torch.no_grad()
def test_classification_head_pools_hub_tokens_without_final_layernorm():
    model = build(HarmonizerForSequenceClassification)
    assert model.harmonizer.layernorm is None
    assert model.classifier.dense.weight.std() < 1e-4 and torch.count_nonzero(model.classifier.dense.bias) == 0
    model.classifier.dense.weight.normal_()  # make the logits large enough to compare meaningfully

    output = model(**mixed_batch(), output_hidden_states=True)
    last_layer = output.hidden_states[-1]  # [CLS, 4 hub tokens, valid latent tokens], before any LayerNorm
    expected = model.classifier.dense(model.classifier.norm(last_layer[:, 1:5].mean(dim=1)))
    torch.testing.assert_close(output.logits, expected)


def test_hide_one_modality_statistics():
    torch.manual_seed(0)
    both = torch.ones(4000, 20, dtype=torch.long)
    hidden = both - hide_one_modality(both, num_fmri_tokens=12, probability=0.3)
    fmri_hidden = hidden[:, :12].all(dim=1)
    t1_hidden = hidden[:, 12:].all(dim=1)
    assert torch.equal(hidden.bool().any(dim=1), fmri_hidden | t1_hidden)  # whole modalities only
    assert not (fmri_hidden & t1_hidden).any()
    assert abs((fmri_hidden | t1_hidden).float().mean().item() - 0.3) < 0.03
    assert abs(fmri_hidden.float().mean().item() - 0.15) < 0.03

    one_modality = mixed_batch()
    mask = torch.cat([one_modality["fmri_token_mask"], one_modality["t1_token_mask"]], dim=1)[2:]
    assert torch.equal(hide_one_modality(mask, num_fmri_tokens=12, probability=1.0), mask)


@torch.no_grad()
def test_modality_dropout_applies_only_while_training():
    batch = mixed_batch()
    model = build(HarmonizerModel, modality_dropout=1.0)
    plain = build(HarmonizerModel)
    assert torch.equal(model(**batch).last_hidden_state, plain(**batch).last_hidden_state)

    complete = {name: value[1:2] for name, value in batch.items()}
    fmri_only = plain(fmri_latents=complete["fmri_latents"]).last_hidden_state
    t1_only = plain(t1_latents=complete["t1_latents"]).last_hidden_state
    model.train()
    seen = set()
    for _ in range(12):
        output = model(**complete).last_hidden_state
        matches = [torch.allclose(output, fmri_only, atol=1e-6), torch.allclose(output, t1_only, atol=1e-6)]
        assert sum(matches) == 1
        seen.add(matches.index(True))
    assert seen == {0, 1}


def test_drop_path_rate_rises_over_encoder_layers_only():
    model = build(HarmonizerForPreTraining, drop_path_rate=0.1, num_hidden_layers=3)
    assert [layer.drop_path.drop_prob for layer in model.harmonizer.layers] == pytest.approx([0.0, 0.05, 0.1])
    assert all(layer.drop_path.drop_prob == 0.0 for layer in model.decoder.layers)


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({}, "neither was given"),
        ({"fmri_latents": torch.randn(2, 10, 16)}, r"shape \(batch, 12, 16\)"),
        ({"t1_token_mask": torch.ones(2, 8)}, "without t1_latents"),
        (
            {"fmri_latents": torch.randn(2, 12, 16), "fmri_token_mask": torch.ones(2, 11)},
            r"fmri_token_mask must have shape \(2, 12\)",
        ),
        ({"fmri_latents": torch.randn(2, 12, 16), "t1_latents": torch.randn(3, 8, 16)}, "same subjects"),
        (
            {
                "fmri_latents": torch.randn(2, 12, 16),
                "fmri_token_mask": torch.tensor([[1] * 12, [0] * 12]),
                "t1_latents": torch.randn(2, 8, 16),
                "t1_token_mask": torch.tensor([[1] * 8, [0] * 8]),
            },
            r"batch index \[1\].*remove them",
        ),
    ],
    ids=[
        "no_inputs",
        "wrong_token_count",
        "mask_without_latents",
        "wrong_mask_shape",
        "batch_mismatch",
        "empty_subject",
    ],
)
def test_bad_inputs_raise_clear_errors(inputs, message):
    with pytest.raises(ValueError, match=message):
        build(HarmonizerModel)(**inputs)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"hidden_size": 30}, "divisible by num_attention_heads"),
        ({"decoder_hidden_size": 15, "decoder_num_attention_heads": 3}, "decoder_hidden_size=15 must be even"),
        ({"num_hub_tokens": 0}, "num_hub_tokens must be at least 1"),
        ({"modality_dropout": 1.5}, "modality_dropout is a probability"),
        ({"drop_path_rate": 1.0}, r"drop_path_rate must be in \[0, 1\)"),
    ],
)
def test_config_rejects_inconsistent_fields(overrides, message):
    with pytest.raises(StrictDataclassClassValidationError, match=message):
        tiny_harmonizer_config(**overrides)


# Training through a real transformers.Trainer on cached-latent datasets.


def latent_dataset(num_subjects: int, seed: int) -> Dataset:
    """Random latents whose fMRI part is shifted by the binary label (so it is learnable); every third subject has
    4 padded fMRI tokens."""
    rng = np.random.default_rng(seed)
    labels = np.arange(num_subjects) % 2
    fmri_token_mask = np.ones((num_subjects, 12), dtype=np.int64)
    fmri_token_mask[::3, 8:] = 0
    columns = {
        "fmri_latents": rng.normal(size=(num_subjects, 12, 16)).astype(np.float32) + 0.5 * labels[:, None, None],
        "fmri_token_mask": fmri_token_mask,
        "t1_latents": rng.normal(size=(num_subjects, 8, 16)).astype(np.float32),
        "labels": labels,
    }
    return Dataset.from_dict(columns).with_format("torch")


def accuracy(prediction: EvalPrediction) -> dict:
    return {"accuracy": float((prediction.predictions.argmax(-1) == prediction.label_ids).mean())}


def fine_tune(output_dir, per_device_batch_size: int, gradient_accumulation_steps: int):
    torch.manual_seed(0)
    model = HarmonizerForSequenceClassification(tiny_harmonizer_config())
    arguments = TrainingArguments(
        output_dir=output_dir,
        use_cpu=True,
        report_to=[],
        per_device_train_batch_size=per_device_batch_size,
        gradient_accumulation_steps=gradient_accumulation_steps,
        per_device_eval_batch_size=8,
        num_train_epochs=6,
        learning_rate=2e-3,
        logging_steps=1,
        save_strategy="no",
        seed=0,
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=model,
        args=arguments,
        train_dataset=latent_dataset(16, seed=0),
        eval_dataset=latent_dataset(8, seed=1),
        compute_metrics=accuracy,
    )
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return trainer, model, losses


def test_trainer_fine_tuning_with_gradient_accumulation_matches_full_batches(tmp_path):
    trainer, model, losses = fine_tune(tmp_path / "full", per_device_batch_size=8, gradient_accumulation_steps=1)
    _, accumulated_model, accumulated_losses = fine_tune(
        tmp_path / "accumulated", per_device_batch_size=4, gradient_accumulation_steps=2
    )
    assert len(losses) == 12
    assert losses[-1] < 0.85 * losses[0], losses
    # Same effective batch: same logged losses (Trainer divides the plain-mean loss by the accumulation steps) and
    # the same weights up to float rounding.
    np.testing.assert_allclose(accumulated_losses, losses, rtol=1e-5)
    for (name, parameter), accumulated in zip(model.named_parameters(), accumulated_model.parameters(), strict=True):
        torch.testing.assert_close(accumulated, parameter, atol=1e-3, rtol=0, msg=name)

    metrics = trainer.evaluate()
    assert set(metrics) >= {"eval_loss", "eval_accuracy"}
    assert 0.0 <= metrics["eval_accuracy"] <= 1.0


@torch.no_grad()
def test_trainer_evaluate_reports_pretraining_loss(tmp_path):
    model = build(HarmonizerForPreTraining)
    evaluation_set = latent_dataset(6, seed=2).remove_columns("labels")
    arguments = TrainingArguments(
        output_dir=tmp_path, use_cpu=True, report_to=[], per_device_eval_batch_size=6, prediction_loss_only=True
    )
    metrics = Trainer(model=model, args=arguments, eval_dataset=evaluation_set).evaluate()
    expected = model(**evaluation_set[:]).loss
    assert metrics["eval_loss"] == pytest.approx(expected.item(), rel=1e-5)
