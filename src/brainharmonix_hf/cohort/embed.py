# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Embed a cohort: one row per subject-session-run with the pooled BrainHarmonix embedding (and optionally hub tokens).

Runs in one process, or in several under `accelerate launch` / `torchrun`: the pending rows are split between the
processes (`PartialState.split_between_processes`), each writes its own shard files, and the main process merges them
once all have finished. The output folder is locked for the run, belongs to one model and one set of options, and is
resumable: done rows are skipped, stale ones (changed inputs) re-embedded, failed ones retried (see `embedding_store`).
"""

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import PartialState
from accelerate.utils import broadcast_object_list, gather_object, parse_flag_from_env
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .. import __version__
from ..modeling.modeling_brainharmonix import BrainHarmonixModel
from ..processing.atlases import rows_in_model_order
from ..processing.processing_brainharmonix import BrainHarmonixProcessor
from .embedding_store import EmbeddingStore, new_run_id
from .folder_lock import output_folder_lock
from .folder_settings import check_settings, folder_settings
from .resume import plan_run
from .session_features import InputFiles, PreparedSession, SessionFailure, collate_sessions, prepare_session
from .session_inputs import KEY_COLUMNS, SessionInputs

FLOAT_INPUTS = ("pixel_values", "fmri_values")


@dataclass(frozen=True)
class EmbeddingRun:
    """What one call of `embed_cohort` did (each process of a distributed run counts its own part of `embedded` and
    `failed`).

    Attributes:
        output_dir: the output folder.
        embedded: rows embedded by this process (re-embedded stale rows included).
        skipped: rows already done with the current inputs.
        failed: rows of this process that failed (listed in `failures.jsonl`).
        changed: rows whose stored embedding was stale (inputs changed), by key, with the reason; re-embedded.
        seconds: time per phase (`plan`: comparing with the folder, `embed`, `consolidate`).
    """

    output_dir: Path
    embedded: int
    skipped: int
    failed: int
    changed: dict[tuple[str, ...], str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


class _SessionDataset(torch.utils.data.Dataset):
    def __init__(self, sessions: Sequence[SessionInputs], processor, fmri_atlas_image, fmri_atlas, files: InputFiles):
        self.sessions, self.processor = list(sessions), processor
        self.fmri_atlas_image, self.fmri_atlas = fmri_atlas_image, fmri_atlas
        self.files = files

    def __len__(self) -> int:
        return len(self.sessions)

    def __getitem__(self, index: int) -> PreparedSession:
        return prepare_session(
            self.processor, self.sessions[index], self.fmri_atlas_image, self.fmri_atlas, files=self.files
        )


def embed_cohort(
    model: BrainHarmonixModel,
    sessions: Sequence[SessionInputs],
    output_dir: str | os.PathLike,
    *,
    processor: BrainHarmonixProcessor | None = None,
    hub_tokens: bool = False,
    batch_size: int = 1,
    num_workers: int = 0,
    device: str | torch.device | None = None,
    fmri_atlas_image=None,
    fmri_atlas: str | None = None,
    rows_per_shard: int = 16,
    model_revision: str | None = None,
    model_commit: str | None = None,
    progress: bool = True,
    overwrite: bool = False,
    selection_notes: Mapping[str, str] | None = None,
) -> EmbeddingRun:
    """Embed every row not yet in `output_dir` (or stale there) and write them (see `embedding_store`).

    Args:
        model: a `BrainHarmonixModel` in the dtype to run (float32 or bfloat16); it is put in eval mode.
        sessions: the rows to embed (`find_bids_sessions` or `sessions_from_manifest`), one per subject-session-run.
        output_dir: output folder. It belongs to the model and options of its first run: another model, dtype,
            processor, `hub_tokens`, `fmri_atlas` or `fmri_atlas_image` is refused (`OutputFolderMismatch`) unless
            `overwrite`. Done rows are skipped, rows whose inputs changed are re-embedded, failures are retried.
        processor: prepares the inputs; defaults to `BrainHarmonixProcessor.for_config(model.config)`.
        hub_tokens: also store the `(1 + num_hub_tokens, hidden_size)` `[CLS, hub tokens]` of each row.
        batch_size: rows per forward pass. A batch that fails is retried one row at a time.
        num_workers: DataLoader worker processes that read and prepare the inputs.
        device: where the model runs; defaults to this process's accelerate device.
        fmri_atlas_image: label NIfTI for rows whose fMRI input is a 4D NIfTI run.
        fmri_atlas: the atlas of fMRI inputs that declare none (a row's own declaration wins).
        rows_per_shard: rows buffered before a shard file is written (the unit of work kept by an interrupted run).
        model_revision: revision the model was loaded at, recorded in every row.
        model_commit: commit hash of the model's Hub snapshot (see `hub_commit_hash`), recorded in every row.
        progress: show a tqdm bar (session-runs/s) per process.
        overwrite: remove the folder's rows, failures and settings first.
        selection_notes: how the rows were chosen (runs, T1), recorded in `runs.jsonl`.

    Returns:
        `EmbeddingRun` of this process. Rows have: `subject`, `session`, `task`, `acquisition`, `direction`, `run`
        (`""` when absent), `embedding` (`hidden_size` floats), `hub_tokens` (when asked), `has_t1`, `has_fmri`,
        `t1`, `fmri`, their `*_sha256` and `*_stat` (`"size:mtime_ns"`), `repetition_time` and where it was read
        (`repetition_time_source`), `atlas` (declared), `t1_alternatives`, `fmri_alternatives`, `model_name`,
        `model_revision`, `model_commit`, `package_version`.

    Raises:
        OutputFolderBusy: another run holds the folder's lock.
        OutputFolderMismatch: the folder holds rows of another model or options.
    """
    # Like Accelerator, run the processes on CPU (gloo) when `accelerate launch --cpu` / ACCELERATE_USE_CPU=1 asks.
    state = PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"))
    processor = processor or BrainHarmonixProcessor.for_config(model.config)
    check_fmri_atlas(fmri_atlas, processor)
    run_id = broadcast_object_list([new_run_id()])[0]
    store = EmbeddingStore(output_dir, rank=state.process_index, run_id=run_id)
    if state.is_main_process:
        store.create()
    state.wait_for_everyone()
    with output_folder_lock(output_dir, state):
        # Hashing the weights and the atlas image, and planning (which may hash inputs), run once, on the main
        # process; the others receive the results.
        settings = _on_main_process(
            state,
            lambda: folder_settings(
                model,
                processor,
                model_revision=model_revision,
                model_commit=model_commit,
                hub_tokens=hub_tokens,
                fmri_atlas=fmri_atlas,
                fmri_atlas_image=fmri_atlas_image,
            ),
        )
        if overwrite and state.is_main_process:
            store.clear()
        state.wait_for_everyone()
        stored = store.read_settings()
        check_settings(output_dir, stored, settings)
        state.wait_for_everyone()
        if stored is None and state.is_main_process:
            store.write_settings(settings)
        started = time.perf_counter()
        files = InputFiles()  # the checksums made while planning serve the embedding of the same files
        plan, files = _on_main_process(
            state, lambda: (plan_run(sessions, store.existing_rows(), fmri_atlas, files), files)
        )
        seconds = {"plan": time.perf_counter() - started}
        state.wait_for_everyone()  # the folder has been read before any writes
        embedded, failed = _embed_rows(
            model,
            plan.pending,
            store,
            state,
            processor=processor,
            files=files,
            provenance={
                "model_name": model.config.name_or_path or None,
                "model_revision": model_revision,
                "model_commit": model_commit,
                "package_version": __version__,
            },
            options={"hub_tokens": hub_tokens, "fmri_atlas": fmri_atlas, "fmri_atlas_image": fmri_atlas_image},
            batch_size=batch_size,
            num_workers=num_workers,
            device=torch.device(device) if device is not None else state.device,
            rows_per_shard=rows_per_shard,
            progress=progress,
        )
        seconds["embed"] = time.perf_counter() - started - seconds["plan"]
        counts = gather_object([(embedded, failed)]) if state.num_processes > 1 else [(embedded, failed)]
        state.wait_for_everyone()
        if state.is_main_process:
            consolidating = time.perf_counter()
            store.consolidate(replaced_keys=plan.changed, refreshed=plan.refreshed)
            seconds["consolidate"] = time.perf_counter() - consolidating
            store.append_run_record(
                {
                    "run": run_id,
                    "processes": state.num_processes,
                    "selection": dict(selection_notes or {"rows": "as given to embed_cohort"}),
                    "rows": len(sessions),
                    "already_done": plan.done,
                    "embedded": sum(count[0] for count in counts),
                    "failed": sum(count[1] for count in counts),
                    "changed": {" ".join(key): reason for key, reason in plan.changed.items()},
                    "seconds": seconds,
                }
            )
        state.wait_for_everyone()
    return EmbeddingRun(Path(output_dir), embedded, plan.done, failed, plan.changed, seconds)


def _on_main_process(state: PartialState, compute):
    """`compute()` run on the main process alone, its result sent to every process."""
    return broadcast_object_list([compute() if state.is_main_process else None])[0]


def check_fmri_atlas(fmri_atlas: str | None, processor: BrainHarmonixProcessor) -> None:
    """Refuse, before any work, a declared default atlas the model cannot take (the other Schaefer-400 order is
    permuted; any other atlas than the model's is refused)."""
    if fmri_atlas is not None:
        extractor = processor.fmri_feature_extractor
        rows_in_model_order(
            None, extractor.atlas, extractor.model_roi_labels(), declared_atlas=fmri_atlas, source="--fmri-atlas"
        )


def _embed_rows(
    model, pending, store, state, *, processor, files, provenance, options, batch_size, num_workers, device,
    rows_per_shard, progress,
) -> tuple[int, int]:  # fmt: skip
    """Embed this process's share of `pending` into shards; returns (embedded, failed)."""
    model = model.to(device).eval()
    embedded = failed = 0
    with state.split_between_processes(pending) as mine:
        loader = DataLoader(
            _SessionDataset(mine, processor, options["fmri_atlas_image"], options["fmri_atlas"], files),
            batch_size=batch_size,
            num_workers=num_workers,
            collate_fn=list,
        )
        rows = []
        bar = tqdm(
            total=len(mine), desc="Embedding", unit="session-run", disable=not progress, position=state.process_index
        )
        try:
            for prepared in loader:
                for item in prepared:
                    if item.failure is not None:
                        store.record_failure(item.session.key, item.failure)
                ready = [item for item in prepared if item.failure is None]
                new_rows, errors = _embed_batch(model, ready, options, device)
                for item, failure in errors:
                    store.record_failure(item.session.key, failure)
                rows.extend(row | provenance for row in new_rows)
                embedded, failed = embedded + len(new_rows), failed + len(prepared) - len(new_rows)
                if len(rows) >= rows_per_shard:
                    store.write_rows(rows)
                    rows = []
                bar.update(len(prepared))
        finally:
            if rows:
                store.write_rows(rows)
            bar.close()
    return embedded, failed


def _embed_batch(model, prepared: list[PreparedSession], options, device) -> tuple[list[dict], list]:
    """Rows of the sessions that went through the model, and `(session, SessionFailure)` of those that did not.
    A failing batch is retried row by row so that only the broken row is lost."""
    if not prepared:
        return [], []
    try:
        return _forward_rows(model, prepared, options, device), []
    except Exception as error:
        if len(prepared) == 1:
            name = model.config.name_or_path or type(model).__name__
            return [], [(prepared[0], SessionFailure(type(error).__name__, str(error), name, "model"))]
    rows, errors = [], []
    for item in prepared:
        item_rows, item_errors = _embed_batch(model, [item], options, device)
        rows += item_rows
        errors += item_errors
    return rows, errors


@torch.no_grad()
def _forward_rows(model, prepared: list[PreparedSession], options, device) -> list[dict]:
    inputs = {
        name: value.to(device=device, dtype=model.dtype if name in FLOAT_INPUTS else value.dtype)
        for name, value in collate_sessions(prepared).items()
    }
    outputs = model(**inputs)
    embeddings = outputs.pooler_output.float().cpu().numpy()
    tokens = outputs.last_hidden_state.float().cpu().numpy() if options["hub_tokens"] else None
    rows = []
    for index, item in enumerate(prepared):
        session = item.session
        row = dict(zip(KEY_COLUMNS, session.key, strict=True)) | {
            "embedding": embeddings[index].tolist(),
            "has_t1": "pixel_values" in item.features,
            "has_fmri": "fmri_values" in item.features,
            "t1": session.t1,
            "fmri": session.fmri,
            "t1_sha256": item.checksums.get("t1"),
            "fmri_sha256": item.checksums.get("fmri"),
            "t1_stat": item.stats.get("t1"),
            "fmri_stat": item.stats.get("fmri"),
            "repetition_time": _repetition_time(item),
            "repetition_time_source": session.repetition_time_source
            or ("header" if "repetition_time" in item.features else None),
            "atlas": (session.atlas or options["fmri_atlas"]) if session.fmri else None,
            "t1_alternatives": list(session.t1_alternatives),
            "fmri_alternatives": list(session.fmri_alternatives),
        }
        if tokens is not None:
            row["hub_tokens"] = tokens[index].tolist()
        rows.append(row)
    return rows


def _repetition_time(item: PreparedSession) -> float | None:
    """The TR as given (sidecar or manifest), else the one the processor read from a NIfTI header."""
    if item.session.repetition_time is not None or "repetition_time" not in item.features:
        return item.session.repetition_time
    return float(item.features["repetition_time"])


def hub_commit_hash(model_name_or_path: str | os.PathLike, revision: str | None = None) -> str | None:
    """The commit of the cached Hub snapshot a model id (at `revision`) loads from; `None` for a local folder or a
    model that is not in the Hugging Face cache."""
    from huggingface_hub import try_to_load_from_cache

    if Path(model_name_or_path).is_dir():
        return None
    try:
        config_file = try_to_load_from_cache(str(model_name_or_path), "config.json", revision=revision)
    except ValueError:  # not a valid repository id
        return None
    if not isinstance(config_file, str):
        return None
    snapshot = Path(config_file).parent
    return snapshot.name if snapshot.parent.name == "snapshots" else None
