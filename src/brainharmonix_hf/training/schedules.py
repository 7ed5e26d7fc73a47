# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Per-optimizer-step schedules for pretraining."""


def ema_momentum(step: int, total_steps: int, start: float = 0.996, end: float = 1.0) -> float:
    """EMA momentum of the JEPA target encoder at optimizer step `step`: linear from `start` (step 0) to `end`
    (step `total_steps` and after).

    Count optimizer steps, not micro-batches: with gradient accumulation, advance `step` once per update.
    """
    if total_steps <= 0:
        raise ValueError(f"total_steps must be positive, got {total_steps}.")
    if step < 0:
        raise ValueError(f"step must be non-negative, got {step}.")
    progress = min(step / total_steps, 1.0)
    return start + (end - start) * progress


__all__ = ["ema_momentum"]
