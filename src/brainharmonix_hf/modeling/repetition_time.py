# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""The repetition-time (TR) rule, in one place: plausible TRs, frames per time patch, valid time patches.

A token covers a fixed stretch of time, the window τ (35.28 s by default), so a series at TR `t` seconds has
`p = round(τ / t)` frames per time patch (half to even, like Python's `round`) and fills
`n = min(ceil(num_frames / p), W)` of the `W` time patches.

The patch length is computed from a TR read to `TR_SIGNIFICANT_DIGITS` significant digits, in float64 Python: a
float32 copy of a TR (a tensor in a batch) and its float64 original then give the same patch length, even when
`τ / t` falls on a half (TR 2.016 s: 17.5 → 18). The feature extractor computes `patch_size` with this rule once and
emits it; the model uses the emitted value and applies the same rule only when it is not given.
"""

import math

import numpy as np
import torch

from .user_warnings import warn_at_caller

# Outside these bounds a TR (in seconds) is almost surely a unit mistake (milliseconds) or a broken header.
MIN_REPETITION_TIME = 0.1
MAX_REPETITION_TIME = 10.0
# Header and explicit TRs closer than this (relative) are the same TR written with different rounding.
AGREEMENT_TOLERANCE = 1e-3
# Digits of a TR the patch length depends on: float32 holds 7, so a float32 copy of a TR reads back the same.
TR_SIGNIFICANT_DIGITS = 6
DEFAULT_WINDOW_SECONDS = 35.28


def check_repetition_time(value, source: str = "repetition_time") -> float:
    """Return `value` as a float in seconds, or raise naming `source` if it is missing, not finite, or implausible."""
    if value is None:
        raise ValueError(
            f"{source} is missing: the fMRI repetition time decides the patch length. Pass `repetition_time=` in "
            "seconds (e.g. repetition_time=0.8), one value per series or one for all."
        )
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{source} is {value!r}, a boolean; pass the repetition time in seconds (e.g. 2.0).")
    try:
        value = float(value)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{source} must be a number of seconds, got {value!r}.") from error
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{source} is {value}, but a repetition time must be a positive number of seconds.")
    if not MIN_REPETITION_TIME <= value <= MAX_REPETITION_TIME:
        hint = f" It looks like milliseconds: pass {value / 1000:g} (seconds)." if value > MAX_REPETITION_TIME else ""
        raise ValueError(
            f"{source} is {value:g} s, outside the plausible range [{MIN_REPETITION_TIME}, {MAX_REPETITION_TIME}] s."
            f"{hint} Pass the TR in seconds with `repetition_time=`."
        )
    return value


def resolve_repetition_time(explicit, header, name: str = "the image") -> float:
    """The TR to use for one image: the explicit value wins over the header's; a disagreement warns.

    Args:
        explicit: the TR the caller passed (seconds), or `None`.
        header: the TR read from the image header (seconds), or `None` when the header gives none.
        name: how to refer to the image in messages.
    """
    if explicit is None:
        if header is None:
            raise ValueError(
                f"The header of {name} gives no repetition time. Pass `repetition_time=` in seconds (e.g. 2.0)."
            )
        return check_repetition_time(header, source=f"The header TR of {name}")
    explicit = check_repetition_time(explicit)
    if header is not None and not math.isclose(explicit, header, rel_tol=AGREEMENT_TOLERANCE):
        warn_at_caller(
            f"repetition_time={explicit:g} s disagrees with the header TR of {name} ({header:g} s); using "
            f"{explicit:g} s. Drop `repetition_time=` to use the header, or fix the header if it is wrong."
        )
    return explicit


def patch_length_for_tr(repetition_time: float, window_seconds: float = DEFAULT_WINDOW_SECONDS) -> int:
    """Frames per time patch, `round(window_seconds / TR)`, with TR read to `TR_SIGNIFICANT_DIGITS` digits.

    Args:
        repetition_time: TR in seconds (a Python or numpy number, or a one-element tensor).
        window_seconds: seconds of signal per token (τ).

    Returns:
        The patch length, e.g. TR 0.735 → 48, 2.0 → 18, 2.016 → 18, 3.0 → 12.

    Raises:
        ValueError: the TR is not a positive number, or so long that a patch would hold no frame.
    """
    repetition_time = float(repetition_time)
    if not math.isfinite(repetition_time) or repetition_time <= 0:
        raise ValueError(f"repetition_time must be positive seconds, got {repetition_time}.")
    length = round(window_seconds / float(f"{repetition_time:.{TR_SIGNIFICANT_DIGITS}g}"))
    if length < 1:
        raise ValueError(
            f"repetition_time {repetition_time:g} s is longer than twice the {window_seconds} s token window, so a "
            "token would hold no frame: check that TR is in seconds."
        )
    return length


def valid_time_patch_count(num_frames: int, patch_length: int, num_time_patches: int) -> int:
    """Time patches holding real frames of one series, `ceil(num_frames / patch_length)` clipped to
    `num_time_patches`. The last valid patch may be partly zero-padded; a series shorter than one patch still fills
    one patch."""
    if num_frames < 1:
        raise ValueError("Every fMRI series needs at least one real frame; drop empty series from the batch.")
    return min(-(-num_frames // patch_length), num_time_patches)


def valid_time_patches(num_frames: torch.Tensor, patch_length: torch.Tensor, num_time_patches: int) -> torch.Tensor:
    """`valid_time_patch_count` of every series of a batch.

    Args:
        num_frames: `(batch,)` real frames per series.
        patch_length: `(batch,)` frames per token.
        num_time_patches: time patches in the token grid (W).

    Returns:
        `(batch,)` long, on the device of `num_frames`.
    """
    counts = [
        valid_time_patch_count(int(frames), int(length), num_time_patches)
        for frames, length in zip(num_frames.reshape(-1).tolist(), patch_length.reshape(-1).tolist(), strict=True)
    ]
    return torch.tensor(counts, dtype=torch.long, device=num_frames.device)


__all__ = [
    "MAX_REPETITION_TIME",
    "MIN_REPETITION_TIME",
    "check_repetition_time",
    "patch_length_for_tr",
    "resolve_repetition_time",
    "valid_time_patch_count",
    "valid_time_patches",
]
