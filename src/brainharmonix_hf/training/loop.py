# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""The pretraining loop, one for every stage (`training.stages`), on a run prepared by `training.run_setup`.

Each step: `stage.compute_loss`, a loss check on every process, backward (scaled for gradient accumulation), then on
the last micro-batch of an update: gradient clipping, AdamW with the step's learning rate and weight decay (linear
warmup from `warmup_start_learning_rate`, then cosine; cosine weight decay), and `stage.after_optimizer_step` (the
function stage's EMA update).

Representation health: at every held-out evaluation (step 0, every `eval_steps`, the last step) the stage's pooled
embeddings of the held-out items give the health metrics of `training.health` (`feature_std`, `relative_spread`,
`effective_rank`, `mean_cosine_similarity`, written into the validation record of `log.jsonl` and the trackers). The
step-0 figures (the initial model) are the reference of the collapse verdict; a collapse is logged as a warning and
an `event: "collapse"` record with its reasons, and with `--stop_on_collapse` the run checkpoints, exports and stops
with `RepresentationCollapseError`.

Resuming (`--resume_from_checkpoint`): model, optimizer, RNG states and the `TrainingState` counters come back; the
epoch continues after the items already trained on, whatever the new number of processes or batch size; checkpoints
newer than the one resumed from belong to an abandoned run and move to `checkpoints/abandoned/`.

Non-finite losses: when any process gets a NaN/Inf loss, every process skips that micro-batch's backward pass and
the whole update it belongs to (gradients zeroed, no optimizer step or stage hook, the step counter and schedules do
not advance); the step and the batch's subjects are logged (and written to `log.jsonl`). After
`max_consecutive_nonfinite` skipped updates in a row the run stops with `NonFiniteLossError`.
"""

import json
import math
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import broadcast_object_list, gather_object
from tqdm.auto import tqdm
from transformers import PreTrainedModel
from transformers.utils import logging

from . import checkpoints
from .arguments import PretrainingArguments
from .data import LengthGroupedBatchSampler
from .health import RepresentationHealth, collapse_reasons, representation_health
from .held_out import evaluate_held_out
from .run_setup import PretrainingRun
from .schedules import cosine_schedule, warmup_cosine_schedule

logger = logging.get_logger(__name__)


class NonFiniteLossError(RuntimeError):
    """Too many updates in a row were skipped for NaN/Inf losses."""


class RepresentationCollapseError(RuntimeError):
    """The held-out embeddings collapsed and `--stop_on_collapse` was set."""


@dataclass
class TrainingState:
    """Counters saved in every checkpoint (Accelerate saves RNG, model and optimizer states beside them).

    `samples_in_epoch` counts the items of the epoch trained on so far (all processes), in the order the epoch's
    batches of `epoch_batch_size` (the global batch it started with) give them: a run resumed with another number of
    processes or batch size continues after exactly those items (`LengthGroupedBatchSampler.resume_epoch`).
    """

    step: int = 0
    epoch: int = 0
    samples_in_epoch: int = 0
    epoch_batch_size: int = 0
    consecutive_nonfinite: int = 0

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state: dict) -> None:
        for name, value in state.items():
            setattr(self, name, value)


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


class RunLog:
    """`log.jsonl` of the run (main process only) and the tracker."""

    def __init__(self, accelerator: Accelerator, path: Path, resumed_step: int | None):
        self.accelerator, self.path = accelerator, path
        self.kept: list[dict] = []
        if accelerator.is_main_process:
            kept = []
            if resumed_step is not None and path.exists():
                lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
                kept = [line for line in lines if line.get("step", 0) <= resumed_step]
            path.write_text("".join(json.dumps(line) + "\n" for line in kept))
            self.kept = kept

    def write(self, record: dict) -> None:
        if self.accelerator.is_main_process:
            with self.path.open("a") as handle:
                handle.write(json.dumps(record) + "\n")
        numbers = {f"{record.get('split', 'train')}/{k}": v for k, v in record.items() if isinstance(v, int | float)}
        self.accelerator.log(numbers, step=record["step"])


def save_checkpoint(accelerator: Accelerator, checkpoints_dir: Path, step: int, keep: int) -> None:
    """`save_state` into a partial folder, sealed and renamed by the main process (`training.checkpoints`)."""
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


def resume(accelerator: Accelerator, args: PretrainingArguments, checkpoints_dir: Path) -> int | None:
    """Load the checkpoint to resume from (verified first); refuse to start over a run that has checkpoints.

    Resuming from a step older than the newest checkpoint abandons the newer ones: they move to
    `checkpoints/abandoned/`, so neither `--resume_from_checkpoint latest` nor pruning mixes them with this run."""
    if args.resume_from_checkpoint is None:
        if checkpoints.list_checkpoints(checkpoints_dir):
            raise checkpoints.CheckpointError(
                f"{checkpoints_dir} already holds checkpoints of a run: pass --resume_from_checkpoint latest to "
                "continue it, or choose a new --output_dir."
            )
        return None
    path = checkpoints.resolve(args.resume_from_checkpoint, checkpoints_dir)
    step = checkpoints.verify(path)
    if accelerator.is_main_process:
        abandoned = checkpoints.abandon_after(checkpoints_dir, step)
        if abandoned:
            logger.warning(
                f"Resuming from step {step}: moved the later checkpoints {abandoned} of the abandoned run to "
                f"{checkpoints_dir / 'abandoned'}."
            )
    accelerator.wait_for_everyone()
    accelerator.load_state(str(path))
    logger.info(f"Resumed from {path} (step {step}).")
    return step


def export(run: PretrainingRun, folder: Path, state: TrainingState, losses: dict[str, float]) -> None:
    """The stage's `save_pretrained` export of the model, with the full state dict gathered from every process."""
    state_dict = run.accelerator.get_state_dict(run.model)
    if run.accelerator.is_main_process:
        model = run.accelerator.unwrap_model(run.model)
        run.stage.export(model, state_dict, run.processor, folder, state.step, state.epoch, losses)


class HealthMonitor:
    """Health metrics of the held-out embeddings at each evaluation, judged against the initial model's (step 0; read
    back from the log of a resumed run). The main process judges; every process gets its verdict."""

    def __init__(self, run_log: "RunLog"):
        self.accelerator = run_log.accelerator
        self.reference = next(
            (
                RepresentationHealth.from_record(record)
                for record in run_log.kept
                if record.get("split") == "validation" and record.get("step") == 0 and "effective_rank" in record
            ),
            None,
        )

    def check(self, embeddings: torch.Tensor, step: int) -> tuple[dict[str, float], list[str]]:
        """`(metrics for the log record, collapse reasons)`; no metrics for fewer than two held-out items. Only the main
        process computes the metrics (the other processes get none, and the main process's reasons)."""
        if embeddings is None or len(embeddings) < 2:
            return {}, []
        if not self.accelerator.is_main_process:  # the main process writes the record and decides
            return {}, broadcast_object_list([None])[0]
        health = representation_health(embeddings)
        if step == 0 or self.reference is None:
            self.reference = health
        reasons = collapse_reasons(health, reference=self.reference)
        return health.metrics(), broadcast_object_list([reasons])[0]


def log_held_out(run: PretrainingRun, run_log: RunLog, monitor: HealthMonitor, step: int, epoch: float):
    """Evaluate the held-out set, write its record (`split = "validation"`, loss and health metrics) and any collapse
    event; returns `(loss, collapse reasons)`."""
    result = evaluate_held_out(
        run.accelerator, run.stage, run.model, run.held_out, with_embeddings=run.args.health_metrics
    )
    metrics, reasons = monitor.check(result.embeddings, step)
    run_log.write({"step": step, "epoch": epoch, "loss": result.loss, "split": "validation"} | metrics)
    if reasons:
        logger.warning(
            f"Step {step}: the held-out representation has collapsed: {'; '.join(reasons)}. The loss can still fall "
            "while the encoder maps every input to the same embedding; see training.health. Pass "
            "--stop_on_collapse true to stop such a run."
        )
        run_log.write({"step": step, "epoch": epoch, "split": "validation", "event": "collapse", "reasons": reasons})
    return result.loss, reasons


def start_epoch(run: PretrainingRun, state: TrainingState) -> None:
    """Reseed the shuffled batch order and the items' augmentation for `state.epoch`, and continue after its first
    `state.samples_in_epoch` items when resuming inside it (or start the next epoch when none are left)."""
    sampler = run.train_loader.batch_sampler
    while not isinstance(sampler, LengthGroupedBatchSampler):
        sampler = sampler.batch_sampler
    sampler.set_epoch(state.epoch)
    if state.samples_in_epoch:
        sampler.resume_epoch(state.samples_in_epoch, state.epoch_batch_size)
        if len(sampler) == 0:  # saved after the epoch's last batch
            state.epoch, state.samples_in_epoch = state.epoch + 1, 0
            sampler.set_epoch(state.epoch)
    if not state.samples_in_epoch:
        state.epoch_batch_size = sampler.batch_size
    run.train_data.set_epoch(state.epoch)
    run.train_loader.set_epoch(state.epoch)


def train_loop(run: PretrainingRun) -> PreTrainedModel:
    """Train `run` to its last step (resuming when asked), checkpoint and export; returns the unwrapped model."""
    args, stage, accelerator, model, optimizer = run.args, run.stage, run.accelerator, run.model, run.optimizer
    train_loader, train_data = run.train_loader, run.train_data
    state = TrainingState()
    accelerator.register_for_checkpointing(state)
    resumed_step = resume(accelerator, args, run.checkpoints_dir)

    updates_per_epoch = math.ceil(len(train_loader) / args.gradient_accumulation_steps)
    total_steps = args.max_steps if args.max_steps > 0 else args.num_epochs * updates_per_epoch
    global_batch = args.per_device_batch_size * accelerator.num_processes
    run_log = RunLog(accelerator, run.output_dir / "log.jsonl", resumed_step)
    if args.report_to is not None:
        accelerator.init_trackers(f"brainharmonix-{args.stage}", config={k: str(v) for k, v in asdict(args).items()})
    progress = tqdm(
        total=total_steps, initial=state.step, disable=not accelerator.is_local_main_process, desc=args.stage
    )
    unwrapped = accelerator.unwrap_model(model)
    losses, samples, skip_window, interval_start, interval_batches = [], [], False, time.perf_counter(), 0
    final_losses = {}

    monitor = HealthMonitor(run_log)
    if run.held_out is not None and state.step == 0:
        log_held_out(run, run_log, monitor, 0, 0.0)
    while state.step < total_steps:
        start_epoch(run, state)
        for batch in train_loader:
            sample_index = batch.pop("sample_index")
            if args.log_samples:
                samples += accelerator.gather(sample_index).tolist()
            lr = apply_schedule(optimizer, args, state.step, total_steps)
            with accelerator.accumulate(model):
                loss = stage.compute_loss(model, batch)
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
                                f"{run.checkpoints_dir}."
                            )
                    else:
                        if args.max_grad_norm > 0:
                            accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
                        optimizer.step()
                        optimizer.zero_grad()
                        stage.after_optimizer_step(unwrapped, state.step, total_steps)
                        state.step += 1
                        state.consecutive_nonfinite = 0
                        progress.update(1)
                    skip_window = False
            state.samples_in_epoch += global_batch
            interval_batches += 1
            if not accelerator.sync_gradients or state.consecutive_nonfinite:
                continue
            epoch = state.epoch + state.samples_in_epoch / len(train_data)
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
                if args.log_samples:
                    record["samples"], samples = samples, []
                run_log.write(record)
                progress.set_postfix(loss=f"{record['loss']:.4f}", lr=f"{lr:.2e}")
                final_losses["train loss (last logged)"] = record["loss"]
                losses, interval_start, interval_batches = [], time.perf_counter(), 0
            if run.held_out is not None and (
                (args.eval_steps and state.step % args.eval_steps == 0) or state.step == total_steps
            ):
                final_losses["held-out loss"], collapse = log_held_out(run, run_log, monitor, state.step, epoch)
                if collapse and args.stop_on_collapse:
                    finish_run(run, state, final_losses, progress)
                    raise RepresentationCollapseError(
                        f"Stopped at step {state.step}: the held-out representation collapsed ({'; '.join(collapse)})."
                        f" The checkpoint and model/ of this step are in {run.output_dir}. Try a lower learning rate, "
                        "a slower EMA (ema_momentum_start), or check the inputs' normalisation."
                    )
            if args.save_steps and state.step % args.save_steps == 0 and state.step < total_steps:
                save_checkpoint(accelerator, run.checkpoints_dir, state.step, args.save_total_limit)
            if args.export_steps and state.step % args.export_steps == 0 and state.step < total_steps:
                export(run, run.output_dir / "exports" / f"step-{state.step:08d}", state, final_losses)
            if state.step >= total_steps:
                break
        else:
            state.epoch += 1
            state.samples_in_epoch = 0
    finish_run(run, state, final_losses, progress)
    return unwrapped


def finish_run(run: PretrainingRun, state: TrainingState, losses: dict[str, float], progress: tqdm) -> None:
    """End a run at `state.step`, at its last step or stopped early: close the progress bar, checkpoint, export
    `model/` and end the trackers."""
    progress.close()
    save_checkpoint(run.accelerator, run.checkpoints_dir, state.step, run.args.save_total_limit)
    export(run, run.output_dir / "model", state, losses)
    run.accelerator.end_training()


__all__ = [
    "HealthMonitor",
    "NonFiniteLossError",
    "RepresentationCollapseError",
    "TrainingState",
    "apply_schedule",
    "train_loop",
]
