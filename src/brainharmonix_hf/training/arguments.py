# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Options of a pretraining run: `PretrainingArguments`, read from flags and a YAML file by `parse_arguments`."""

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..dtype_names import canonical_dtype_name
from .dataclass_parser import dataclass_parser
from .stages import STAGE_CLASSES, get_stage

EXPORT_ENCODERS = ("target", "context", "both")


@dataclass
class PretrainingArguments:
    """Options of a pretraining run (flags `--name value`, or keys of the `--config` YAML file).

    Fields left `None` take the stage's defaults (`PretrainingStage.defaults`: the reference recipe).
    """

    stage: str = field(
        default=None, metadata={"help": f"One of {tuple(STAGE_CLASSES)} (given first on the command line)."}
    )
    output_dir: str = field(default=None, metadata={"help": "Run folder: log.jsonl, checkpoints/, exports/, model/."})
    manifest: str | None = field(default=None, metadata={"help": "Cohort manifest (structure, function stages)."})
    latents: str | None = field(
        default=None, metadata={"help": "Latent cache folder (`brainharmonix cache-latents`) for the harmonizer stage."}
    )
    train_split: str = field(default="train", metadata={"help": "Rows with this split (or none) are trained on."})
    eval_split: str = field(default="validation", metadata={"help": "Rows with this split give the held-out loss."})
    model_config: str | None = field(
        default=None, metadata={"help": "config.json or folder of the stage's model config (default: full size)."}
    )
    init_from: str | None = field(default=None, metadata={"help": "Pretrained folder to start from."})
    processor: str | None = field(default=None, metadata={"help": "Saved feature extractor folder (else built)."})
    fmri_normalization: str = field(default="zscore", metadata={"help": "Normalization of a built fMRI processor."})
    fmri_downsample_rates: list[int] = field(
        default_factory=lambda: [1], metadata={"help": "Multi-TR augmentation rates r (TR' = r*TR), e.g. 1 2 3 4."}
    )
    fmri_label_image: str | None = field(default=None, metadata={"help": "Atlas NIfTI for 4D NIfTI fMRI inputs."})
    atlas: str | None = field(
        default=None,
        metadata={
            "help": "Function stage, new model: the atlas the series follow (a name), with --roi_table_source and "
            "--roi_table_path; overrides the model config's atlas, num_rois and roi_labels."
        },
    )
    roi_labels: str | None = field(
        default=None,
        metadata={
            "help": "Text file of the atlas's ROI labels, one per line in row order (default: a `label` column of a "
            "centres CSV, else 1..R)."
        },
    )
    roi_table_source: str | None = field(
        default=None,
        metadata={"help": "Kind of --roi_table_path: tables, label_image, surface_labels or centres."},
    )
    roi_table_path: str | None = field(
        default=None,
        metadata={
            "help": "ROI-table source file: a .safetensors of tables, an MNI label NIfTI, fs_LR 32k labels, or a CSV "
            "of region centres (x, y, z in mm); see roi_positions.table_sources."
        },
    )
    roi_connectivity: str | None = field(
        default=None,
        metadata={
            "help": "(R, R) connectivity (.csv/.npy) for the functional gradients (default: the group connectivity "
            "of the training series)."
        },
    )
    export_encoder: str = field(
        default="target",
        metadata={
            "help": "Function stage: the encoder exported to model/encoder/: target (the EMA encoder, the "
            "reference recipe's inference encoder), context, or both (context in model/context_encoder/)."
        },
    )
    t1_augmentation: bool = field(default=True, metadata={"help": "Flip/intensity/shift augmentation of T1s."})
    modality_dropout: float | None = field(default=None, metadata={"help": "Override the Harmonizer's rate."})
    per_device_batch_size: int = 2
    gradient_accumulation_steps: int = 1
    num_epochs: int = 1
    samples_per_epoch: int | None = field(
        default=None,
        metadata={
            "help": "Training items per epoch: each manifest row gives several random crops / augmentations "
            "(item i reads row i mod rows). Default: one per row."
        },
    )
    max_steps: int = field(default=-1, metadata={"help": "Optimizer steps; overrides num_epochs when > 0."})
    learning_rate: float | None = field(default=None, metadata={"help": "Peak lr (stage default when unset)."})
    warmup_start_learning_rate: float | None = field(
        default=None,
        metadata={
            "help": "Learning rate of the first optimizer step, raised linearly to --learning_rate over the warmup "
            "(stage default when unset: function 5e-5, structure 7.5e-6, harmonizer 2.5e-5, 1/20 of each peak)."
        },
    )
    min_learning_rate: float = 1e-6
    warmup_ratio: float = field(default=40 / 300, metadata={"help": "Fraction of the steps spent warming up."})
    weight_decay: float | None = None
    weight_decay_end: float | None = field(default=None, metadata={"help": "Cosine end value of the weight decay."})
    adam_beta1: float = 0.9
    adam_beta2: float | None = None
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient clipping norm; 0 disables it."})
    mixed_precision: str = field(
        default="no",
        metadata={"help": "no (float32), or a dtype in any spelling the other commands take: bf16 / bfloat16, fp16."},
    )
    seed: int = 0
    num_workers: int = 0
    group_by_length: bool = True
    dispatch_batches: bool = field(
        default=False,
        metadata={
            "help": "Process 0 loads and collates each global batch and sends each process its slice, so masks are "
            "drawn on the global batch and any process count gives the run of one process with that batch."
        },
    )
    logging_steps: int = 1
    log_samples: bool = field(
        default=False,
        metadata={
            "help": "Write the dataset indices of the items each logged step trained on to log.jsonl (`samples`)."
        },
    )
    eval_steps: int = field(default=0, metadata={"help": "Held-out loss every N steps (0: at the end only)."})
    save_steps: int = field(default=0, metadata={"help": "Checkpoint every N steps (0: at the end only)."})
    save_total_limit: int = 2
    export_steps: int = field(default=0, metadata={"help": "save_pretrained export every N steps (0: end only)."})
    resume_from_checkpoint: str | None = field(default=None, metadata={"help": "'latest' or a checkpoint folder."})
    max_consecutive_nonfinite: int = 5
    health_metrics: bool = field(
        default=True,
        metadata={
            "help": "Representation health of the held-out embeddings at every evaluation (training.health), with a "
            "collapse warning."
        },
    )
    stop_on_collapse: bool = field(
        default=False, metadata={"help": "Checkpoint, export and stop when the held-out representation collapses."}
    )
    report_to: str | None = field(default=None, metadata={"help": "Tracker for accelerator.log, e.g. tensorboard."})

    def __post_init__(self):
        if self.stage not in STAGE_CLASSES:
            raise ValueError(f"stage must be one of {tuple(STAGE_CLASSES)}, got {self.stage!r}.")
        if self.output_dir is None:
            raise ValueError("Pass --output_dir, the run folder.")
        if self.export_encoder not in EXPORT_ENCODERS:
            raise ValueError(f"export_encoder must be one of {EXPORT_ENCODERS}, got {self.export_encoder!r}.")
        if (self.roi_table_source is None) != (self.roi_table_path is None):
            raise ValueError("Pass --roi_table_source and --roi_table_path together (the kind and the file).")
        self.mixed_precision = accelerate_mixed_precision(self.mixed_precision)
        for name, value in get_stage(self.stage).defaults.items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        if not self.warmup_start_learning_rate > 0:
            raise ValueError(
                f"warmup_start_learning_rate must be positive (got {self.warmup_start_learning_rate}): the first "
                "optimizer step runs at it."
            )
        if self.warmup_start_learning_rate > self.learning_rate:
            raise ValueError(
                f"warmup_start_learning_rate ({self.warmup_start_learning_rate:g}) is above the learning rate "
                f"({self.learning_rate:g}): pass a --warmup_start_learning_rate below --learning_rate."
            )


ACCELERATE_PRECISION = {"float32": "no", "bfloat16": "bf16", "float16": "fp16"}


def accelerate_mixed_precision(name: str) -> str:
    """Accelerate's `mixed_precision` name (`no`, `bf16`, `fp16`) of `no` or any dtype spelling of `dtype_names`."""
    if str(name).strip().lower() == "no":
        return "no"
    try:
        return ACCELERATE_PRECISION[canonical_dtype_name(name)]
    except ValueError as error:
        raise ValueError(f"mixed_precision: {error} (or no)") from None


def parse_arguments(argv: Sequence[str] | None = None) -> PretrainingArguments:
    """`<stage> [--config file.yaml] [--field value ...]` -> `PretrainingArguments` (flags override the YAML)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and not argv[0].startswith("-"):
        argv = ["--stage", *argv]
    parser = dataclass_parser(PretrainingArguments, prog="brainharmonix pretrain")
    parser.add_argument("--config", default=None, help="YAML file of options (keys = flag names).")
    known, _ = parser.parse_known_args(argv)
    if known.config is not None:
        options = yaml.safe_load(Path(known.config).read_text()) or {}
        unknown = sorted(set(options) - {f for f in PretrainingArguments.__dataclass_fields__})
        if unknown:
            raise ValueError(f"{known.config}: unknown options {unknown}; see `brainharmonix pretrain --help`.")
        parser.set_defaults(**options)
    namespace = vars(parser.parse_args(argv))
    namespace.pop("config")
    try:
        return PretrainingArguments(**namespace)
    except ValueError as error:
        parser.error(str(error))


__all__ = ["PretrainingArguments", "parse_arguments"]
