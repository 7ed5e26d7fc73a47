# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Pictures (matplotlib, Agg backend): hub-token attention on the cortex, training-loss curves, an embedding scatter,
and the T1 with the box the model sees. Each function returns its matplotlib Figure and saves a PNG when given a path.
"""

from .embedding_scatter import plot_embedding_scatter, principal_components
from .hub_attention import hub_attention_per_roi, plot_hub_attention
from .loss_curves import plot_loss_curves, read_training_log
from .t1_input import model_input_box, plot_t1_input

__all__ = [
    "hub_attention_per_roi",
    "model_input_box",
    "plot_embedding_scatter",
    "plot_hub_attention",
    "plot_loss_curves",
    "plot_t1_input",
    "principal_components",
    "read_training_log",
]
