# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""The package's registrations with transformers, in one place: every config, model and processor with the Auto classes
(the `AUTO_CLASSES` table, which `remote_code` also writes into saved folders' `auto_map`), the save hooks (model card,
code that loads a folder without the package), and the shipped ROI tables as the starting tables of fresh
FunctionJEPA models.

`import brainharmonix_hf` runs `register_auto_classes()`; the `brainharmonix` console command runs it when a command
starts (so that `brainharmonix --help` does not import torch).
"""

from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModel,
    AutoModelForPreTraining,
    AutoModelForSequenceClassification,
    AutoProcessor,
)

from .hub_cards.builder import write_model_card
from .modeling.configuration_brainharmonix import BrainHarmonixConfig
from .modeling.configuration_function_jepa import FunctionJEPAConfig
from .modeling.configuration_harmonizer import HarmonizerConfig
from .modeling.configuration_structure_mae import StructureMAEConfig
from .modeling.hub_mixin import BrainHarmonixHubMixin
from .modeling.modeling_brainharmonix import BrainHarmonixForSequenceClassification, BrainHarmonixModel
from .modeling.modeling_function_jepa import FunctionJEPAForPreTraining, FunctionJEPAModel
from .modeling.modeling_harmonizer import (
    HarmonizerForPreTraining,
    HarmonizerForSequenceClassification,
    HarmonizerModel,
)
from .modeling.modeling_structure_mae import StructureMAEForPreTraining, StructureMAEModel
from .processing.feature_extraction_fmri import FMRIFeatureExtractor
from .processing.feature_extraction_t1 import T1VolumeFeatureExtractor
from .processing.processing_brainharmonix import BrainHarmonixProcessor
from .remote_code import write_remote_code
from .roi_positions.tables import register_shipped_tables

# Every Auto class each config is registered with; `remote_code` writes the same table into saved folders' auto_map.
AUTO_CLASSES = {
    StructureMAEConfig: {
        AutoModel: StructureMAEModel,
        AutoModelForPreTraining: StructureMAEForPreTraining,
        AutoFeatureExtractor: T1VolumeFeatureExtractor,
    },
    FunctionJEPAConfig: {
        AutoModel: FunctionJEPAModel,
        AutoModelForPreTraining: FunctionJEPAForPreTraining,
        AutoFeatureExtractor: FMRIFeatureExtractor,
    },
    HarmonizerConfig: {
        AutoModel: HarmonizerModel,
        AutoModelForPreTraining: HarmonizerForPreTraining,
        AutoModelForSequenceClassification: HarmonizerForSequenceClassification,
    },
    BrainHarmonixConfig: {
        AutoModel: BrainHarmonixModel,
        AutoModelForSequenceClassification: BrainHarmonixForSequenceClassification,
        AutoProcessor: BrainHarmonixProcessor,
    },
}
_registered = False


def register_auto_classes() -> None:
    """Register the package with transformers (see the module docstring); later calls do nothing."""
    global _registered
    if _registered:
        return
    register_shipped_tables()
    for config_class, targets in AUTO_CLASSES.items():
        AutoConfig.register(config_class.model_type, config_class)
        for auto_class, target in targets.items():
            auto_class.register(config_class, target)
    # Saving any model or processor also writes its model card and the code that loads it without the package.
    BrainHarmonixHubMixin.register_save_hook(write_model_card)
    BrainHarmonixHubMixin.register_save_hook(write_remote_code)
    _registered = True


__all__ = ["AUTO_CLASSES", "register_auto_classes"]
