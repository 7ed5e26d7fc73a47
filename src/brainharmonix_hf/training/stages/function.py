# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""The `function` stage: FunctionJEPA on the fMRI series of a cohort manifest, with the EMA target encoder.

Any atlas from the command line: `--atlas NAME --roi_table_source KIND --roi_table_path FILE` (and `--roi_labels`,
`--roi_connectivity`) build a new model for that atlas, its ROI tables resolved by `roi_positions.table_sources`
(functional gradients from the group connectivity of the training series unless a connectivity file is given).

Exports: `model/` (and `exports/step-N/`) is the whole pretraining model (both encoders and the predictor, to
continue pretraining from); its `encoder/` subfolder is the encoder to embed with, a `FunctionJEPAModel` chosen by
`--export_encoder`: `target` (default: the EMA target encoder, the one the reference recipe uses for inference),
`context`, or `both` (the target in `encoder/`, the context encoder in `context_encoder/`). Its config's
`exported_encoder` and its card say which.
"""

from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ...modeling.configuration_function_jepa import FunctionJEPAConfig
from ...modeling.modeling_function_jepa import FunctionJEPAForPreTraining
from ...processing.feature_extraction_fmri import FMRIFeatureExtractor
from ...processing.nifti_io import load_image
from ...roi_positions.table_sources import RoiTableSource, group_connectivity, read_centres, resolve_roi_tables
from ...roi_positions.tables import read_roi_tables
from ..collators import FunctionJEPACollator
from ..data import FMRIPretrainingDataset, load_fmri_series
from ..manifest import load_manifest
from ..masking import SpatiotemporalMaskSampler
from ..schedules import ema_momentum
from .base import PretrainingStage, StageData


class FunctionStage(PretrainingStage):
    """fMRI windows with multi-TR downsampling (`--fmri_downsample_rates`), normalised by the feature extractor in the
    collator, JEPA masks drawn there. After every optimizer step the target encoder follows the context encoder by
    EMA, momentum `config.ema_momentum_start` -> `config.ema_momentum_end` over the run. The reference recipe: warmup
    5e-5 -> 1e-3, weight decay 0.04 -> 0.4."""

    name = "function"
    config_class = FunctionJEPAConfig
    model_class = FunctionJEPAForPreTraining
    defaults = {
        "learning_rate": 1e-3,
        "warmup_start_learning_rate": 5e-5,
        "weight_decay": 0.04,
        "weight_decay_end": 0.4,
        "adam_beta2": 0.999,
    }

    @property
    def data_source(self) -> str:
        return self.args.manifest

    @property
    def table_source(self) -> RoiTableSource | None:
        args = self.args
        if args.roi_table_source is None:
            return None
        return RoiTableSource(args.roi_table_source, args.roi_table_path, args.roi_connectivity)

    def load_config(self) -> FunctionJEPAConfig:
        """The model config, with the atlas of `--atlas` / `--roi_table_source` when given."""
        config = super().load_config()
        args = self.args
        if args.atlas is None and args.roi_table_source is None:
            return config
        if args.atlas is None or args.roi_table_source is None:
            raise ValueError(
                "An atlas from the command line needs its name and its ROI tables: pass --atlas, --roi_table_source "
                "and --roi_table_path together."
            )
        if args.init_from is not None:
            raise ValueError(
                f"--init_from {args.init_from} carries its own atlas and ROI tables: leave out --atlas and "
                "--roi_table_source, or start a new model without --init_from."
            )
        labels = atlas_roi_labels(self.table_source, args.roi_labels)
        config.atlas, config.num_rois, config.roi_labels, config.roi_tables = args.atlas, len(labels), labels, "custom"
        config.validate()
        return config

    def build_model(self) -> FunctionJEPAForPreTraining:
        """A fresh model (with the ROI tables of `--roi_table_source`) or the `--init_from` weights."""
        model = super().build_model()
        source = self.table_source
        if source is not None:
            # Only a source without gradients of its own (no precomputed tables, no connectivity file) reads the cohort.
            needs_cohort = source.kind != "tables" and source.connectivity is None
            connectivity = self.cohort_connectivity() if needs_cohort else None
            model.set_roi_tables(*resolve_roi_tables(source, self.config, connectivity))
        return model

    def cohort_connectivity(self) -> np.ndarray:
        """Group connectivity of the training series, for the gradients."""
        train, _ = self.split_rows(load_manifest(self.manifest_path))
        return group_connectivity(
            load_fmri_series(row["fmri"], self.processor, row.get("atlas"), self.label_image)[0]
            for row in train
            if row["fmri"] is not None
        )

    @property
    def manifest_path(self) -> str:
        if self.args.manifest is None:
            raise ValueError("The function stage reads a cohort manifest: pass --manifest <file>.")
        return self.args.manifest

    @cached_property
    def label_image(self):
        """The atlas label image of 4D NIfTI runs (`--fmri_label_image`), read and checked once for every reader of
        the stage; `None` without one."""
        path = self.args.fmri_label_image
        return None if path is None else load_image(path)

    @cached_property
    def processor(self) -> FMRIFeatureExtractor:
        """The fMRI feature extractor exported with the model (`--processor`, else built for the config)."""
        config = self.config
        if self.args.processor is not None:
            return FMRIFeatureExtractor.from_pretrained(self.args.processor)
        return FMRIFeatureExtractor(
            num_rois=config.num_rois,
            atlas=config.atlas,
            roi_labels=config.roi_labels,
            num_time_patches=config.num_time_patches,
            window_seconds=config.window_seconds,
            normalization=self.args.fmri_normalization,
        )

    def build_data(self) -> StageData:
        args, config, processor = self.args, self.config, self.processor
        train, held_out = self.split_rows(load_manifest(self.manifest_path))
        train_data, held_out_data = (
            None
            if rows is None
            else FMRIPretrainingDataset(
                rows,
                num_time_patches=config.num_time_patches,
                window_seconds=config.window_seconds,
                downsample_rates=args.fmri_downsample_rates,
                num_rois=config.num_rois,
                label_image=self.label_image,
                seed=args.seed + offset,
                feature_extractor=processor,
                samples_per_epoch=args.samples_per_epoch if offset == 0 else None,
            )
            for offset, rows in ((0, train), (1, held_out))
        )
        collator = FunctionJEPACollator(processor, SpatiotemporalMaskSampler.from_config(config))
        return StageData(train_data, held_out_data, collator, processor)

    def after_optimizer_step(self, model: FunctionJEPAForPreTraining, step: int, total_steps: int) -> None:
        """EMA update of the target encoder with the momentum of optimizer step `step`."""
        model.update_target_encoder(ema_momentum(step, total_steps, self.config))

    def embeddings(self, model: FunctionJEPAForPreTraining, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean of the exported encoder's valid tokens on the whole series (the target encoder unless
        `--export_encoder context`)."""
        encoder = model.encoder if self.args.export_encoder == "context" else model.target_encoder
        return encoder(
            batch["fmri_values"], batch["repetition_time"], batch["attention_mask"], batch["patch_size"]
        ).pooler_output

    def export(self, model, state_dict, processor, folder: Path, step: int, epoch: int, losses) -> None:
        """`model/` (the whole pretraining model) and the encoder(s) of `--export_encoder` beside it (module
        docstring)."""
        roles = {"target": ["target"], "context": ["context"], "both": ["target", "context"]}[self.args.export_encoder]
        prefixes = {"target": "target_encoder.", "context": "encoder."}
        # Split before `save_pretrained`, which consumes the state dict it is given.
        encoder_states = {
            role: {
                key[len(prefixes[role]) :]: value for key, value in state_dict.items() if key.startswith(prefixes[role])
            }
            for role in roles
        }
        super().export(model, state_dict, processor, folder, step, epoch, losses)
        for index, role in enumerate(roles):
            encoder = model.target_encoder if role == "target" else model.encoder
            lines = self.card_lines(encoder, step, epoch, losses)
            lines[3:3] = ["", EXPORTED_ENCODER_NOTE[role]]
            encoder.config.exported_encoder = role  # the encoders share the pretraining model's config
            try:
                name = "encoder" if index == 0 else "context_encoder"
                self.save_folder(encoder, encoder_states[role], processor, Path(folder) / name, lines)
            finally:
                encoder.config.exported_encoder = None


EXPORTED_ENCODER_NOTE = {
    "target": "These weights are the JEPA target encoder (the exponential moving average of the context encoder), "
    "the encoder the reference recipe embeds with (`--export_encoder target`, the default).",
    "context": "These weights are the JEPA context encoder, the one trained by gradient descent "
    "(`--export_encoder context`).",
}


def atlas_roi_labels(source: RoiTableSource, labels_file: str | None) -> list[str]:
    """The atlas's ROI labels in row order: `labels_file` (one per line), else a centres CSV's `label` or `name`
    column, else `1..R` with R counted from the source."""
    if labels_file is not None:
        labels = [line.strip() for line in Path(labels_file).read_text().splitlines() if line.strip()]
        if not labels:
            raise ValueError(f"{labels_file} lists no ROI labels (one per line).")
        return labels
    if source.kind == "centres":
        if not source.path.endswith(".npy"):
            table = pd.read_csv(source.path, sep=None, engine="python")
            columns = {column.strip().lower(): column for column in table.columns}
            for name in ("label", "name"):
                if name in columns:
                    return [str(label) for label in table[columns[name]]]
        return [str(number) for number in range(1, len(read_centres(source.path)) + 1)]
    if source.kind == "tables":
        return [str(number) for number in range(1, read_roi_tables(source.path).num_rois + 1)]
    raise ValueError(
        f"Name the ROIs of a {source.kind} source with --roi_labels (a text file, one label per line, in the order of "
        "the label values 1..R)."
    )


__all__ = ["FunctionStage"]
