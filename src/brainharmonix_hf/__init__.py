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

from .modeling.configuration_brainharmonix import BrainHarmonixConfig
from .modeling.configuration_function_jepa import FunctionJEPAConfig
from .modeling.configuration_harmonizer import HarmonizerConfig
from .modeling.configuration_structure_mae import StructureMAEConfig
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
from .roi_positions.gradients import compute_gradients
from .roi_positions.harmonics import compute_geometric_harmonics
from .roi_positions.tables import RoiTables, load_roi_tables, register_shipped_tables
from .training.masking import JEPAMasks, SpatiotemporalMaskSampler
from .training.schedules import ema_momentum

register_shipped_tables()

AutoConfig.register(StructureMAEConfig.model_type, StructureMAEConfig)
AutoModel.register(StructureMAEConfig, StructureMAEModel)
AutoModelForPreTraining.register(StructureMAEConfig, StructureMAEForPreTraining)
AutoFeatureExtractor.register(StructureMAEConfig, T1VolumeFeatureExtractor)

AutoConfig.register(FunctionJEPAConfig.model_type, FunctionJEPAConfig)
AutoModel.register(FunctionJEPAConfig, FunctionJEPAModel)
AutoModelForPreTraining.register(FunctionJEPAConfig, FunctionJEPAForPreTraining)
AutoFeatureExtractor.register(FunctionJEPAConfig, FMRIFeatureExtractor)

AutoConfig.register(HarmonizerConfig.model_type, HarmonizerConfig)
AutoModel.register(HarmonizerConfig, HarmonizerModel)
AutoModelForPreTraining.register(HarmonizerConfig, HarmonizerForPreTraining)
AutoModelForSequenceClassification.register(HarmonizerConfig, HarmonizerForSequenceClassification)

AutoConfig.register(BrainHarmonixConfig.model_type, BrainHarmonixConfig)
AutoModel.register(BrainHarmonixConfig, BrainHarmonixModel)
AutoModelForSequenceClassification.register(BrainHarmonixConfig, BrainHarmonixForSequenceClassification)
AutoProcessor.register(BrainHarmonixConfig, BrainHarmonixProcessor)

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
    "compute_geometric_harmonics",
    "compute_gradients",
    "ema_momentum",
    "load_roi_tables",
]
