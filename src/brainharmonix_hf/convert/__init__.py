# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Reference-checkpoint (`.pth`) converters: the BrainHarmonix release -> Hugging Face folders.

One module per stage (`structure`, `function`, `harmonizer`), the release as a whole (`composite`), the strict
key-mapping helper they share (`key_mapping`), safe reading of `.pth` files (`checkpoint_io`), the reference ROI-table
CSVs (`reference_tables`) and the conversion record (`provenance`). CLI: `brainharmonix convert`. The names below are
imported on first use (`lazy_exports`): `brainharmonix convert --help` imports this package.
"""

from ..lazy_exports import lazy_exports

EXPORTS = {
    "ConversionError": ".key_mapping",
    "ConversionPlan": ".key_mapping",
    "DamagedCheckpointError": ".checkpoint_io",
    "UntrustedCheckpointError": ".checkpoint_io",
    "convert_reference_release": ".composite",
    "load_checkpoint": ".checkpoint_io",
}
__all__ = sorted(EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
