# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""One run at a time per output folder: a file lock (`filelock`) held by the main process of the run that writes.

The processes of one distributed run share the lock (the main process takes it and tells the others); a second run
started meanwhile is refused at once, with the holder's process, machine and start time in the message.
"""

import json
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path

from accelerate import PartialState
from accelerate.utils import broadcast_object_list
from filelock import FileLock, Timeout

LOCK_FILE = ".embed.lock"
HOLDER_FILE = ".embed.lock.holder"


class OutputFolderBusy(FileExistsError):
    """Another run holds the output folder's lock."""


@contextmanager
def output_folder_lock(output_dir: str | os.PathLike, state: PartialState | None = None):
    """Hold the folder's lock for the block (re-entrant in one process). Collective: call from every process.

    Raises:
        OutputFolderBusy: another run holds it.
    """
    state = state or PartialState()
    folder = Path(output_dir)
    lock = FileLock(folder / LOCK_FILE, is_singleton=True)
    outcome = [None]
    if state.is_main_process:
        try:
            lock.acquire(blocking=False)
            if lock.lock_counter == 1:
                holder = {
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                }
                (folder / HOLDER_FILE).write_text(json.dumps(holder), encoding="utf-8")
        except Timeout:
            outcome = [_holder(folder)]
    outcome = broadcast_object_list(outcome)
    if outcome[0] is not None:
        raise OutputFolderBusy(
            f"{folder} is in use by another `brainharmonix embed` run ({outcome[0]}; lock {folder / LOCK_FILE}). "
            "Wait for it to finish, or write to another --output folder."
        )
    try:
        yield
    finally:
        if state.is_main_process:
            if lock.lock_counter == 1:
                (folder / HOLDER_FILE).unlink(missing_ok=True)
            lock.release()


def _holder(folder: Path) -> str:
    try:
        holder = json.loads((folder / HOLDER_FILE).read_text(encoding="utf-8"))
        return f"process {holder['pid']} on {holder['host']}, started {holder['started']}"
    except (OSError, ValueError, KeyError):
        return "holder unknown"
