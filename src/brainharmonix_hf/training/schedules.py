# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Per-optimizer-step schedules for pretraining: EMA momentum, warmup + cosine learning rate, cosine weight decay."""

import math

from ..modeling.configuration_function_jepa import FunctionJEPAConfig


def ema_momentum(step: int, total_steps: int, config: FunctionJEPAConfig | None = None) -> float:
    """EMA momentum of the JEPA target encoder at optimizer step `step`: linear from `config.ema_momentum_start`
    (step 0) to `config.ema_momentum_end` (step `total_steps` and after).

    The config is the one source of the two momenta; `None` means a default `FunctionJEPAConfig` (0.996 → 1.0).
    Count optimizer steps, not micro-batches: with gradient accumulation, advance `step` once per update.
    """
    if total_steps <= 0:
        raise ValueError(f"total_steps must be positive, got {total_steps}.")
    if step < 0:
        raise ValueError(f"step must be non-negative, got {step}.")
    config = FunctionJEPAConfig() if config is None else config
    start, end = config.ema_momentum_start, config.ema_momentum_end
    return start + (end - start) * min(step / total_steps, 1.0)


def cosine_schedule(step: int, total_steps: int, start: float, end: float) -> float:
    """Half-cosine from `start` (step 0) to `end` (step `total_steps` and after)."""
    progress = min(max(step, 0) / max(total_steps, 1), 1.0)
    return end + 0.5 * (start - end) * (1.0 + math.cos(math.pi * progress))


def warmup_cosine_schedule(
    step: int, total_steps: int, warmup_steps: int, peak: float, start: float, end: float = 0.0
) -> float:
    """Linear warmup from `start` (step 0) to `peak` (step `warmup_steps`), then a half-cosine from `peak` to `end` at
    `total_steps`. DESIGN §5's JEPA recipe is start 5e-5, peak 1e-3, end 1e-6; with `warmup_steps = 0` step 0 runs at
    `peak`."""
    if step < warmup_steps:
        return start + (peak - start) * step / warmup_steps
    return cosine_schedule(step - warmup_steps, total_steps - warmup_steps, peak, end)


__all__ = ["cosine_schedule", "ema_momentum", "warmup_cosine_schedule"]
