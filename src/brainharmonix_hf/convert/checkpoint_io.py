# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Reading reference `.pth` files without running code from them, and their fingerprints.

A `.pth` file is a pickle: loading it in full can run any code the file names. Files are read with
`torch.load(weights_only=True)`, which rebuilds only tensors and plain containers, plus a short allow-list of the
extra types the reference files hold: `argparse.Namespace` (the training arguments saved beside the weights) and
numpy scalars and dtypes (numbers in those arguments and in the training state). A file that needs anything else is
refused with a message naming the types, unless the caller passes `trust_pickle=True` (CLI `--trust-pickle`).
A file that is not a PyTorch checkpoint at all (empty, cut short, a Git LFS pointer, a saved web page, text) is named
as such, never sent toward full unpickling.
"""

import argparse
import pickle
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from .key_mapping import ConversionError


class UntrustedCheckpointError(ConversionError):
    """A checkpoint needs types outside the allow-list to be unpickled."""


class DamagedCheckpointError(ConversionError):
    """A file that is not a whole PyTorch checkpoint: empty, truncated, or another kind of file."""


# What `torch.save` files start with: a zip archive (the default since torch 1.6) or a pickle (the legacy format).
ZIP_MAGIC = b"PK\x03\x04"
PICKLE_PROTOCOL_OPCODE = 0x80
# Where to get the file again, for every damaged or wrong file.
REDOWNLOAD_HINT = "Download the file again (the reference release's Google Drive folder) and check its size."


def _numpy_scalar_globals() -> list:
    """numpy's scalar reconstructor under its numpy 2 and numpy 1 paths, `numpy.dtype` and the scalar dtype classes."""
    scalar = np._core.multiarray.scalar
    dtype_classes = [type(np.dtype(name)) for name in ("float64", "float32", "float16", "int64", "int32", "bool")]
    return [scalar, (scalar, "numpy.core.multiarray.scalar"), np.dtype, *dtype_classes]


ALLOWED_GLOBALS = [argparse.Namespace, *_numpy_scalar_globals()]


def _allowed_names() -> set[str]:
    names = set()
    for entry in ALLOWED_GLOBALS:
        if isinstance(entry, tuple):
            names.add(entry[1])
        else:
            names.add(f"{entry.__module__}.{entry.__qualname__}")
    return names


def load_checkpoint(path: str | Path, trust_pickle: bool = False) -> object:
    """Load a reference `.pth` file on CPU without unpickling arbitrary objects.

    Args:
        path: the file.
        trust_pickle: load with full unpickling when the allow-list is not enough. Only for files from a source you
            trust: unpickling can run code.

    Raises:
        FileNotFoundError: no file at `path`.
        UntrustedCheckpointError: the file needs types outside the allow-list and `trust_pickle` is off.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint file at {path}. Check the path (relative paths start at {Path.cwd()}).")
    check_checkpoint_format(path)
    try:
        with torch.serialization.safe_globals(ALLOWED_GLOBALS):
            return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError) as error:
        raise _damaged(path, error) from error
    except pickle.UnpicklingError as error:
        if _is_truncation(error):
            raise _damaged(path, error) from error
        if trust_pickle:
            return torch.load(path, map_location="cpu", weights_only=False)
        try:
            needed = sorted(set(torch.serialization.get_unsafe_globals_in_checkpoint(path)) - _allowed_names())
        except Exception:  # the listing is only for the message; the refusal stands without it
            needed = []
        what = f"these types: {', '.join(needed)}" if needed else f"more than safe loading allows ({error})"
        raise UntrustedCheckpointError(
            f"{path} was refused: unpickling it needs {what}. Safe loading allows only tensors, plain containers, "
            "argparse.Namespace and numpy scalars, because unpickling other objects can run code from the file. If "
            "you trust where the file comes from, pass --trust-pickle (trust_pickle=True) to load it in full."
        ) from error


def check_checkpoint_format(path: Path) -> None:
    """Refuse a file that cannot be a `torch.save` checkpoint (neither a zip archive nor a pickle), naming what it
    looks like: empty, a Git LFS pointer, a web page (e.g. a download-warning page saved instead of the file), text."""
    size = path.stat().st_size
    if size == 0:
        raise DamagedCheckpointError(
            f"{path} is empty (0 bytes): the download or copy did not finish. {REDOWNLOAD_HINT}"
        )
    with open(path, "rb") as handle:
        head = handle.read(256)
    if head.startswith(ZIP_MAGIC) or head[0] == PICKLE_PROTOCOL_OPCODE:
        return
    text = head.decode("utf-8", errors="replace")
    lowered = text.lstrip().lower()
    if lowered.startswith("version https://git-lfs"):
        kind = "a Git LFS pointer (the file itself was never fetched: run `git lfs pull`, or download it directly)"
    elif lowered.startswith(("<!doctype html", "<html")):
        kind = "a web page (often a download-warning page saved in place of the file)"
    elif "\ufffd" not in text and all(character.isprintable() or character.isspace() for character in text):
        kind = "a text file"
    else:
        kind = "a file of another format"
    raise DamagedCheckpointError(
        f"{path} ({size} bytes) is not a PyTorch checkpoint: it is {kind}, starting {text[:40]!r}. A `.pth` file "
        f"from torch.save starts with a zip or pickle header. {REDOWNLOAD_HINT}"
    )


def _is_truncation(error: Exception) -> bool:
    return any(word in str(error).lower() for word in ("truncated", "eof", "ran out of input"))


def _damaged(path: Path, error: Exception) -> DamagedCheckpointError:
    return DamagedCheckpointError(
        f"{path} ({path.stat().st_size} bytes) is truncated or damaged: torch could not read it ({error}). "
        f"{REDOWNLOAD_HINT}"
    )


def extract_state_dict(checkpoint: object, path: str | Path) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The weights of a loaded reference checkpoint: the `"model"` entry when there is one, else the whole mapping.

    Returns:
        the state dict and the names of the other top-level entries (training state: optimizer, epoch, args, ...).

    Raises:
        ConversionError: the file holds no mapping of names to tensors.
    """
    if not isinstance(checkpoint, Mapping):
        raise ConversionError(f"{path} holds a {type(checkpoint).__name__}, not a state dict (a mapping of tensors).")
    if isinstance(checkpoint.get("model"), Mapping):
        state, others = checkpoint["model"], sorted(str(key) for key in checkpoint if key != "model")
    else:
        state, others = checkpoint, []
    not_tensors = [str(key) for key, value in state.items() if not isinstance(value, torch.Tensor)]
    if not_tensors:
        raise ConversionError(
            f"{path} is not a state dict: entries {not_tensors[:10]} are not tensors. Pass the reference model.pth "
            "files (weights in a flat mapping or under 'model')."
        )
    return {str(key): value for key, value in state.items()}, others
