# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Pretraining loops on Accelerate for the three stages: `structure` (StructureMAE on T1 volumes), `function`
(FunctionJEPA on fMRI series, EMA target encoder) and `harmonizer` (Harmonizer on cached encoder latents).

Run on one CPU, or on many devices and nodes through `accelerate launch` / `torchrun`:

    python -m brainharmonix_hf.training.pretrain function --manifest cohort.csv --output_dir runs/f
    accelerate launch -m brainharmonix_hf.training.pretrain function --config function.yaml
    brainharmonix pretrain harmonizer --latents latents/ --output_dir runs/h

Options are the fields of `PretrainingArguments`, as flags or in a YAML file (`--config`; flags win).

Each step: forward, a loss check on every process, backward (scaled for gradient accumulation), then on the last
micro-batch of an update: gradient clipping, AdamW with the step's learning rate and weight decay (warmup + cosine;
cosine weight decay for the JEPA), and for `function` the EMA update of the target encoder with the momentum from
the model config (`ema_momentum_start` -> `ema_momentum_end`).

Non-finite losses: when any process gets a NaN/Inf loss, every process skips that micro-batch's backward pass and
the whole update it belongs to (gradients zeroed, no optimizer or EMA step, the step counter and schedules do not
advance); the step and the batch's subjects are logged (and written to `log.jsonl`). After
`max_consecutive_nonfinite` skipped updates in a row the run stops with `NonFiniteLossError`.

Run folder (`output_dir`): `log.jsonl` (one JSON object per logged step: step, epoch, loss, lr, samples_per_second,
split = "train" | "validation"), `checkpoints/step-N` (Accelerate state, sealed: see `training.checkpoints`),
`exports/step-N` and `model/` (`save_pretrained` folders with the processor and a model card).
"""

import json
import math
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import datasets
import torch
import yaml
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration, gather_object, set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import HfArgumentParser
from transformers.utils import logging

from ..modeling.configuration_function_jepa import FunctionJEPAConfig
from ..modeling.configuration_harmonizer import HarmonizerConfig
from ..modeling.configuration_structure_mae import StructureMAEConfig
from ..modeling.modeling_function_jepa import FunctionJEPAForPreTraining
from ..modeling.modeling_harmonizer import HarmonizerForPreTraining
from ..modeling.modeling_structure_mae import StructureMAEForPreTraining
from ..processing.feature_extraction_fmri import FMRIFeatureExtractor
from ..processing.feature_extraction_t1 import T1VolumeFeatureExtractor
from . import checkpoints
from .collators import FunctionJEPACollator, HarmonizerCollator, StructureMAECollator
from .data import (
    FMRIPretrainingDataset,
    HarmonizerLatentDataset,
    LengthGroupedBatchSampler,
    T1Augmentation,
    T1PretrainingDataset,
)
from .latent_cache import load_latent_cache
from .manifest import load_manifest
from .masking import SpatiotemporalMaskSampler
from .schedules import cosine_schedule, ema_momentum, warmup_cosine_schedule

logger = logging.get_logger(__name__)

STAGES = ("structure", "function", "harmonizer")
# DESIGN §5 recipes; `None` fields of PretrainingArguments take these.
STAGE_DEFAULTS = {
    "structure": {"learning_rate": 1.5e-4, "weight_decay": 0.05, "weight_decay_end": 0.05, "adam_beta2": 0.95},
    "function": {"learning_rate": 1e-3, "weight_decay": 0.04, "weight_decay_end": 0.4, "adam_beta2": 0.999},
    "harmonizer": {"learning_rate": 5e-4, "weight_decay": 0.05, "weight_decay_end": 0.05, "adam_beta2": 0.95},
}


@dataclass
class PretrainingArguments:
    """Options of a pretraining run (flags `--name value`, or keys of the `--config` YAML file)."""

    stage: str = field(default=None, metadata={"help": f"One of {STAGES} (given first on the command line)."})
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
    t1_augmentation: bool = field(default=True, metadata={"help": "Flip/intensity/shift augmentation of T1s."})
    modality_dropout: float | None = field(default=None, metadata={"help": "Override the Harmonizer's rate."})
    per_device_batch_size: int = 2
    gradient_accumulation_steps: int = 1
    num_epochs: int = 1
    max_steps: int = field(default=-1, metadata={"help": "Optimizer steps; overrides num_epochs when > 0."})
    learning_rate: float | None = field(default=None, metadata={"help": "Peak lr (stage default when unset)."})
    warmup_start_learning_rate: float = 0.0
    min_learning_rate: float = 1e-6
    warmup_ratio: float = field(default=40 / 300, metadata={"help": "Fraction of the steps spent warming up."})
    weight_decay: float | None = None
    weight_decay_end: float | None = field(default=None, metadata={"help": "Cosine end value of the weight decay."})
    adam_beta1: float = 0.9
    adam_beta2: float | None = None
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient clipping norm; 0 disables it."})
    mixed_precision: str = field(default="no", metadata={"help": "no, bf16 or fp16."})
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
    eval_steps: int = field(default=0, metadata={"help": "Held-out loss every N steps (0: at the end only)."})
    save_steps: int = field(default=0, metadata={"help": "Checkpoint every N steps (0: at the end only)."})
    save_total_limit: int = 2
    export_steps: int = field(default=0, metadata={"help": "save_pretrained export every N steps (0: end only)."})
    resume_from_checkpoint: str | None = field(default=None, metadata={"help": "'latest' or a checkpoint folder."})
    max_consecutive_nonfinite: int = 5
    report_to: str | None = field(default=None, metadata={"help": "Tracker for accelerator.log, e.g. tensorboard."})

    def __post_init__(self):
        if self.stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, got {self.stage!r}.")
        if self.output_dir is None:
            raise ValueError("Pass --output_dir, the run folder.")
        for name, value in STAGE_DEFAULTS[self.stage].items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        if self.mixed_precision not in ("no", "bf16", "fp16"):
            raise ValueError(f"mixed_precision must be no, bf16 or fp16, got {self.mixed_precision!r}.")


class NonFiniteLossError(RuntimeError):
    """Too many updates in a row were skipped for NaN/Inf losses."""


@dataclass
class TrainingState:
    """Counters saved in every checkpoint (Accelerate saves RNG, model and optimizer states beside them)."""

    step: int = 0
    epoch: int = 0
    batches_in_epoch: int = 0
    consecutive_nonfinite: int = 0

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state: dict) -> None:
        for name, value in state.items():
            setattr(self, name, value)


def load_stage_config(args: PretrainingArguments):
    config_class = {"structure": StructureMAEConfig, "function": FunctionJEPAConfig, "harmonizer": HarmonizerConfig}
    source = args.model_config or args.init_from
    config = config_class[args.stage]() if source is None else config_class[args.stage].from_pretrained(source)
    if args.modality_dropout is not None:
        config.modality_dropout = args.modality_dropout
    return config


def build_model(args: PretrainingArguments, config):
    model_class = {
        "structure": StructureMAEForPreTraining,
        "function": FunctionJEPAForPreTraining,
        "harmonizer": HarmonizerForPreTraining,
    }[args.stage]
    if args.init_from is not None:
        return model_class.from_pretrained(args.init_from, config=config)
    return model_class(config)


def _split_rows(table: datasets.Dataset, args: PretrainingArguments):
    splits = table["split"]
    train = table.select([i for i, split in enumerate(splits) if split in (None, args.train_split)])
    held_out = table.select([i for i, split in enumerate(splits) if split == args.eval_split])
    return train, (held_out if len(held_out) else None)


def build_data(args: PretrainingArguments, config):
    """`(train dataset, held-out dataset or None, collator, processor or None)` of the stage."""
    if args.stage == "harmonizer":
        if args.latents is None:
            raise ValueError(
                "The harmonizer stage trains on cached latents: pass --latents <folder written by `brainharmonix "
                "cache-latents` or `training.latent_cache.cache_latents`>."
            )
        train, held_out = _split_rows(load_latent_cache(args.latents), args)
        held_out = None if held_out is None else HarmonizerLatentDataset(held_out, config)
        return HarmonizerLatentDataset(train, config), held_out, HarmonizerCollator(), None
    if args.manifest is None:
        raise ValueError(f"The {args.stage} stage reads a cohort manifest: pass --manifest <file>.")
    train, held_out = _split_rows(load_manifest(args.manifest), args)
    if args.stage == "structure":
        processor = (
            T1VolumeFeatureExtractor(volume_size=config.image_size)
            if args.processor is None
            else T1VolumeFeatureExtractor.from_pretrained(args.processor)
        )
        augmentation = T1Augmentation() if args.t1_augmentation else None
        datasets_ = [
            None if rows is None else T1PretrainingDataset(rows, processor, augmentation, seed=args.seed + offset)
            for offset, rows in ((0, train), (1, held_out))
        ]
        return *datasets_, StructureMAECollator(config.num_patches), processor
    processor = (
        FMRIFeatureExtractor(
            num_rois=config.num_rois,
            atlas=config.atlas,
            roi_labels=config.roi_labels,
            num_time_patches=config.num_time_patches,
            window_seconds=config.window_seconds,
            normalization=args.fmri_normalization,
        )
        if args.processor is None
        else FMRIFeatureExtractor.from_pretrained(args.processor)
    )
    datasets_ = [
        None
        if rows is None
        else FMRIPretrainingDataset(
            rows,
            num_time_patches=config.num_time_patches,
            window_seconds=config.window_seconds,
            downsample_rates=args.fmri_downsample_rates,
            num_rois=config.num_rois,
            label_image=args.fmri_label_image,
            seed=args.seed + offset,
            feature_extractor=processor,
        )
        for offset, rows in ((0, train), (1, held_out))
    ]
    collator = FunctionJEPACollator(processor, SpatiotemporalMaskSampler.from_config(config))
    return *datasets_, collator, processor


def parameter_groups(model: torch.nn.Module) -> list[dict]:
    """AdamW groups: weight decay on matrices, none on 1-D parameters (biases, norms) and scalars."""
    decay, no_decay = [], []
    for parameter in model.parameters():
        if parameter.requires_grad:
            (decay if parameter.ndim >= 2 else no_decay).append(parameter)
    return [{"params": decay, "apply_weight_decay": True}, {"params": no_decay, "weight_decay": 0.0}]


def apply_schedule(optimizer, args: PretrainingArguments, step: int, total_steps: int) -> float:
    """Set the learning rate and weight decay of optimizer step `step` in every group; returns the learning rate."""
    warmup = round(args.warmup_ratio * total_steps)
    lr = warmup_cosine_schedule(
        step, total_steps, warmup, args.learning_rate, args.warmup_start_learning_rate, args.min_learning_rate
    )
    weight_decay = cosine_schedule(step, total_steps, args.weight_decay, args.weight_decay_end)
    for group in optimizer.param_groups:
        group["lr"] = lr
        if group.get("apply_weight_decay"):
            group["weight_decay"] = weight_decay
    return lr


def make_loader(args, dataset, collator, batch_size: int, shuffle: bool) -> DataLoader:
    keys = dataset.batch_keys() if args.group_by_length else [(0,)] * len(dataset)
    sampler = LengthGroupedBatchSampler(keys, batch_size, shuffle=shuffle, seed=args.seed, drop_last=shuffle)
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=collator, num_workers=args.num_workers)


class RunLog:
    """`log.jsonl` of the run (main process only) and the tracker."""

    def __init__(self, accelerator: Accelerator, path: Path, resumed_step: int | None):
        self.accelerator, self.path = accelerator, path
        if accelerator.is_main_process:
            kept = []
            if resumed_step is not None and path.exists():
                lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
                kept = [line for line in lines if line.get("step", 0) <= resumed_step]
            path.write_text("".join(json.dumps(line) + "\n" for line in kept))

    def write(self, record: dict) -> None:
        if self.accelerator.is_main_process:
            with self.path.open("a") as handle:
                handle.write(json.dumps(record) + "\n")
        numbers = {f"{record.get('split', 'train')}/{k}": v for k, v in record.items() if isinstance(v, int | float)}
        self.accelerator.log(numbers, step=record["step"])


@torch.no_grad()
def held_out_loss(accelerator: Accelerator, model, loader) -> float:
    """Mean loss over the held-out set (weighted by batch size), the same masks every time."""
    model.eval()
    total = torch.zeros(2, device=accelerator.device)
    for batch in loader:
        batch_size = len(batch.pop("sample_index"))
        loss = model(**batch).loss.float()
        total += torch.stack([loss * batch_size, torch.tensor(float(batch_size), device=total.device)])
    model.train()
    total = accelerator.reduce(total, reduction="sum")
    return float(total[0] / total[1])


def export(accelerator: Accelerator, model, processor, folder: Path, args, state: TrainingState, losses: dict):
    """`save_pretrained` of the model (and processor) with a short model card."""
    state_dict = accelerator.get_state_dict(model)
    if not accelerator.is_main_process:
        return
    unwrapped = accelerator.unwrap_model(model)
    unwrapped.save_pretrained(folder, state_dict=state_dict)
    if processor is not None:
        processor.save_pretrained(folder)
    data = args.manifest or args.latents
    lines = [
        f"# {type(unwrapped).__name__} ({args.stage} pretraining)",
        "",
        f"Pretrained with `brainharmonix pretrain {args.stage}` for {state.step} optimizer steps "
        f"({state.epoch} full epochs) on `{data}`.",
        "",
        *(f"- {name}: {value:.6g}" for name, value in losses.items()),
        "",
        "Training options:",
        "",
        "```json",
        json.dumps({k: v for k, v in asdict(args).items() if v is not None}, indent=1),
        "```",
    ]
    (folder / "README.md").write_text("\n".join(lines) + "\n")


def save_checkpoint(accelerator: Accelerator, checkpoints_dir: Path, step: int, keep: int) -> None:
    partial = checkpoints.partial_folder(checkpoints_dir, step)
    final = checkpoints.checkpoint_folder(checkpoints_dir, step)
    if accelerator.is_main_process and partial.exists():
        shutil.rmtree(partial)  # left by a run killed while saving this step
    accelerator.wait_for_everyone()
    accelerator.save_state(str(partial))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        checkpoints.seal(partial, final, step)
        checkpoints.prune(checkpoints_dir, keep)
    accelerator.wait_for_everyone()


def _resume(accelerator: Accelerator, args: PretrainingArguments, checkpoints_dir: Path) -> int | None:
    """Load the checkpoint to resume from (verified first); refuse to start over a run that has checkpoints."""
    if args.resume_from_checkpoint is None:
        if checkpoints.list_checkpoints(checkpoints_dir):
            raise checkpoints.CheckpointError(
                f"{checkpoints_dir} already holds checkpoints of a run: pass --resume_from_checkpoint latest to "
                "continue it, or choose a new --output_dir."
            )
        return None
    path = checkpoints.resolve(args.resume_from_checkpoint, checkpoints_dir)
    step = checkpoints.verify(path)
    accelerator.load_state(str(path))
    logger.info(f"Resumed from {path} (step {step}).")
    return step


def train(args: PretrainingArguments):
    """Run a pretraining stage; returns the trained (unwrapped) model."""
    output_dir = Path(args.output_dir)
    checkpoints_dir = output_dir / "checkpoints"
    accelerator = Accelerator(
        mixed_precision=args.mixed_precision,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        log_with=args.report_to,
        project_config=ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(output_dir / "tracker")),
        dataloader_config=DataLoaderConfiguration(
            split_batches=args.dispatch_batches, dispatch_batches=args.dispatch_batches
        ),
    )
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
    set_seed(args.seed)
    config = load_stage_config(args)
    model = build_model(args, config)
    model.train()
    train_data, held_out_data, collator, processor = build_data(args, config)
    loader_batch = args.per_device_batch_size * (accelerator.num_processes if args.dispatch_batches else 1)
    train_loader = make_loader(args, train_data, collator, loader_batch, shuffle=True)
    if len(train_loader) == 0:
        raise ValueError(
            f"The training set has {len(train_data)} items, fewer than one global batch of "
            f"{args.per_device_batch_size * accelerator.num_processes}: lower --per_device_batch_size."
        )
    held_out_loader = (
        None if held_out_data is None else make_loader(args, held_out_data, collator, loader_batch, shuffle=False)
    )
    optimizer = torch.optim.AdamW(
        parameter_groups(model), lr=args.learning_rate, betas=(args.adam_beta1, args.adam_beta2)
    )
    model, optimizer, train_loader = accelerator.prepare(model, optimizer, train_loader)
    if held_out_loader is not None:
        held_out_loader = accelerator.prepare(held_out_loader)
    state = TrainingState()
    accelerator.register_for_checkpointing(state)
    resumed_step = _resume(accelerator, args, checkpoints_dir)

    updates_per_epoch = math.ceil(len(train_loader) / args.gradient_accumulation_steps)
    total_steps = args.max_steps if args.max_steps > 0 else args.num_epochs * updates_per_epoch
    global_batch = args.per_device_batch_size * accelerator.num_processes
    run_log = RunLog(accelerator, output_dir / "log.jsonl", resumed_step)
    if args.report_to is not None:
        accelerator.init_trackers(f"brainharmonix-{args.stage}", config={k: str(v) for k, v in asdict(args).items()})
    progress = tqdm(
        total=total_steps, initial=state.step, disable=not accelerator.is_local_main_process, desc=args.stage
    )
    unwrapped = accelerator.unwrap_model(model)
    losses, skip_window, interval_start, interval_batches = [], False, time.perf_counter(), 0
    final_losses = {}

    if held_out_loader is not None and state.step == 0:
        value = held_out_loss(accelerator, model, held_out_loader)
        run_log.write({"step": 0, "epoch": 0.0, "loss": value, "split": "validation"})
    while state.step < total_steps:
        loader = (
            accelerator.skip_first_batches(train_loader, state.batches_in_epoch)
            if state.batches_in_epoch
            else train_loader
        )
        # Accelerate re-applies its own epoch counter when iteration starts (a fresh skipping loader counts from 0).
        loader.set_epoch(state.epoch)
        _set_epoch(train_loader, train_data, state.epoch)
        for batch in loader:
            sample_index = batch.pop("sample_index")
            lr = apply_schedule(optimizer, args, state.step, total_steps)
            with accelerator.accumulate(model):
                loss = model(**batch).loss
                finite = bool(torch.isfinite(loss.detach()))
                flags = torch.tensor(
                    [loss.detach().float() if finite else 0.0, 0.0 if finite else 1.0], device=accelerator.device
                )
                flags = accelerator.reduce(flags, reduction="sum")
                if flags[1] == 0:
                    accelerator.backward(loss)
                    losses.append(float(flags[0]) / accelerator.num_processes)
                else:
                    skip_window = True
                    subjects = gather_object([train_data.subject(int(i)) for i in sample_index])
                    logger.warning(
                        f"Step {state.step}: non-finite loss on {int(flags[1])} process(es); subjects in the global "
                        f"batch: {subjects}. Skipping this update."
                    )
                    event = {"step": state.step, "epoch": state.epoch, "split": "train", "event": "nonfinite_loss"}
                    run_log.write(event | {"subjects": subjects})
                if accelerator.sync_gradients:
                    if skip_window:
                        optimizer.zero_grad()
                        state.consecutive_nonfinite += 1
                        if state.consecutive_nonfinite >= args.max_consecutive_nonfinite:
                            raise NonFiniteLossError(
                                f"{state.consecutive_nonfinite} updates in a row had non-finite losses (last at step "
                                f"{state.step}, subjects {subjects}): check those inputs, lower the learning rate, or "
                                "use bf16 instead of fp16. The last good checkpoint is in "
                                f"{checkpoints_dir}."
                            )
                    else:
                        if args.max_grad_norm > 0:
                            accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
                        optimizer.step()
                        optimizer.zero_grad()
                        if args.stage == "function":
                            unwrapped.update_target_encoder(ema_momentum(state.step, total_steps, config))
                        state.step += 1
                        state.consecutive_nonfinite = 0
                        progress.update(1)
                    skip_window = False
            state.batches_in_epoch += 1
            interval_batches += 1
            if not accelerator.sync_gradients or state.consecutive_nonfinite:
                continue
            epoch = state.epoch + state.batches_in_epoch / len(train_loader)
            if state.step % args.logging_steps == 0 or state.step == total_steps:
                elapsed = time.perf_counter() - interval_start
                record = {
                    "step": state.step,
                    "epoch": epoch,
                    "loss": sum(losses) / max(len(losses), 1),
                    "lr": lr,
                    "samples_per_second": interval_batches * global_batch / elapsed,
                    "split": "train",
                }
                run_log.write(record)
                progress.set_postfix(loss=f"{record['loss']:.4f}", lr=f"{lr:.2e}")
                final_losses["train loss (last logged)"] = record["loss"]
                losses, interval_start, interval_batches = [], time.perf_counter(), 0
            if held_out_loader is not None and (
                (args.eval_steps and state.step % args.eval_steps == 0) or state.step == total_steps
            ):
                value = held_out_loss(accelerator, model, held_out_loader)
                final_losses["held-out loss"] = value
                run_log.write({"step": state.step, "epoch": epoch, "loss": value, "split": "validation"})
            if args.save_steps and state.step % args.save_steps == 0 and state.step < total_steps:
                save_checkpoint(accelerator, checkpoints_dir, state.step, args.save_total_limit)
            if args.export_steps and state.step % args.export_steps == 0 and state.step < total_steps:
                folder = output_dir / "exports" / f"step-{state.step:08d}"
                export(accelerator, model, processor, folder, args, state, final_losses)
            if state.step >= total_steps:
                break
        else:
            state.epoch += 1
            state.batches_in_epoch = 0
    progress.close()
    save_checkpoint(accelerator, checkpoints_dir, state.step, args.save_total_limit)
    export(accelerator, model, processor, output_dir / "model", args, state, final_losses)
    accelerator.end_training()
    return unwrapped


def _set_epoch(train_loader, train_data, epoch: int) -> None:
    """Reseed the shuffled batch order and the items' augmentation for `epoch`."""
    train_data.set_epoch(epoch)
    sampler = train_loader.batch_sampler
    while not isinstance(sampler, LengthGroupedBatchSampler):
        sampler = sampler.batch_sampler
    sampler.set_epoch(epoch)


def parse_arguments(argv: Sequence[str] | None = None) -> PretrainingArguments:
    """`<stage> [--config file.yaml] [--field value ...]` -> `PretrainingArguments` (flags override the YAML)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and not argv[0].startswith("-"):
        argv = ["--stage", *argv]
    parser = HfArgumentParser(PretrainingArguments, prog="brainharmonix pretrain")
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


def main(argv: Sequence[str] | None = None) -> None:
    train(parse_arguments(argv))


if __name__ == "__main__":
    main()
