# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""BrainHarmonix for Hugging Face: T1 MRI and fMRI of any TR to 1D hub tokens.

Importing the package registers every config, model and processor with the transformers Auto classes, and the shipped
ROI position tables as the starting tables of fresh FunctionJEPA models.
"""

__version__ = "0.1.0"

from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModel,
    AutoModelForPreTraining,
    AutoModelForSequenceClassification,
    AutoProcessor,
)

from .hub_cards import build_model_card, write_model_card
from .modeling.configuration_brainharmonix import BrainHarmonixConfig
from .modeling.configuration_function_jepa import FunctionJEPAConfig
from .modeling.configuration_harmonizer import HarmonizerConfig
from .modeling.configuration_structure_mae import StructureMAEConfig
from .modeling.hub_mixin import BrainHarmonixHubMixin
from .modeling.modeling_brainharmonix import (
    BrainHarmonixForSequenceClassification,
    BrainHarmonixModel,
    BrainHarmonixPreTrainedModel,
)
from .modeling.modeling_function_jepa import (
    FunctionJEPAForPreTraining,
    FunctionJEPAModel,
    FunctionJEPAPreTrainedModel,
)
from .modeling.modeling_harmonizer import (
    HarmonizerForLinearProbing,
    HarmonizerForPreTraining,
    HarmonizerForSequenceClassification,
    HarmonizerModel,
    HarmonizerPreTrainedModel,
)
from .modeling.modeling_structure_mae import (
    StructureMAEForPreTraining,
    StructureMAEModel,
    StructureMAEPreTrainedModel,
)
from .processing.feature_extraction_fmri import FMRIFeatureExtractor
from .processing.feature_extraction_t1 import T1VolumeFeatureExtractor
from .processing.processing_brainharmonix import BrainHarmonixProcessor
from .remote_code import write_remote_code
from .roi_positions.gradients import compute_gradients
from .roi_positions.harmonics import compute_geometric_harmonics
from .roi_positions.tables import RoiTables, load_roi_tables, register_shipped_tables
from .training.masking import JEPAMasks, SpatiotemporalMaskSampler
from .training.schedules import ema_momentum

register_shipped_tables()

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
for _config_class, _auto_targets in AUTO_CLASSES.items():
    AutoConfig.register(_config_class.model_type, _config_class)
    for _auto_class, _target in _auto_targets.items():
        _auto_class.register(_config_class, _target)
del _config_class, _auto_targets, _auto_class, _target

# Saving any model or processor also writes its model card and the code that loads it without the package.
BrainHarmonixHubMixin.register_save_hook(write_model_card)
BrainHarmonixHubMixin.register_save_hook(write_remote_code)

__all__ = [
    "BrainHarmonixConfig",
    "BrainHarmonixForSequenceClassification",
    "BrainHarmonixModel",
    "BrainHarmonixPreTrainedModel",
    "BrainHarmonixProcessor",
    "FMRIFeatureExtractor",
    "FunctionJEPAConfig",
    "FunctionJEPAForPreTraining",
    "FunctionJEPAModel",
    "FunctionJEPAPreTrainedModel",
    "HarmonizerConfig",
    "HarmonizerForLinearProbing",
    "HarmonizerForPreTraining",
    "HarmonizerForSequenceClassification",
    "HarmonizerModel",
    "HarmonizerPreTrainedModel",
    "JEPAMasks",
    "RoiTables",
    "SpatiotemporalMaskSampler",
    "StructureMAEConfig",
    "StructureMAEForPreTraining",
    "StructureMAEModel",
    "StructureMAEPreTrainedModel",
    "T1VolumeFeatureExtractor",
    "build_model_card",
    "compute_geometric_harmonics",
    "compute_gradients",
    "ema_momentum",
    "load_roi_tables",
]
