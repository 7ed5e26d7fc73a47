# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Fine-tuning with `transformers.Trainer`: the Harmonizer on cached latents, or the whole model on raw inputs.

The reference recipe (`FineTuneRecipe`): encoders frozen, Harmonizer encoder and head trained with AdamW, lr 5e-4
with a 5-epoch warmup then cosine decay over 50 epochs, layer-wise lr decay 0.65, weight decay 0.05 (none on biases,
norms and learned tokens), drop-path 0.1, label smoothing 0.1, batch 16, the checkpoint with the best validation F1
kept (lowest MSE for regression).

- `HarmonizerForSequenceClassification` trains on a latent cache (`latent_cache.with_model_inputs`).
- `BrainHarmonixForSequenceClassification` trains on manifest rows; `ManifestRowCollator` loads and prepares each
  batch's files in the DataLoader (workers with `dataloader_num_workers`).
- Linear probing: `HarmonizerForLinearProbing` (`modeling.modeling_harmonizer`: frozen Harmonizer, BatchNorm without
  affine + Linear) with the same `finetune`; only the head has gradients.
- LoRA: `apply_lora` wraps the model with `peft` adapters on the Harmonizer's attention and MLP layers (the head
  trains fully); `merge_and_unload()` gives back a plain model to `save_pretrained`.

Layer-wise lr decay: with L Harmonizer layers, parameters of the embeddings (CLS, hub tokens and their positions,
the input projection) are layer 0, those of layer i are layer i + 1, everything else (the head, a final LayerNorm)
layer L + 1; a parameter of layer l gets `lr * layer_decay ** (L + 1 - l)`.
"""

import datasets
import torch
from torch import nn
from transformers import Trainer, TrainingArguments, default_data_collator

from ..evaluation.metrics import build_compute_metrics
from ..modeling.configuration_harmonizer import HarmonizerConfig
from ..modeling.modeling_harmonizer import HarmonizerModel
from ..processing.processing_brainharmonix import BrainHarmonixProcessor
from .finetune_recipe import DEFAULT_RECIPE, FineTuneRecipe
from .latent_cache import processor_inputs

# Harmonizer attention and MLP Linears, in HarmonizerForSequenceClassification (`harmonizer.layers.N`) and inside the
# composite model (`brainharmonix.harmonizer.layers.N`); the encoders' layers are never adapted.
LORA_TARGET_MODULES = r".*harmonizer\.layers\.\d+\.(attention\.(qkv|proj)|mlp\.(fc1|fc2))"


def finetune_arguments(
    output_dir: str, recipe: FineTuneRecipe = DEFAULT_RECIPE, regression: bool = False, **overrides
) -> TrainingArguments:
    """`TrainingArguments` of the recipe: evaluation and a checkpoint every epoch, the best validation F1 (classes)
    or MSE (regression) loaded at the end, label smoothing for classification only. `overrides` win."""
    arguments = {
        "output_dir": output_dir,
        "learning_rate": recipe.learning_rate,
        "weight_decay": recipe.weight_decay,
        "adam_beta1": recipe.adam_betas[0],
        "adam_beta2": recipe.adam_betas[1],
        "num_train_epochs": recipe.num_epochs,
        "warmup_steps": recipe.warmup_epochs / recipe.num_epochs,
        "lr_scheduler_type": "cosine",
        "per_device_train_batch_size": recipe.batch_size,
        "per_device_eval_batch_size": recipe.batch_size,
        "label_smoothing_factor": 0.0 if regression else recipe.label_smoothing,
        "eval_strategy": "epoch",
        "save_strategy": "epoch",
        "logging_strategy": "epoch",
        "load_best_model_at_end": True,
        "metric_for_best_model": "mse" if regression else "f1",
        "greater_is_better": not regression,
        "save_total_limit": 2,
        "remove_unused_columns": False,
        "label_names": ["labels"],
        "report_to": "none",
    }
    return TrainingArguments(**(arguments | overrides))


def harmonizer_layer_ids(model: nn.Module) -> tuple[dict[int, int], int]:
    """Layer id of every Harmonizer parameter (keyed by `id(parameter)`) and the number of ids `L + 2`; parameters
    outside the Harmonizer are layer `L + 1`. See the module docstring."""
    harmonizers = [module for module in model.modules() if isinstance(module, HarmonizerModel)]
    if len(harmonizers) != 1:
        raise ValueError(
            f"Layer-wise lr decay needs exactly one HarmonizerModel in the model, found {len(harmonizers)}."
        )
    harmonizer = harmonizers[0]
    num_layers = len(harmonizer.layers)
    layer_ids = {}
    for name, parameter in harmonizer.named_parameters():
        if name.startswith("embeddings."):
            layer_ids[id(parameter)] = 0
        elif name.startswith("layers."):
            layer_ids[id(parameter)] = int(name.split(".")[1]) + 1
        else:
            layer_ids[id(parameter)] = num_layers + 1
    return layer_ids, num_layers + 2


def layerwise_decay_parameter_groups(
    model: nn.Module, learning_rate: float, weight_decay: float, layer_decay: float
) -> list[dict]:
    """AdamW parameter groups of the trainable parameters, one per (layer, decayed or not), with their lr.

    No weight decay on 1-D parameters (biases, norms) and on the learned tokens and positions of the embeddings.
    """
    layer_ids, num_ids = harmonizer_layer_ids(model)
    groups: dict[tuple[int, bool], dict] = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        layer = layer_ids.get(id(parameter), num_ids - 1)
        learned_token = layer == 0 and "input_projection" not in name
        decay = parameter.ndim > 1 and not learned_token
        group = groups.setdefault(
            (layer, decay),
            {
                "params": [],
                "names": [],
                "lr": learning_rate * layer_decay ** (num_ids - 1 - layer),
                "weight_decay": weight_decay if decay else 0.0,
                "layer_id": layer,
            },
        )
        group["params"].append(parameter)
        group["names"].append(name)
    if not groups:
        raise ValueError("The model has no trainable parameter.")
    return [groups[key] for key in sorted(groups)]


def layerwise_decay_optimizer(model: nn.Module, args: TrainingArguments, layer_decay: float) -> torch.optim.AdamW:
    """AdamW over `layerwise_decay_parameter_groups` with the lr, weight decay, betas and eps of `args`."""
    groups = layerwise_decay_parameter_groups(model, args.learning_rate, args.weight_decay, layer_decay)
    return torch.optim.AdamW(
        [{key: value for key, value in group.items() if key != "names"} for group in groups],
        lr=args.learning_rate,
        betas=(args.adam_beta1, args.adam_beta2),
        eps=args.adam_epsilon,
    )


def finetune(
    model: nn.Module,
    train_dataset: datasets.Dataset,
    eval_dataset: datasets.Dataset,
    output_dir: str,
    *,
    recipe: FineTuneRecipe = DEFAULT_RECIPE,
    regression: bool = False,
    data_collator=None,
    **argument_overrides,
) -> Trainer:
    """Train `model` with the recipe and return the `Trainer` (its model is the best checkpoint by validation F1).

    Args:
        model: `HarmonizerForSequenceClassification` (cached latents), `BrainHarmonixForSequenceClassification`
            (raw inputs through `ManifestRowCollator`), `HarmonizerForLinearProbing`, or any of them under `apply_lora`.
        train_dataset, eval_dataset: training and validation sets (never the test set: it is for the final score),
            with no subject in both (checked when both have a `subject` column).
        output_dir: checkpoints and logs.
        recipe: hyperparameters; drop-path is set when loading the model (see `load_for_finetuning`).
        regression: regression targets (MSE loss and model selection, no label smoothing).
        data_collator: defaults to `default_data_collator` (items that are already tensors).
        argument_overrides: any `TrainingArguments` field.
    """
    check_subjects_disjoint(train_dataset, eval_dataset)
    args = finetune_arguments(output_dir, recipe, regression, **argument_overrides)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=data_collator or default_data_collator,
        compute_metrics=build_compute_metrics(regression),
        optimizers=(layerwise_decay_optimizer(model, args, recipe.layer_decay), None),
    )
    trainer.train()
    return trainer


def check_subjects_disjoint(train_dataset: datasets.Dataset, eval_dataset: datasets.Dataset) -> None:
    """Refuse a training and a validation set that share a subject (both with a `subject` column): another session of
    a validation subject in training would flatter the validation score and the model selected on it."""
    subjects = []
    for dataset in (train_dataset, eval_dataset):
        if not isinstance(dataset, datasets.Dataset) or "subject" not in dataset.column_names:
            return
        subjects.append(set(dataset.with_format(None)["subject"]))
    shared = sorted(subjects[0] & subjects[1])
    if shared:
        raise ValueError(
            f"subjects {shared[:10]} are in both the training and the validation set: split by subject (all sessions "
            "of a subject on one side), e.g. with `brainharmonix_hf.evaluation.splits.repeated_splits`."
        )


def label_mapping(labels: list) -> dict:
    """Class label -> index, classes in sorted order (missing labels skipped)."""
    classes = sorted({label for label in labels if label is not None}, key=lambda label: (str(type(label)), label))
    if len(classes) < 2:
        raise ValueError(f"Classification needs at least two classes; the labels hold {classes}.")
    return {label: index for index, label in enumerate(classes)}


def load_for_finetuning(
    model_class: type,
    path: str,
    *,
    label2id: dict | None = None,
    regression: bool = False,
    drop_path_rate: float = FineTuneRecipe.drop_path_rate,
    **kwargs,
):
    """Load `model_class` (a sequence-classification or linear-probing class) from a pretrained folder with the
    task's head size and labels and the Harmonizer's drop-path rate."""
    config = model_class.config_class.from_pretrained(path)
    harmonizer = config if isinstance(config, HarmonizerConfig) else config.harmonizer_config
    harmonizer.drop_path_rate = drop_path_rate
    if regression:
        config.num_labels, config.problem_type = 1, "regression"
    elif label2id is not None:
        config.label2id = {str(label): index for label, index in label2id.items()}
        config.id2label = {index: str(label) for label, index in label2id.items()}
        config.problem_type = "single_label_classification"
    return model_class.from_pretrained(path, config=config, **kwargs)


class ManifestRowCollator:
    """Loads and prepares a batch of manifest rows for `BrainHarmonixForSequenceClassification` (runs in DataLoader
    workers): T1 NIfTI paths and fMRI files (ROI tables, `.npy` arrays, 4D NIfTI runs with `label_image`) through
    the processor, labels through `label2id`."""

    def __init__(
        self,
        processor: BrainHarmonixProcessor,
        label2id: dict | None = None,
        regression: bool = False,
        label_image=None,
    ):
        self.processor = processor
        self.label2id = label2id
        self.regression = regression
        self.label_image = label_image

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        batch = {name: [row.get(name) for row in rows] for name in ("t1", "fmri", "repetition_time", "atlas", "label")}
        inputs = processor_inputs(self.processor, batch, self.label_image)
        if self.regression:
            inputs["labels"] = torch.tensor([float(label) for label in batch["label"]], dtype=torch.float32)
        elif self.label2id is not None:
            inputs["labels"] = torch.tensor([self.label2id[label] for label in batch["label"]], dtype=torch.long)
        return inputs


def apply_lora(model: nn.Module, rank: int = 8, alpha: int = 16, dropout: float = 0.0):
    """Wrap a sequence-classification model with LoRA adapters (`peft`) on the Harmonizer's attention (qkv, proj)
    and MLP (fc1, fc2) Linears; the classifier head is trained in full. Only adapters and head have gradients.

    Returns the `peft.PeftModel`; `finetune` trains it like the plain model, and `merge_and_unload()` folds the
    adapters into the weights for `save_pretrained`.
    """
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as error:
        raise ImportError("LoRA needs the peft package: `pip install peft` (or the `lora` extra).") from error
    config = LoraConfig(
        r=rank,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=LORA_TARGET_MODULES,
        modules_to_save=["classifier"],
    )
    return get_peft_model(model, config)


__all__ = [
    "LORA_TARGET_MODULES",
    "FineTuneRecipe",
    "ManifestRowCollator",
    "apply_lora",
    "check_subjects_disjoint",
    "finetune",
    "finetune_arguments",
    "harmonizer_layer_ids",
    "label_mapping",
    "layerwise_decay_optimizer",
    "layerwise_decay_parameter_groups",
    "load_for_finetuning",
]
