"""Fine-tuning with Trainer on real cached latents and raw files: the recipe, layer-wise lr decay, best-model
selection, linear probing and LoRA."""

import pytest
import torch
from real_cohort import tiny_config

from brainharmonix_hf import (
    BrainHarmonixForSequenceClassification,
    BrainHarmonixModel,
    BrainHarmonixProcessor,
    HarmonizerForLinearProbing,
    HarmonizerForSequenceClassification,
)
from brainharmonix_hf.training.finetune import (
    FineTuneRecipe,
    ManifestRowCollator,
    apply_lora,
    finetune,
    finetune_arguments,
    label_mapping,
    layerwise_decay_optimizer,
    load_for_finetuning,
)
from brainharmonix_hf.training.latent_cache import cache_latents, load_latent_cache, with_model_inputs
from brainharmonix_hf.training.manifest import load_manifest

LABELS = {0: 0, 1: 1}


@pytest.fixture(scope="module")
def splits(latent_cache):
    """Train (8 subjects) and validation (4) sets of the cohort's cached latents, as model inputs."""
    cache = load_latent_cache(latent_cache)
    parts = {split: cache.filter(lambda row, split=split: row["split"] == split) for split in ("train", "validation")}
    return {split: with_model_inputs(part, LABELS) for split, part in parts.items()}


def test_recipe_defaults_and_label_mapping():
    args = finetune_arguments("unused", FineTuneRecipe())
    assert (args.learning_rate, args.weight_decay, args.num_train_epochs, args.per_device_train_batch_size) == (
        5e-4,
        0.05,
        50,
        16,
    )
    assert (args.label_smoothing_factor, args.warmup_steps, args.metric_for_best_model) == (0.1, 0.1, "f1")
    assert args.load_best_model_at_end and args.greater_is_better
    regression = finetune_arguments("unused", regression=True)
    assert (regression.label_smoothing_factor, regression.metric_for_best_model, regression.greater_is_better) == (
        0.0,
        "mse",
        False,
    )
    assert label_mapping(["patient", "control", None, "patient"]) == {"control": 0, "patient": 1}
    with pytest.raises(ValueError, match="at least two classes"):
        label_mapping([1, 1])


def test_layerwise_lr_decay_groups(harmonizer_dir):
    config = tiny_config().harmonizer_config
    config.num_hidden_layers = 3
    model = HarmonizerForSequenceClassification(config)
    optimizer = layerwise_decay_optimizer(model, finetune_arguments("unused"), layer_decay=0.5)
    lr_of = {id(p): (group["lr"], group["weight_decay"]) for group in optimizer.param_groups for p in group["params"]}
    named = dict(model.named_parameters())
    assert len(lr_of) == len(named)  # every trainable parameter, once
    # L = 3 layers: embeddings 5e-4 · 0.5^4, layer i 5e-4 · 0.5^(3 - i), head 5e-4.
    assert lr_of[id(named["harmonizer.embeddings.hub_tokens"])] == (5e-4 * 0.5**4, 0.0)
    assert lr_of[id(named["harmonizer.layers.0.attention.qkv.weight"])] == (5e-4 * 0.5**3, 0.05)
    assert lr_of[id(named["harmonizer.layers.0.attention.qkv.bias"])] == (5e-4 * 0.5**3, 0.0)
    assert lr_of[id(named["harmonizer.layers.2.mlp.fc2.weight"])] == (5e-4 * 0.5, 0.05)
    assert lr_of[id(named["classifier.dense.weight"])] == (5e-4, 0.05)
    assert lr_of[id(named["classifier.norm.weight"])] == (5e-4, 0.0)


def test_finetune_on_cached_latents_learns_and_keeps_the_best_f1(harmonizer_dir, splits, tmp_path):
    model = load_for_finetuning(HarmonizerForSequenceClassification, harmonizer_dir, label2id=LABELS)
    assert model.config.drop_path_rate == 0.1 and model.config.id2label == {0: "0", 1: "1"}
    assert model.harmonizer.layers[0].drop_path.drop_prob == 0.1
    # A randomly initialised Harmonizer: a fast head and slow layers (the recipe's lr suits pretrained weights).
    recipe = FineTuneRecipe(learning_rate=2e-2, layer_decay=0.1, num_epochs=16, warmup_epochs=1, batch_size=4)
    trainer = finetune(
        model, splits["train"], splits["validation"], str(tmp_path), recipe=recipe, seed=0, disable_tqdm=True
    )
    history = trainer.state.log_history
    train_losses = [entry["loss"] for entry in history if "loss" in entry]
    eval_f1 = [entry["eval_f1"] for entry in history if "eval_f1" in entry]
    assert len(train_losses) == 16 and len(eval_f1) == 16
    # The head starts at zero logits (loss ln 2); label smoothing 0.1 keeps the loss above ~0.2.
    assert train_losses[0] == pytest.approx(0.6931, abs=1e-3)
    assert sum(train_losses[-3:]) / 3 < 0.93 * train_losses[0], train_losses
    # The kept model is the checkpoint with the best validation F1 (the earliest of equals), evaluated again.
    assert trainer.state.best_metric == max(eval_f1)
    assert trainer.evaluate()["eval_f1"] == pytest.approx(max(eval_f1))
    assert trainer.state.best_model_checkpoint.endswith(f"checkpoint-{2 * (eval_f1.index(max(eval_f1)) + 1)}")
    # Trainer's schedule scaled every group from its own lr: the layer-wise ratios hold (1 layer: ids 0, 1, 2).
    initial = {group["layer_id"]: group["initial_lr"] for group in trainer.optimizer.param_groups}
    assert initial == pytest.approx({0: 2e-2 * 0.1**2, 1: 2e-2 * 0.1, 2: 2e-2})


def test_linear_probe_trains_only_its_head(harmonizer_dir, splits, tmp_path):
    model = load_for_finetuning(HarmonizerForLinearProbing, harmonizer_dir, label2id=LABELS)
    trainable = [name for name, parameter in model.named_parameters() if parameter.requires_grad]
    assert trainable == ["classifier.dense.weight", "classifier.dense.bias"]
    assert not model.classifier.norm.affine and model.classifier.norm.weight is None
    frozen = {name: value.clone() for name, value in model.harmonizer.state_dict().items()}
    head = model.classifier.dense.weight.detach().clone()
    recipe = FineTuneRecipe(learning_rate=1e-2, num_epochs=3, warmup_epochs=0, batch_size=4)
    trainer = finetune(
        model, splits["train"], splits["validation"], str(tmp_path), recipe=recipe, seed=0, disable_tqdm=True
    )
    trained = trainer.model
    assert all(torch.equal(frozen[name], value) for name, value in trained.harmonizer.state_dict().items())
    assert not torch.equal(head, trained.classifier.dense.weight)
    # Running statistics were fitted on the training set (2 batches per epoch) and are used in evaluation.
    batches = int(trained.classifier.norm.num_batches_tracked)
    assert batches % 2 == 0 and batches > 0
    assert not torch.equal(trained.classifier.norm.running_var, torch.ones(24))


def test_lora_trains_only_adapters_and_head_then_merges(harmonizer_dir, splits, tmp_path):
    base = load_for_finetuning(HarmonizerForSequenceClassification, harmonizer_dir, label2id=LABELS, drop_path_rate=0)
    original = {name: value.clone() for name, value in base.state_dict().items()}
    model = apply_lora(base, rank=2, alpha=4)
    trainable = [name for name, parameter in model.named_parameters() if parameter.requires_grad]
    assert trainable and all("lora_" in name or ".classifier." in name for name in trainable)
    assert {name.split(".lora_")[0].split("layers.0.")[-1] for name in trainable if "lora_" in name} == {
        "attention.qkv",
        "attention.proj",
        "mlp.fc1",
        "mlp.fc2",
    }
    recipe = FineTuneRecipe(learning_rate=1e-2, num_epochs=2, warmup_epochs=0, batch_size=4)
    trainer = finetune(
        model, splits["train"], splits["validation"], str(tmp_path / "run"), recipe=recipe, seed=0, disable_tqdm=True
    )
    model = trainer.model.eval()
    base_weights = model.get_base_model().state_dict()
    assert torch.equal(
        base_weights["harmonizer.layers.0.attention.qkv.base_layer.weight"],
        original["harmonizer.layers.0.attention.qkv.weight"],
    )
    batch = splits["validation"][:4]
    inputs = {name: value for name, value in batch.items() if name != "labels"}
    with torch.no_grad():
        adapted = model(**inputs).logits
        merged = model.merge_and_unload().eval()
        assert type(merged) is HarmonizerForSequenceClassification
        assert not torch.equal(
            merged.state_dict()["harmonizer.layers.0.attention.qkv.weight"],
            original["harmonizer.layers.0.attention.qkv.weight"],
        )
        torch.testing.assert_close(merged(**inputs).logits, adapted, rtol=1e-4, atol=1e-5)
        merged.save_pretrained(tmp_path / "merged")
        reloaded = HarmonizerForSequenceClassification.from_pretrained(tmp_path / "merged").eval()
        torch.testing.assert_close(reloaded(**inputs).logits, adapted, rtol=1e-4, atol=1e-5)


def test_finetune_on_raw_inputs_with_frozen_encoders(cohort, tiny_model_dir, tmp_path):
    manifest = load_manifest(cohort)
    model = load_for_finetuning(BrainHarmonixForSequenceClassification, tiny_model_dir, label2id=LABELS)
    encoders = {
        name: value.clone()
        for name, value in model.state_dict().items()
        if ".harmonizer." not in name and name.startswith("brainharmonix.")
    }
    collator = ManifestRowCollator(BrainHarmonixProcessor.from_pretrained(tiny_model_dir), LABELS)
    recipe = FineTuneRecipe(learning_rate=3e-3, num_epochs=2, warmup_epochs=0, batch_size=4)
    train, validation = manifest.select(range(8)), manifest.select(range(8, 12))
    trainer = finetune(
        model, train, validation, str(tmp_path), recipe=recipe, data_collator=collator, seed=0, disable_tqdm=True
    )
    history = trainer.state.log_history
    assert [entry["epoch"] for entry in history if "eval_f1" in entry] == [1.0, 2.0]
    trained = trainer.model.state_dict()
    assert all(torch.equal(trained[name], value) for name, value in encoders.items())
    assert not torch.equal(
        trained["brainharmonix.harmonizer.layers.0.mlp.fc1.weight"],
        BrainHarmonixModel.from_pretrained(tiny_model_dir).harmonizer.layers[0].mlp.fc1.weight,
    )


def test_finetune_refuses_a_subject_in_training_and_validation(harmonizer_dir, cohort, tiny_model_dir, tmp_path):
    model = BrainHarmonixModel.from_pretrained(tiny_model_dir)
    processor = BrainHarmonixProcessor.from_pretrained(tiny_model_dir)
    # Subjects 06 and 07 have a second session in the validation set.
    rows = cohort[:8] + [row | {"session": "2", "split": "validation"} for row in cohort[6:8]]
    cache = cache_latents(model, processor, rows, tmp_path / "cache")
    train = with_model_inputs(cache.filter(lambda row: row["split"] == "train"), LABELS)
    validation = with_model_inputs(cache.filter(lambda row: row["split"] == "validation"), LABELS)
    classifier = load_for_finetuning(HarmonizerForSequenceClassification, harmonizer_dir, label2id=LABELS)
    with pytest.raises(ValueError, match=r"subjects \['06', '07'\] are in both the training and the validation set"):
        finetune(classifier, train, validation, str(tmp_path / "run"), recipe=FineTuneRecipe(num_epochs=1))
    assert not (tmp_path / "run").exists()
