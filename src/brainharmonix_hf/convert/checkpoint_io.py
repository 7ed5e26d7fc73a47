# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Reading reference `.pth` files without running code from them, and their fingerprints.

A `.pth` file is a pickle: loading it in full can run any code the file names. Files are read with
`torch.load(weights_only=True)`, which rebuilds only tensors and plain containers, plus a short allow-list of the
extra types the reference files hold: `argparse.Namespace` (the training arguments saved beside the weights) and
numpy scalars and dtypes (numbers in those arguments and in the training state). A file that needs anything else is
refused with a message naming the types, unless the caller passes `trust_pickle=True` (CLI `--trust-pickle`).
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
    try:
        with torch.serialization.safe_globals(ALLOWED_GLOBALS):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
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
