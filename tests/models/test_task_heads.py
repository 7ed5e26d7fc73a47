"""Every task head computes its own loss from labels (classification and regression), trains alone, and trains under
`Trainer` with and without label smoothing."""

import datasets
import numpy as np
import pytest
import torch
from small_configs import tiny6_brainharmonix_config
from transformers import Trainer, TrainingArguments
from transformers.loss.loss_utils import ForSequenceClassificationLoss

from brainharmonix_hf import (
    BrainHarmonixForSequenceClassification,
    HarmonizerForLinearProbing,
    HarmonizerForSequenceClassification,
)

HEADS = (HarmonizerForSequenceClassification, HarmonizerForLinearProbing, BrainHarmonixForSequenceClassification)
BATCH = 4


def tiny_config(head: type, num_labels: int):
    """The config of `head` with `num_labels` outputs: the composite's, or its Harmonizer's (see small_configs)."""
    config = tiny6_brainharmonix_config()
    if head is not BrainHarmonixForSequenceClassification:
        config = config.harmonizer_config
    config.num_labels = num_labels
    return config


def head_inputs(head: type, num_items: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Raw T1 volumes and fMRI series at TR 1 s for the end-to-end head, encoder latents for the Harmonizer heads."""
    rng = np.random.default_rng(seed)
    if head is BrainHarmonixForSequenceClassification:
        return {
            "pixel_values": rng.normal(size=(num_items, 1, 32, 32, 32)).astype(np.float32),
            "fmri_values": rng.normal(size=(num_items, 6, 32)).astype(np.float32),
            "repetition_time": np.ones(num_items, dtype=np.float32),
        }
    return {
        "fmri_latents": rng.normal(size=(num_items, 24, 24)).astype(np.float32),
        "t1_latents": rng.normal(size=(num_items, 8, 24)).astype(np.float32),
    }


def task_labels(num_labels: int, num_items: int) -> torch.Tensor:
    if num_labels == 1:
        return torch.linspace(-1.0, 1.0, num_items)
    return torch.arange(num_items) % num_labels


def test_every_head_has_the_sequence_classification_loss_type():
    for head in HEADS:
        model = head(tiny_config(head, 2))
        assert model.loss_type == "ForSequenceClassification"
        assert model.loss_function is ForSequenceClassificationLoss


@pytest.mark.parametrize("head", HEADS, ids=lambda head: head.__name__)
@pytest.mark.parametrize("num_labels", [3, 1], ids=["classification", "regression"])
def test_forward_with_labels_returns_the_loss_and_trains(head, num_labels):
    torch.manual_seed(0)
    model = head(tiny_config(head, num_labels)).train()
    inputs = {name: torch.from_numpy(value) for name, value in head_inputs(head, BATCH).items()}
    labels = task_labels(num_labels, BATCH)
    output = model(**inputs, labels=labels)
    assert output.logits.shape == (BATCH, num_labels)
    if num_labels == 1:
        expected = torch.nn.functional.mse_loss(output.logits[:, 0], labels)
    else:
        expected = torch.nn.functional.cross_entropy(output.logits, labels)
    torch.testing.assert_close(output.loss, expected)
    output.loss.backward()
    trainable = {name: p for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(p.grad is not None for p in trainable.values())
    assert torch.count_nonzero(trainable["classifier.dense.weight"].grad) > 0
    if head is HarmonizerForLinearProbing:
        assert sorted(trainable) == ["classifier.dense.bias", "classifier.dense.weight"]
    # Without labels there is no loss; the tuple form puts the loss first when there is one.
    assert model(**inputs).loss is None
    assert model(**inputs, labels=labels, return_dict=False)[0].ndim == 0


@pytest.mark.parametrize("head", HEADS, ids=lambda head: head.__name__)
@pytest.mark.parametrize(
    ("num_labels", "label_smoothing"),
    [(2, 0.0), (2, 0.1), (1, 0.0)],
    ids=["classification", "classification_label_smoothing", "regression"],
)
def test_head_trains_under_trainer(head, num_labels, label_smoothing, tmp_path):
    torch.manual_seed(0)
    model = head(tiny_config(head, num_labels))
    num_items = 8
    columns = head_inputs(head, num_items) | {"labels": task_labels(num_labels, num_items).numpy()}
    dataset = datasets.Dataset.from_dict({name: list(value) for name, value in columns.items()}).with_format("torch")
    before = model.classifier.dense.weight.detach().clone()
    args = TrainingArguments(
        str(tmp_path),
        per_device_train_batch_size=4,
        num_train_epochs=2,
        learning_rate=1e-2,
        label_smoothing_factor=label_smoothing,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        use_cpu=True,
    )
    trainer = Trainer(model=model, args=args, train_dataset=dataset, eval_dataset=dataset)
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == 4 and np.isfinite(losses).all()
    assert not torch.equal(before, trainer.model.classifier.dense.weight.detach())
    evaluation = trainer.evaluate()
    assert np.isfinite(evaluation["eval_loss"])
    if head is HarmonizerForLinearProbing and num_labels == 2:
        # The head starts with small weights: logits near 0, loss near ln 2 on the first batch.
        assert losses[0] == pytest.approx(np.log(2), abs=0.1)
