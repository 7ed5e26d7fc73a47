# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""One spelling of dtypes across the package: every command and function that takes a dtype by name accepts the
torch name and its usual short forms (`bfloat16` / `bf16`, `float16` / `fp16` / `half`, `float32` / `fp32` / `float`)
and works with the torch name. Imports nothing heavy, so the command line can parse options without torch."""

import argparse

DTYPE_SPELLINGS = {
    "float32": ("float32", "fp32", "float"),
    "bfloat16": ("bfloat16", "bf16"),
    "float16": ("float16", "fp16", "half"),
}
_CANONICAL = {spelling: name for name, spellings in DTYPE_SPELLINGS.items() for spelling in spellings}


def canonical_dtype_name(name: str) -> str:
    """The torch name of a dtype spelling (`"bf16"` -> `"bfloat16"`); a `ValueError` lists the spellings otherwise."""
    key = str(name).strip().lower().removeprefix("torch.")
    if key not in _CANONICAL:
        known = "; ".join(" / ".join(spellings) for spellings in DTYPE_SPELLINGS.values())
        raise ValueError(f"Unknown dtype {name!r}: use one of {known}.")
    return _CANONICAL[key]


def dtype_argument(name: str) -> str:
    """`type=` of an argparse dtype option: the torch name, or a usage error listing the spellings."""
    try:
        return canonical_dtype_name(name)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


__all__ = ["DTYPE_SPELLINGS", "canonical_dtype_name", "dtype_argument"]
