# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Embed a cohort: one row per subject-session with the pooled BrainHarmonix embedding (and optionally hub tokens).

Runs in one process, or in several under `accelerate launch` / `torchrun`: the pending sessions are split between the
processes (`PartialState.split_between_processes`), each writes its own shard files, and the main process merges them
once all have finished. Resumable and tolerant of broken subjects (see `embedding_store`).
"""

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import PartialState
from accelerate.utils import parse_flag_from_env
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .. import __version__
from ..modeling.modeling_brainharmonix import BrainHarmonixModel
from ..processing.processing_brainharmonix import BrainHarmonixProcessor
from .embedding_store import EmbeddingStore
from .session_features import PreparedSession, collate_sessions, prepare_session
from .session_inputs import SessionInputs

FLOAT_INPUTS = ("pixel_values", "fmri_values")


@dataclass(frozen=True)
class EmbeddingRun:
    """What one call of `embed_cohort` did in this process (each process of a distributed run counts its own part).

    Attributes:
        output_dir: the output folder.
        embedded: sessions embedded by this process.
        skipped: sessions already done before the run started.
        failed: sessions of this process that failed (listed in `failures.jsonl`).
    """

    output_dir: Path
    embedded: int
    skipped: int
    failed: int


class _SessionDataset(torch.utils.data.Dataset):
    def __init__(self, sessions: Sequence[SessionInputs], processor: BrainHarmonixProcessor, fmri_atlas_image):
        self.sessions, self.processor, self.fmri_atlas_image = list(sessions), processor, fmri_atlas_image

    def __len__(self) -> int:
        return len(self.sessions)

    def __getitem__(self, index: int) -> PreparedSession:
        return prepare_session(self.processor, self.sessions[index], self.fmri_atlas_image)


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
    rows_per_shard: int = 16,
    model_revision: str | None = None,
    model_commit: str | None = None,
    progress: bool = True,
) -> EmbeddingRun:
    """Embed every session not yet in `output_dir` and write the rows (see `embedding_store` for the folder layout).

    Args:
        model: a `BrainHarmonixModel` in the dtype to run (float32 or bfloat16); it is put in eval mode.
        sessions: the sessions to embed (`find_bids_sessions` or `sessions_from_manifest`).
        output_dir: output folder; rows already there are skipped, failures are retried.
        processor: prepares the inputs; defaults to `BrainHarmonixProcessor.for_config(model.config)`.
        hub_tokens: also store the `(1 + num_hub_tokens, hidden_size)` `[CLS, hub tokens]` of each session.
        batch_size: sessions per forward pass. A batch that fails is retried one session at a time.
        num_workers: DataLoader worker processes that read and prepare the inputs.
        device: where the model runs; defaults to this process's accelerate device.
        fmri_atlas_image: label NIfTI for sessions whose fMRI input is a 4D NIfTI run.
        rows_per_shard: rows buffered before a shard file is written (the unit of work kept by an interrupted run).
        model_revision: revision the model was loaded at, recorded in every row.
        model_commit: commit hash of the model's Hub snapshot (see `hub_commit_hash`), recorded in every row.
        progress: show a tqdm bar (sessions/s) per process.

    Returns:
        `EmbeddingRun` counts of this process. Rows have: `subject`, `session` (`""` when none), `embedding`
        (`hidden_size` floats), `hub_tokens` (when asked), `has_t1`, `has_fmri`, `t1`, `fmri`, `t1_sha256`,
        `fmri_sha256`, `repetition_time`, `atlas`, `model_name`, `model_revision`, `model_commit`, `package_version`.
    """
    # Like Accelerator, run the processes on CPU (gloo) when `accelerate launch --cpu` / ACCELERATE_USE_CPU=1 asks.
    state = PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"))
    store = EmbeddingStore(output_dir, rank=state.process_index)
    done = store.done_keys()
    pending = sorted((s for s in sessions if s.key not in done), key=lambda s: s.key)
    state.wait_for_everyone()  # every process reads the same done set before any writes
    processor = processor or BrainHarmonixProcessor.for_config(model.config)
    device = torch.device(device) if device is not None else state.device
    model = model.to(device).eval()
    provenance = {
        "model_name": model.config.name_or_path or None,
        "model_revision": model_revision,
        "model_commit": model_commit,
        "package_version": __version__,
    }
    embedded = failed = 0
    with state.split_between_processes(pending) as mine:
        loader = DataLoader(
            _SessionDataset(mine, processor, fmri_atlas_image),
            batch_size=batch_size,
            num_workers=num_workers,
            collate_fn=list,
        )
        rows = []
        bar = tqdm(total=len(mine), unit="subjects", disable=not progress, position=state.process_index)
        try:
            for prepared in loader:
                for item in prepared:
                    if item.error is not None:
                        store.record_failure(*item.session.key, *item.error)
                ready = [item for item in prepared if item.error is None]
                new_rows, errors = _embed_batch(model, ready, hub_tokens, device)
                for item, (error_type, message) in errors:
                    store.record_failure(*item.session.key, error_type, message)
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
    state.wait_for_everyone()
    if state.is_main_process:
        store.consolidate()
    state.wait_for_everyone()
    return EmbeddingRun(Path(output_dir), embedded, len(sessions) - len(pending), failed)


def _embed_batch(model, prepared: list[PreparedSession], hub_tokens: bool, device) -> tuple[list[dict], list]:
    """Rows of the sessions that went through the model, and `(session, (error type, message))` of those that did not.
    A failing batch is retried session by session so that only the broken session is lost."""
    if not prepared:
        return [], []
    try:
        return _forward_rows(model, prepared, hub_tokens, device), []
    except Exception as error:
        if len(prepared) == 1:
            return [], [(prepared[0], (type(error).__name__, str(error)))]
    rows, errors = [], []
    for item in prepared:
        item_rows, item_errors = _embed_batch(model, [item], hub_tokens, device)
        rows += item_rows
        errors += item_errors
    return rows, errors


@torch.no_grad()
def _forward_rows(model, prepared: list[PreparedSession], hub_tokens: bool, device) -> list[dict]:
    inputs = {
        name: value.to(device=device, dtype=model.dtype if name in FLOAT_INPUTS else value.dtype)
        for name, value in collate_sessions(prepared).items()
    }
    outputs = model(**inputs)
    embeddings = outputs.pooler_output.float().cpu().numpy()
    tokens = outputs.last_hidden_state.float().cpu().numpy() if hub_tokens else None
    rows = []
    for index, item in enumerate(prepared):
        session = item.session
        row = {
            "subject": session.subject,
            "session": session.session or "",
            "embedding": embeddings[index].tolist(),
            "has_t1": "pixel_values" in item.features,
            "has_fmri": "fmri_values" in item.features,
            "t1": session.t1,
            "fmri": session.fmri,
            "t1_sha256": item.checksums.get("t1"),
            "fmri_sha256": item.checksums.get("fmri"),
            "repetition_time": _repetition_time(item),
            "atlas": session.atlas,
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
