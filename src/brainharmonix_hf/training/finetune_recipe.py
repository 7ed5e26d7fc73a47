# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""The fine-tuning recipe's hyperparameters (a module without heavy imports: the command line reads its defaults)."""

import dataclasses


@dataclasses.dataclass(frozen=True)
class FineTuneRecipe:
    """Fine-tuning hyperparameters; the defaults are the reference recipe of the paper's code."""

    learning_rate: float = 5e-4
    layer_decay: float = 0.65
    weight_decay: float = 0.05
    drop_path_rate: float = 0.1
    label_smoothing: float = 0.1
    num_epochs: float = 50
    warmup_epochs: float = 5
    batch_size: int = 16
    adam_betas: tuple[float, float] = (0.9, 0.999)


DEFAULT_RECIPE = FineTuneRecipe()

__all__ = ["DEFAULT_RECIPE", "FineTuneRecipe"]
