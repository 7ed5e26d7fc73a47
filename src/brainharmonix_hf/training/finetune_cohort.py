# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Fine-tune on a whole cohort folder, as `brainharmonix finetune` does: training, validation and test sets by subject,
the recipe (`finetune`), the test set scored once, the model and a metrics report saved.

Sources, and the model each trains:
- `latent_cache` (`brainharmonix cache-latents`), cached encoder latents: `HarmonizerForSequenceClassification`, or
  `HarmonizerForLinearProbing`;
- `manifest` (a cohort manifest), raw T1 / fMRI files prepared per batch: `BrainHarmonixForSequenceClassification`
  (frozen encoders);
- `embeddings` (a `brainharmonix embed` output folder or an embeddings table), pooled hub tokens:
  `HarmonizerForLinearProbing`.

Splits: the rows' `split` column (`train`, `validation`, `test`) when every labelled row has one, else one stratified
split by subject (`evaluation.splits.repeated_splits`, one repeat: a fifth of the subjects for test, a fifth of the rest
for validation). No subject is in two parts either way.
"""

import json
from pathlib import Path

import datasets
import numpy as np
from transformers import AutoConfig, default_data_collator, set_seed

from ..evaluation.embedding_tables import read_embedding_table
from ..evaluation.splits import Split, repeated_splits, subjects_in_two_parts
from ..modeling.configuration_brainharmonix import BrainHarmonixConfig
from ..modeling.modeling_brainharmonix import BrainHarmonixForSequenceClassification, BrainHarmonixModel
from ..modeling.modeling_harmonizer import HarmonizerForLinearProbing, HarmonizerForSequenceClassification
from ..processing.processing_brainharmonix import BrainHarmonixProcessor
from .finetune import FineTuneRecipe, ManifestRowCollator, apply_lora, finetune, label_mapping, load_for_finetuning
from .latent_cache import load_latent_cache, with_model_inputs
from .manifest import load_manifest

HEADS = ("classifier", "linear-probe")
PARTS = ("train", "validation", "test")


def finetune_cohort(
    model_path: str,
    output_dir: str,
    *,
    latent_cache: str | None = None,
    manifest: str | None = None,
    embeddings: str | None = None,
    fmri_label_image=None,
    head: str = "classifier",
    regression: bool = False,
    lora: bool = False,
    lora_rank: int = 8,
    lora_alpha: int = 16,
    recipe: FineTuneRecipe | None = None,
    seed: int = 0,
    **argument_overrides,
) -> dict:
    """Fine-tune `model_path` on one source (see the module docstring) and return the report written to
    `output_dir/metrics.json`; the best model (by validation F1, or MSE for regression; LoRA adapters merged) is saved
    to `output_dir/model`.

    Args:
        model_path: a Harmonizer or BrainHarmonixModel folder (a composite's Harmonizer is used for the Harmonizer
            heads; `manifest` needs the composite and its processor).
        output_dir: new folder for `checkpoints/`, `model/` and `metrics.json`.
        latent_cache, manifest, embeddings: exactly one source of rows with `subject` and `label` columns.
        fmri_label_image: the label NIfTI (path or nibabel image) on the grid of a manifest's 4D NIfTI fMRI runs.
        head: `"classifier"` (LayerNorm + Linear, Harmonizer trained) or `"linear-probe"` (frozen Harmonizer).
        regression: regression targets.
        lora, lora_rank, lora_alpha: LoRA adapters on the Harmonizer instead of training it in full (classifier head).
        recipe: the fine-tuning hyperparameters (default `FineTuneRecipe()`).
        seed: of the split by subject and of training.
        argument_overrides: any `TrainingArguments` field.
    """
    given = {
        name: value
        for name, value in (("latent_cache", latent_cache), ("manifest", manifest), ("embeddings", embeddings))
        if value is not None
    }
    if len(given) != 1:
        raise ValueError("Give exactly one source: a latent cache, a manifest or an embeddings folder / table.")
    source = next(iter(given))
    if head not in HEADS:
        raise ValueError(f"head must be one of {HEADS}, got {head!r}.")
    if source == "manifest" and head != "classifier":
        raise ValueError(
            "A manifest trains the end-to-end classifier; for a linear probe cache the latents first "
            "(`brainharmonix cache-latents`) or embed the cohort (`brainharmonix embed`)."
        )
    if source == "embeddings" and head != "linear-probe":
        raise ValueError("Embeddings are pooled hub tokens of a frozen model: train them with --head linear-probe.")
    if fmri_label_image is not None and source != "manifest":
        raise ValueError("A label image parcellates a manifest's 4D NIfTI runs: give it with --manifest only.")
    if lora and head != "classifier":
        raise ValueError("LoRA adapts the Harmonizer, which a linear probe keeps frozen: use --head classifier.")
    recipe = recipe or FineTuneRecipe()
    output = Path(output_dir)
    if output.exists() and any(output.iterdir()):
        raise FileExistsError(f"{output} is not empty: give the fine-tuning run a new folder.")

    rows = _source_rows(source, given[source])
    labelled = [index for index, label in enumerate(rows["label"]) if _has_label(label)]
    if not labelled:
        raise ValueError(f"No row of {given[source]} has a label: add a `label` column.")
    table = rows.select(labelled)
    raw_labels = table["label"]
    label2id = None if regression else label_mapping(raw_labels)
    targets = (
        np.asarray(raw_labels, dtype=np.float64) if regression else np.array([label2id[label] for label in raw_labels])
    )
    split = _split(table, targets, regression, seed)
    parts = {part: table.select(getattr(split, part)) for part in PARTS}
    if len(parts["train"]) == 0 or len(parts["validation"]) == 0:
        raise ValueError("Fine-tuning needs training and validation rows (`split` = train / validation).")

    set_seed(seed)  # the new head is initialised under the run's seed, whatever ran before in this process
    model, data, collator = _model_and_data(
        source, model_path, output, head, parts, label2id, regression, recipe, fmri_label_image
    )
    if lora:
        model = apply_lora(model, rank=lora_rank, alpha=lora_alpha)
    trainer = finetune(
        model,
        data["train"],
        data["validation"],
        str(output / "checkpoints"),
        recipe=recipe,
        regression=regression,
        data_collator=collator,
        seed=seed,
        **argument_overrides,
    )
    report = {
        "source": {source: str(given[source])},
        "model": str(model_path),
        "head": head,
        "task": "regression" if regression else "classification",
        "lora": {"rank": lora_rank, "alpha": lora_alpha} if lora else None,
        "label2id": label2id,
        "split": "the rows' split column" if split.repeat < 0 else f"stratified by subject (seed {seed})",
        "sizes": {part: {"rows": len(parts[part]), "subjects": len(set(parts[part]["subject"]))} for part in PARTS},
        "validation": _metrics(trainer.evaluate(metric_key_prefix="validation")),
        "best_checkpoint": trainer.state.best_model_checkpoint,
    }
    if len(parts["test"]):
        report["test"] = _metrics(trainer.evaluate(data["test"], metric_key_prefix="test"))
    final = trainer.model.merge_and_unload() if lora else trainer.model
    final.save_pretrained(output / "model")
    (output / "metrics.json").write_text(json.dumps(report, indent=2, default=str))
    return report


def _source_rows(source: str, path: str) -> datasets.Dataset:
    """Rows of the source with `subject`, `label`, `split` (and the data each model reads)."""
    if source == "latent_cache":
        return load_latent_cache(path)
    if source == "manifest":
        return load_manifest(path)
    table = read_embedding_table(path)
    if "label" not in table.columns:
        raise ValueError(f"{path} has no `label` column to fine-tune on.")
    columns = {
        "subject": table["subject"].tolist(),
        "label": table["label"].tolist(),
        "split": table["split"].tolist() if "split" in table.columns else [None] * len(table),
        "pooled_hub_tokens": [np.asarray(value, dtype=np.float32) for value in table["embedding"]],
    }
    return datasets.Dataset.from_dict(columns)


def _has_label(label) -> bool:
    return label is not None and not (isinstance(label, float) and np.isnan(label))


def _split(table: datasets.Dataset, targets: np.ndarray, regression: bool, seed: int) -> Split:
    """The rows' own split when every row names one (repeat -1), else one split by subject."""
    subjects = np.asarray(table["subject"]).astype(str)
    named = table["split"] if "split" in table.column_names else [None] * len(table)
    if all(value in PARTS for value in named):
        named = np.asarray(named)
        split = Split(-1, 0, *(np.flatnonzero(named == part) for part in PARTS))
    else:
        split = repeated_splits(targets, subjects, num_repeats=1, seed=seed, regression=regression)[0]
    straddling = subjects_in_two_parts(split, subjects)
    if straddling:
        raise ValueError(
            f"subjects {straddling[:10]} have rows in two of the train / validation / test parts of the split column: "
            "keep all sessions of a subject in one part (or leave `split` empty for a split by subject)."
        )
    return split


def _model_and_data(source, model_path, output, head, parts, label2id, regression, recipe, fmri_label_image):
    """The model to train, its training / validation / test datasets and the data collator."""
    if source == "manifest":
        config = BrainHarmonixConfig.from_pretrained(model_path)
        model = load_for_finetuning(
            BrainHarmonixForSequenceClassification,
            model_path,
            label2id=label2id,
            regression=regression,
            drop_path_rate=recipe.drop_path_rate,
        )
        processor = BrainHarmonixProcessor.for_model(model_path, config)
        return model, parts, ManifestRowCollator(processor, label2id, regression, fmri_label_image)
    model_class = HarmonizerForLinearProbing if head == "linear-probe" else HarmonizerForSequenceClassification
    model = load_for_finetuning(
        model_class,
        _harmonizer_folder(model_path, output),
        label2id=label2id,
        regression=regression,
        drop_path_rate=recipe.drop_path_rate,
    )
    if source == "latent_cache":
        data = {part: with_model_inputs(rows, label2id, regression) for part, rows in parts.items()}
    else:
        data = {part: _embedding_inputs(rows, label2id, regression) for part, rows in parts.items()}
    return model, data, default_data_collator


def _harmonizer_folder(model_path: str, output: Path) -> str:
    """`model_path` if it holds a Harmonizer; the Harmonizer of a BrainHarmonixModel folder saved under `output`."""
    if AutoConfig.from_pretrained(model_path).model_type != BrainHarmonixConfig.model_type:
        return model_path
    folder = output / "initial_harmonizer"
    BrainHarmonixModel.from_pretrained(model_path).harmonizer.save_pretrained(folder)
    return str(folder)


def _embedding_inputs(rows: datasets.Dataset, label2id: dict | None, regression: bool) -> datasets.Dataset:
    """Rows of an embeddings table as `HarmonizerForLinearProbing` inputs: `pooled_hub_tokens` and `labels`."""
    if regression:
        labels, feature = [float(label) for label in rows["label"]], datasets.Value("float32")
    else:
        labels, feature = [label2id[label] for label in rows["label"]], datasets.Value("int64")
    inputs = rows.select_columns(["subject", "pooled_hub_tokens"]).add_column("labels", labels, feature=feature)
    return inputs.with_format("torch", columns=["pooled_hub_tokens", "labels"])


def _metrics(results: dict) -> dict:
    return {name: value for name, value in results.items() if isinstance(value, int | float) and np.isfinite(value)}


__all__ = ["HEADS", "finetune_cohort"]
