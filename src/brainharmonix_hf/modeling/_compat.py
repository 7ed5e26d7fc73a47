# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""The only module that imports private transformers internals.

transformers moves its decorators and helpers between minor releases (5.0 -> 5.23 renamed several of them), so every
private import lives here: a future rename is a one-file fix. The rest of the package imports from this module.
"""

from transformers import initialization as init
from transformers.masking_utils import (
    ALL_MASK_ATTENTION_FUNCTIONS,
    create_bidirectional_mask,
    flash_attention_mask,
    packed_sequence_mask_function,
)
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.processing_utils import Unpack
from transformers.utils import TransformersKwargs
from transformers.utils.generic import can_return_tuple, merge_with_config_defaults
from transformers.utils.output_capturing import OutputRecorder, capture_outputs

__all__ = [
    "ALL_ATTENTION_FUNCTIONS",
    "ALL_MASK_ATTENTION_FUNCTIONS",
    "GradientCheckpointingLayer",
    "OutputRecorder",
    "TransformersKwargs",
    "Unpack",
    "can_return_tuple",
    "capture_outputs",
    "create_bidirectional_mask",
    "flash_attention_mask",
    "init",
    "merge_with_config_defaults",
    "packed_sequence_mask_function",
]
