# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""BrainHarmonix for Hugging Face: T1 MRI and fMRI of any TR to 1D hub tokens.

Importing the package registers every config, model and processor with the transformers Auto classes, and the shipped
ROI position tables as the starting tables of fresh FunctionJEPA models (`auto_classes.register_auto_classes`). The
public names below are imported on first use. In the `brainharmonix` console command, registration waits until a
command runs, so that `brainharmonix --help` and usage errors do not wait for torch and transformers to import.
"""

import sys
from pathlib import Path

from .lazy_exports import lazy_exports

__version__ = "0.1.0"

# Public name -> the module (relative to this package) that defines it.
EXPORTS = {
    "AUTO_CLASSES": ".auto_classes",
    "BrainHarmonixConfig": ".modeling.configuration_brainharmonix",
    "BrainHarmonixForSequenceClassification": ".modeling.modeling_brainharmonix",
    "BrainHarmonixHubMixin": ".modeling.hub_mixin",
    "BrainHarmonixModel": ".modeling.modeling_brainharmonix",
    "BrainHarmonixPreTrainedModel": ".modeling.modeling_brainharmonix",
    "BrainHarmonixProcessor": ".processing.processing_brainharmonix",
    "FMRIFeatureExtractor": ".processing.feature_extraction_fmri",
    "FMRISampleTransform": ".processing.sample_transform",
    "FunctionJEPAConfig": ".modeling.configuration_function_jepa",
    "FunctionJEPAForPreTraining": ".modeling.modeling_function_jepa",
    "FunctionJEPAModel": ".modeling.modeling_function_jepa",
    "FunctionJEPAPreTrainedModel": ".modeling.modeling_function_jepa",
    "HarmonizerConfig": ".modeling.configuration_harmonizer",
    "HarmonizerForLinearProbing": ".modeling.modeling_harmonizer",
    "HarmonizerForPreTraining": ".modeling.modeling_harmonizer",
    "HarmonizerForSequenceClassification": ".modeling.modeling_harmonizer",
    "HarmonizerModel": ".modeling.modeling_harmonizer",
    "HarmonizerPreTrainedModel": ".modeling.modeling_harmonizer",
    "JEPAMasks": ".training.masking",
    "ManifestRowCollator": ".training.finetune",
    "RoiTables": ".roi_positions.tables",
    "SpatiotemporalMaskSampler": ".training.masking",
    "StructureMAEConfig": ".modeling.configuration_structure_mae",
    "StructureMAEForPreTraining": ".modeling.modeling_structure_mae",
    "StructureMAEModel": ".modeling.modeling_structure_mae",
    "StructureMAEPreTrainedModel": ".modeling.modeling_structure_mae",
    "T1VolumeFeatureExtractor": ".processing.feature_extraction_t1",
    "apply_lora": ".training.finetune",
    "batch_valid_tokens": ".modeling.modeling_function_jepa",
    "build_model_card": ".hub_cards.builder",
    "compute_geometric_harmonics": ".roi_positions.harmonics",
    "compute_gradients": ".roi_positions.gradients",
    "ema_momentum": ".training.schedules",
    "load_roi_tables": ".roi_positions.tables",
    "register_auto_classes": ".auto_classes",
    "register_shipped_tables": ".roi_positions.tables",
    "split_valid_tokens": ".modeling.modeling_function_jepa",
    "write_model_card": ".hub_cards.builder",
    "write_remote_code": ".remote_code",
}
__all__ = sorted(EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)

# The console command's own file (no `.py`: a user's script `brainharmonix.py` registers as usual): it registers when a
# command runs (`cli.main`), not at import.
CONSOLE_COMMAND_FILES = ("brainharmonix", "brainharmonix.exe")
if Path(getattr(sys, "argv", [""])[0] or "").name not in CONSOLE_COMMAND_FILES:
    __getattr__("register_auto_classes")()
