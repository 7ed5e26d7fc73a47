# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Reference-checkpoint (`.pth`) converters: the BrainHarmonix release -> Hugging Face folders.

One module per stage (`structure`, `function`, `harmonizer`), the release as a whole (`composite`), the strict
key-mapping helper they share (`key_mapping`), safe reading of `.pth` files (`checkpoint_io`), the reference ROI-table
CSVs (`reference_tables`) and the conversion record (`provenance`). CLI: `brainharmonix convert`.
"""

from .checkpoint_io import DamagedCheckpointError, UntrustedCheckpointError, load_checkpoint
from .composite import convert_reference_release
from .key_mapping import ConversionError, ConversionPlan

__all__ = [
    "ConversionError",
    "ConversionPlan",
    "DamagedCheckpointError",
    "UntrustedCheckpointError",
    "convert_reference_release",
    "load_checkpoint",
]
