# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Per-optimizer-step schedules for pretraining: EMA momentum, warmup + cosine learning rate, cosine weight decay.

EMA momentum relative to the run's length. The target encoder after `T` EMA steps still holds the share
`Π_s m(s)` of its initial weights. The reference momenta (0.996 → 1.0) were set for ~150,000 optimizer steps
(300 epochs), after which nothing of the initial weights is left; over a 150-step run the same schedule leaves
about 74 % of them, so the exported target encoder is mostly its random initialisation. `ema_momentum` therefore
starts lower when the run is too short for `ema_momentum_start` to bring that share down to
`config.ema_initial_weight_share` (1 % by default): the start momentum becomes the largest value that does, and long
runs keep the configured momenta exactly.
"""

import math
from functools import cache

import numpy as np

from ..modeling.configuration_function_jepa import FunctionJEPAConfig

# Bisection steps for the start momentum: the interval [0, start] shrinks to below 1e-12.
_BISECTION_STEPS = 48


def initial_weight_share(start: float, end: float, total_steps: int) -> float:
    """Share of the target encoder's initial weights left after `total_steps` EMA steps with momenta linear from
    `start` (step 0) to `end` (step `total_steps`): `Π_{s < total_steps} m(s)`."""
    momenta = start + (end - start) * np.arange(total_steps) / total_steps
    if (momenta <= 0).any():
        return 0.0
    return float(np.exp(np.log(momenta).sum()))


@cache
def _start_momentum(start: float, end: float, share: float | None, total_steps: int) -> float:
    if share is None or initial_weight_share(start, end, total_steps) <= share:
        return start
    low, high = 0.0, start  # initial_weight_share grows with the start momentum
    for _ in range(_BISECTION_STEPS):
        middle = (low + high) / 2
        low, high = (middle, high) if initial_weight_share(middle, end, total_steps) <= share else (low, middle)
    return low


def ema_start_momentum(total_steps: int, config: FunctionJEPAConfig | None = None) -> float:
    """The momentum of step 0 for a run of `total_steps` optimizer steps: `config.ema_momentum_start`, lowered for
    runs too short to bring the share of initial weights down to `config.ema_initial_weight_share`."""
    config = FunctionJEPAConfig() if config is None else config
    return _start_momentum(
        config.ema_momentum_start, config.ema_momentum_end, config.ema_initial_weight_share, total_steps
    )


def ema_momentum(step: int, total_steps: int, config: FunctionJEPAConfig | None = None) -> float:
    """EMA momentum of the JEPA target encoder at optimizer step `step`: linear from the start momentum (step 0,
    `ema_start_momentum`) to `config.ema_momentum_end` (step `total_steps` and after).

    The config is the one source of the momenta and of the share rule; `None` means a default `FunctionJEPAConfig`
    (0.996 → 1.0, at most 1 % of the initial weights left). Count optimizer steps, not micro-batches: with gradient
    accumulation, advance `step` once per update.
    """
    if total_steps <= 0:
        raise ValueError(f"total_steps must be positive, got {total_steps}.")
    if step < 0:
        raise ValueError(f"step must be non-negative, got {step}.")
    config = FunctionJEPAConfig() if config is None else config
    start, end = ema_start_momentum(total_steps, config), config.ema_momentum_end
    return start + (end - start) * min(step / total_steps, 1.0)


def cosine_schedule(step: int, total_steps: int, start: float, end: float) -> float:
    """Half-cosine from `start` (step 0) to `end` (step `total_steps` and after)."""
    progress = min(max(step, 0) / max(total_steps, 1), 1.0)
    return end + 0.5 * (start - end) * (1.0 + math.cos(math.pi * progress))


def warmup_cosine_schedule(
    step: int, total_steps: int, warmup_steps: int, peak: float, start: float, end: float = 0.0
) -> float:
    """Linear warmup from `start` (step 0) to `peak` (step `warmup_steps`), then a half-cosine from `peak` to `end` at
    `total_steps`. The reference JEPA recipe is start 5e-5, peak 1e-3, end 1e-6; with `warmup_steps = 0` step 0 runs at
    `peak`."""
    if step < warmup_steps:
        return start + (peak - start) * step / warmup_steps
    return cosine_schedule(step - warmup_steps, total_steps - warmup_steps, peak, end)


__all__ = [
    "cosine_schedule",
    "ema_momentum",
    "ema_start_momentum",
    "initial_weight_share",
    "warmup_cosine_schedule",
]
