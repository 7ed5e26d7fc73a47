# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""What every pretraining stage provides to the one loop (`training.loop`): `PretrainingStage`."""

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import datasets
import torch
from torch.utils.data import Dataset
from transformers import PretrainedConfig, PreTrainedModel
from transformers.feature_extraction_utils import FeatureExtractionMixin

if TYPE_CHECKING:
    from ..arguments import PretrainingArguments


@dataclass
class StageData:
    """The datasets, collator and processor of a stage.

    `train` and `held_out` yield items whose `index` is their position (the collator turns them into
    `sample_index`); they have `batch_keys()`, `set_epoch(epoch)` and `subject(index)`. `held_out` is `None` when no
    row has the held-out split. `processor` is the feature extractor exported with the model (`None` when the stage
    reads latents).
    """

    train: Dataset
    held_out: Dataset | None
    collator: object
    processor: FeatureExtractionMixin | None


class PretrainingStage:
    """One pretraining stage: its model, data, training step, post-optimizer-step hook, embeddings and export.

    A subclass sets the class attributes and implements `build_data` and `embeddings`; the loop calls, in order:
    `build_model`, `build_data`, then per micro-batch `compute_loss`, per optimizer step `after_optimizer_step`, on
    the held-out set `compute_loss` and `embeddings`, and at export time `export`. Register a new stage in
    `training.stages.STAGES`.

    Attributes:
        name: the stage's name on the command line (`brainharmonix pretrain <name>`).
        config_class / model_class: the model config and the pretraining model.
        defaults: values of the `None` fields of `PretrainingArguments` for this stage (learning rate, warmup start,
            weight decay and its end value, Adam beta 2).
    """

    name: ClassVar[str]
    config_class: ClassVar[type[PretrainedConfig]]
    model_class: ClassVar[type[PreTrainedModel]]
    defaults: ClassVar[dict[str, float]]

    def __init__(self, args: "PretrainingArguments"):
        self.args = args
        self.config = self.load_config()

    def load_config(self) -> PretrainedConfig:
        """`--model_config`, else the config of `--init_from`, else the full-size default config."""
        source = self.args.model_config or self.args.init_from
        return self.config_class() if source is None else self.config_class.from_pretrained(source)

    def build_model(self) -> PreTrainedModel:
        """A fresh model of `config`, or the `--init_from` weights."""
        if self.args.init_from is not None:
            return self.model_class.from_pretrained(self.args.init_from, config=self.config)
        return self.model_class(self.config)

    def build_data(self) -> StageData:
        raise NotImplementedError

    @property
    def data_source(self) -> str:
        """The data the stage trains on, as named on the command line (for the model card)."""
        raise NotImplementedError

    def compute_loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The scalar loss of a batch (`sample_index` already removed); `model` may be wrapped (DDP, FSDP)."""
        return model(**batch).loss

    def after_optimizer_step(self, model: PreTrainedModel, step: int, total_steps: int) -> None:
        """Runs after optimizer step `step` (0-based) of `total_steps`, on the unwrapped model. Nothing by default."""

    def embeddings(self, model: PreTrainedModel, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Pooled embeddings `(batch, hidden_size)` of a batch from the encoder the stage exports (unwrapped model, no
        masking), for representation-health metrics on the held-out set."""
        raise NotImplementedError

    def split_rows(self, table: datasets.Dataset) -> tuple[datasets.Dataset, datasets.Dataset | None]:
        """`(training rows, held-out rows or None)`: rows of `--train_split` (or no split) and of `--eval_split`."""
        splits = table["split"]
        train = table.select([i for i, split in enumerate(splits) if split in (None, self.args.train_split)])
        held_out = table.select([i for i, split in enumerate(splits) if split == self.args.eval_split])
        return train, (held_out if len(held_out) else None)

    def export(
        self,
        model: PreTrainedModel,
        state_dict: dict[str, torch.Tensor],
        processor: FeatureExtractionMixin | None,
        folder: Path,
        step: int,
        epoch: int,
        losses: dict[str, float],
    ) -> None:
        """`save_pretrained` of the model with the full `state_dict` (gathered from every process), the processor,
        and a model card naming the steps, data, last losses and options."""
        self.save_folder(model, state_dict, processor, folder, self.card_lines(model, step, epoch, losses))

    def save_folder(self, model, state_dict, processor, folder: Path, card_lines: list[str]) -> None:
        """`save_pretrained` of `model` (with `state_dict`) and `processor` into `folder`, with `card_lines` as its
        README."""
        model.save_pretrained(folder, state_dict=state_dict)
        if processor is not None:
            processor.save_pretrained(folder)
        (Path(folder) / "README.md").write_text("\n".join(card_lines) + "\n")

    def card_lines(self, model: PreTrainedModel, step: int, epoch: int, losses: dict[str, float]) -> list[str]:
        """The model card of an export: the steps, data, last losses and options."""
        return [
            f"# {type(model).__name__} ({self.name} pretraining)",
            "",
            f"Pretrained with `brainharmonix pretrain {self.name}` for {step} optimizer steps ({epoch} full epochs) "
            f"on `{self.data_source}`.",
            "",
            *(f"- {name}: {value:.6g}" for name, value in losses.items()),
            "",
            "Training options:",
            "",
            "```json",
            json.dumps({k: v for k, v in asdict(self.args).items() if v is not None}, indent=1),
            "```",
        ]


__all__ = ["PretrainingStage", "StageData"]
