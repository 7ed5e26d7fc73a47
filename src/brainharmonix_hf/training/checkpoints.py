# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Training checkpoints that are whole or refused: Accelerate `save_state` folders sealed with a file list and hashes.

A checkpoint is written to `<checkpoints>/.step-N.partial`, hashed (`checkpoint.json`: every file's size and SHA-256)
and only then renamed to `<checkpoints>/step-N`, so a run killed while saving leaves a `.partial` folder, never a
`step-N` folder that looks whole. Loading checks the seal first: a missing, truncated or altered file is a
`CheckpointError` naming it, never a silent restart from scratch.
"""

import json
import re
import shutil
from pathlib import Path

from ..file_hashes import sha256_of

SEAL = "checkpoint.json"
CHECKPOINT_NAME = re.compile(r"^step-(\d+)$")


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be resumed from: the message names the folder, the fault and what to do."""


def checkpoint_folder(checkpoints_dir: Path, step: int) -> Path:
    return Path(checkpoints_dir) / f"step-{step:08d}"


def partial_folder(checkpoints_dir: Path, step: int) -> Path:
    return Path(checkpoints_dir) / f".step-{step:08d}.partial"


def seal(partial: Path, final: Path, step: int) -> None:
    """Hash every file of a finished save in `partial`, write the seal, and rename the folder to `final`."""
    files = {
        str(path.relative_to(partial)): {"bytes": path.stat().st_size, "sha256": sha256_of(path)}
        for path in sorted(partial.rglob("*"))
        if path.is_file()
    }
    (partial / SEAL).write_text(json.dumps({"step": step, "files": files}, indent=1))
    if final.exists():
        shutil.rmtree(final)
    partial.rename(final)


def list_checkpoints(checkpoints_dir: Path) -> list[Path]:
    """Sealed-name checkpoint folders (`step-N`), oldest first."""
    folder = Path(checkpoints_dir)
    if not folder.is_dir():
        return []
    found = [path for path in folder.iterdir() if path.is_dir() and CHECKPOINT_NAME.match(path.name)]
    return sorted(found, key=lambda path: int(CHECKPOINT_NAME.match(path.name).group(1)))


def prune(checkpoints_dir: Path, keep: int) -> None:
    """Delete all but the newest `keep` checkpoints (`keep <= 0` keeps all)."""
    if keep > 0:
        for path in list_checkpoints(checkpoints_dir)[:-keep]:
            shutil.rmtree(path)


def abandon_after(checkpoints_dir: Path, step: int) -> list[str]:
    """Move the checkpoints newer than `step` (a run resumed from `step` abandons them) to `<checkpoints>/abandoned/`,
    out of reach of `resolve("latest")` and `prune`; returns their names."""
    later = [
        path for path in list_checkpoints(checkpoints_dir) if int(CHECKPOINT_NAME.match(path.name).group(1)) > step
    ]
    if later:
        (Path(checkpoints_dir) / "abandoned").mkdir(exist_ok=True)
    for path in later:
        target = Path(checkpoints_dir) / "abandoned" / path.name
        if target.exists():
            shutil.rmtree(target)
        path.rename(target)
    return [path.name for path in later]


def verify(path: Path) -> int:
    """Check a checkpoint's seal and every file it lists; return its step. Raises `CheckpointError`."""
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"Checkpoint {path} does not exist or is not a folder.")
    others = ", ".join(p.name for p in list_checkpoints(path.parent) if p != path) or "none"
    advice = f"Resume from another checkpoint (in {path.parent}: {others}) or start a new run in a new output folder."
    seal_path = path / SEAL
    if not seal_path.is_file():
        raise CheckpointError(
            f"Checkpoint {path} is incomplete: it has no {SEAL}, so its save never finished (the run stopped while "
            f"writing it). {advice}"
        )
    try:
        listed = json.loads(seal_path.read_text())["files"]
    except (ValueError, KeyError, TypeError) as error:
        raise CheckpointError(f"Checkpoint {path} has an unreadable {SEAL} ({error}). {advice}") from error
    for name, expected in listed.items():
        file = path / name
        if not file.is_file():
            raise CheckpointError(f"Checkpoint {path} is missing {name}. {advice}")
        size = file.stat().st_size
        if size != expected["bytes"]:
            raise CheckpointError(
                f"Checkpoint {path} is corrupt: {name} has {size} bytes, {expected['bytes']} were written. {advice}"
            )
        if sha256_of(file) != expected["sha256"]:
            raise CheckpointError(
                f"Checkpoint {path} is corrupt: the contents of {name} changed after it was written (SHA-256 "
                f"mismatch). {advice}"
            )
    return int(json.loads(seal_path.read_text())["step"])


def resolve(resume_from: str, checkpoints_dir: Path) -> Path:
    """The folder `resume_from` names: `"latest"` (the newest `step-N` in `checkpoints_dir`) or a path."""
    if resume_from != "latest":
        return Path(resume_from)
    found = list_checkpoints(checkpoints_dir)
    if not found:
        raise CheckpointError(
            f"--resume_from_checkpoint latest: {checkpoints_dir} holds no checkpoint to resume from. Drop the flag to "
            "start a new run."
        )
    return found[-1]


__all__ = ["CheckpointError", "list_checkpoints", "resolve", "verify"]
