# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Repetition time (TR) checks: plausible values, and reconciling an explicit TR with the one in a file header."""

import math
import warnings

# Outside these bounds a TR (in seconds) is almost surely a unit mistake (milliseconds) or a broken header.
MIN_REPETITION_TIME = 0.1
MAX_REPETITION_TIME = 10.0
# Header and explicit TRs closer than this (relative) are the same TR written with different rounding.
AGREEMENT_TOLERANCE = 1e-3


def check_repetition_time(value, source: str = "repetition_time") -> float:
    """Return `value` as a float in seconds, or raise naming `source` if it is missing, not finite, or implausible."""
    if value is None:
        raise ValueError(
            f"{source} is missing: the fMRI repetition time decides the patch length. Pass `repetition_time=` in "
            "seconds (e.g. repetition_time=0.8), one value per series or one for all."
        )
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
        warnings.warn(
            f"repetition_time={explicit:g} s disagrees with the header TR of {name} ({header:g} s); using "
            f"{explicit:g} s. Drop `repetition_time=` to use the header, or fix the header if it is wrong.",
            UserWarning,
            stacklevel=2,
        )
    return explicit
