# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Pictures (matplotlib, Agg backend): hub-token attention on the cortex, training-loss curves, an embedding scatter,
and the T1 with the box the model sees. Each function returns its matplotlib Figure and saves a PNG when given a path.
The names below are imported on first use (`lazy_exports`): `brainharmonix plot --help` imports this package.
"""

from ..lazy_exports import lazy_exports

EXPORTS = {
    "hub_attention_per_roi": ".hub_attention",
    "model_input_box": ".t1_input",
    "plot_embedding_scatter": ".embedding_scatter",
    "plot_hub_attention": ".hub_attention",
    "plot_loss_curves": ".loss_curves",
    "plot_t1_input": ".t1_input",
    "principal_components": ".embedding_scatter",
    "read_training_log": ".loss_curves",
}
__all__ = sorted(EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
