# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Per-optimizer-step schedules for pretraining."""

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


__all__ = ["ema_momentum"]
