# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Convert the reference release into Hugging Face folders: one per stage, the composite, and a classifier.

Output layout (each folder: `config.json`, `model.safetensors`, the processor where the model reads raw data, and
`conversion.json`):

- `structure/`: StructureMAE (BrainHarmonix-S), with its T1 feature extractor;
- `function/`: FunctionJEPA (BrainHarmonix-F), with its fMRI feature extractor;
- `harmonizer/`: the Harmonizer (it reads encoder latents, so it has no processor);
- `brainharmonix/`: `BrainHarmonixModel` (both encoders and the Harmonizer), with `BrainHarmonixProcessor`;
- `classifier/` (with a stage-2 checkpoint): `BrainHarmonixForSequenceClassification`, with `BrainHarmonixProcessor`.
"""

from dataclasses import dataclass
from pathlib import Path

from ..hub_cards import build_model_card
from ..modeling.configuration_brainharmonix import BrainHarmonixConfig
from ..modeling.configuration_function_jepa import FunctionJEPAConfig
from ..modeling.configuration_structure_mae import StructureMAEConfig
from ..modeling.hub_mixin import warn_non_finite_weights
from ..modeling.modeling_brainharmonix import BrainHarmonixForSequenceClassification, BrainHarmonixModel
from ..modeling.modeling_function_jepa import FunctionJEPAForPreTraining
from ..modeling.modeling_harmonizer import HarmonizerForPreTraining
from ..modeling.modeling_structure_mae import StructureMAEForPreTraining
from ..processing.feature_extraction_fmri import FMRIFeatureExtractor
from ..processing.feature_extraction_t1 import T1VolumeFeatureExtractor
from ..processing.processing_brainharmonix import BrainHarmonixProcessor
from .checkpoint_io import extract_state_dict, load_checkpoint
from .function import convert_function
from .harmonizer import convert_classifier, convert_harmonizer
from .key_mapping import ConversionError, ConversionPlan
from .provenance import LICENSE, fmri_input_facts, source_entry, write_conversion_record
from .reference_tables import read_reference_table
from .structure import convert_structure


@dataclass
class ConvertedStage:
    """One converted reference checkpoint."""

    model: object
    plan: ConversionPlan
    sources: list[dict]
    training_state: list[str]


def t1_feature_extractor(config: StructureMAEConfig) -> T1VolumeFeatureExtractor:
    """The T1 processor the converted weights expect: 1 mm MNI-space volumes, the reference padding and whole-volume
    z-score, centre pad-or-crop to the model's image size."""
    return T1VolumeFeatureExtractor(volume_size=list(config.image_size))


def fmri_feature_extractor(config: FunctionJEPAConfig) -> FMRIFeatureExtractor:
    """The fMRI processor the converted weights expect: the reference atlas and ROI order, the model's time window,
    and the normalisation the encoder was pretrained with: robust scaling of the original signal with cohort
    statistics (per ROI, `(x - median) / IQR` of the subjects' temporal means). The reference's statistics were never
    released, so the saved processor holds none: it asks for them (`fit_robust_statistics` on the user's cohort)."""
    return FMRIFeatureExtractor(
        num_rois=config.num_rois,
        atlas=config.atlas,
        num_time_patches=config.num_time_patches,
        window_seconds=config.window_seconds,
        normalization="robust",
    )


def _read_state(path: Path, trust_pickle: bool) -> tuple[dict, list[str]]:
    return extract_state_dict(load_checkpoint(path, trust_pickle=trust_pickle), path)


def _save(folder: Path, stage_models: dict[str, ConvertedStage], model, processor) -> Path:
    folder.mkdir(parents=True)
    model.config.license = LICENSE  # kept by every later save_pretrained / push_to_hub of these weights
    model.save_pretrained(folder)
    if processor is not None:
        processor.save_pretrained(folder)
    function_config = _function_config(model.config)
    write_conversion_record(
        folder,
        type(model).__name__,
        [source for stage in stage_models.values() for source in stage.sources],
        {name: stage.plan.summary() for name, stage in stage_models.items()},
        fmri_input_facts(function_config) if function_config is not None else None,
        {name: stage.training_state for name, stage in stage_models.items() if stage.training_state},
    )
    # The card written by save_pretrained predates the record: rebuild it with the licence and provenance.
    build_model_card(folder).save(folder / "README.md")
    return folder


def _function_config(config) -> FunctionJEPAConfig | None:
    if isinstance(config, FunctionJEPAConfig):
        return config
    return getattr(config, "function_config", None)


def convert_reference_release(
    output_dir: str | Path,
    *,
    structure: str | Path | None = None,
    function: str | Path | None = None,
    harmonizer: str | Path | None = None,
    classifier: str | Path | None = None,
    geometric_harmonics: str | Path | None = None,
    gradients: str | Path | None = None,
    config: BrainHarmonixConfig | None = None,
    trust_pickle: bool = False,
) -> dict[str, Path]:
    """Convert reference checkpoints into Hugging Face folders under `output_dir` (see the module docstring).

    Args:
        output_dir: a new or empty folder.
        structure, function, harmonizer: `harmonix-s/model.pth`, `harmonix-f/model.pth`, `harmonizer/model.pth`;
            any subset. The composite folder is written when all three are given.
        classifier: a stage-2 fine-tuned checkpoint; needs `structure` and `function` too.
        geometric_harmonics, gradients: the reference ROI-table CSVs (400 × 200 and 400 × 30); needed with
            `function`.
        config: model sizes (default: the published ones). The fMRI atlas and ROI order are set to the reference's.
        trust_pickle: allow full unpickling of files that need more than the safe allow-list.

    Returns:
        folder name -> path of every folder written.

    Raises:
        ConversionError: a file does not fit (the message names the key), or the arguments do not go together.
    """
    output_dir = Path(output_dir)
    if output_dir.exists() and (not output_dir.is_dir() or any(output_dir.iterdir())):
        raise ConversionError(f"{output_dir} exists and is not an empty folder; pass a new output folder.")
    if all(path is None for path in (structure, function, harmonizer, classifier)):
        raise ConversionError("Nothing to convert: pass at least one reference checkpoint.")
    if function is not None and (geometric_harmonics is None or gradients is None):
        raise ConversionError(
            "The fMRI encoder needs the reference ROI tables: pass the geometric-harmonics CSV (400 × 200) and the "
            "gradients CSV (400 × 30) that ship beside the reference code."
        )
    if classifier is not None and (structure is None or function is None):
        raise ConversionError(
            "The classifier folder holds the end-to-end model: pass --structure and --function with --classifier."
        )
    config = config if config is not None else BrainHarmonixConfig()

    stages: dict[str, ConvertedStage] = {}
    if structure is not None:
        state, training_state = _read_state(Path(structure), trust_pickle)
        model, plan = convert_structure(state, config.structure_config, str(structure))
        stages["structure"] = ConvertedStage(
            model, plan, [source_entry(structure, "harmonix-s checkpoint")], training_state
        )
    if function is not None:
        function_config = config.function_config
        harmonics = read_reference_table(
            geometric_harmonics,
            (function_config.num_rois, function_config.num_geometric_modes),
            "geometric harmonics",
        )
        gradient_table = read_reference_table(
            gradients, (function_config.num_rois, function_config.num_gradient_components), "gradients"
        )
        state, training_state = _read_state(Path(function), trust_pickle)
        table_names = (Path(geometric_harmonics).name, Path(gradients).name)
        model, plan = convert_function(state, function_config, harmonics, gradient_table, table_names, str(function))
        sources = [
            source_entry(function, "harmonix-f checkpoint"),
            source_entry(geometric_harmonics, "geometric-harmonics table (rows in Schaefer-400 7-network order)"),
            source_entry(gradients, "functional-gradients table (rows in Schaefer-400 17-network order)"),
        ]
        stages["function"] = ConvertedStage(model, plan, sources, training_state)
    if harmonizer is not None:
        state, training_state = _read_state(Path(harmonizer), trust_pickle)
        model, plan = convert_harmonizer(state, config.harmonizer_config, str(harmonizer))
        stages["harmonizer"] = ConvertedStage(
            model, plan, [source_entry(harmonizer, "harmonizer checkpoint")], training_state
        )
    if classifier is not None:
        state, training_state = _read_state(Path(classifier), trust_pickle)
        model, plan = convert_classifier(state, config.harmonizer_config, str(classifier))
        stages["classifier"] = ConvertedStage(
            model, plan, [source_entry(classifier, "stage-2 fine-tuned checkpoint")], training_state
        )

    for stage in stages.values():  # e.g. a diverged run saved NaN weights: they convert, but not silently
        warn_non_finite_weights(stage.model, stage.sources[0]["file"])

    folders = {}
    if "structure" in stages:
        stage = stages["structure"]
        extractor = t1_feature_extractor(stage.model.config)
        folders["structure"] = _save(output_dir / "structure", {"structure": stage}, stage.model, extractor)
    if "function" in stages:
        stage = stages["function"]
        extractor = fmri_feature_extractor(stage.model.config)
        folders["function"] = _save(output_dir / "function", {"function": stage}, stage.model, extractor)
    if "harmonizer" in stages:
        stage = stages["harmonizer"]
        folders["harmonizer"] = _save(output_dir / "harmonizer", {"harmonizer": stage}, stage.model, None)

    encoders = _encoders(stages)
    if "harmonizer" in stages and encoders is not None:
        composite = BrainHarmonixModel.from_stages(*encoders, _harmonizer_encoder(stages["harmonizer"].model))
        used = {name: stages[name] for name in ("structure", "function", "harmonizer")}
        folders["brainharmonix"] = _save(
            output_dir / "brainharmonix", used, composite.eval(), _processor(composite.config)
        )
    if "classifier" in stages:
        model = _classifier_model(*encoders, stages["classifier"].model)
        used = {name: stages[name] for name in ("structure", "function", "classifier")}
        folders["classifier"] = _save(output_dir / "classifier", used, model.eval(), _processor(model.config))
    return folders


def _encoders(stages: dict[str, ConvertedStage]):
    if "structure" not in stages or "function" not in stages:
        return None
    structure, function = stages["structure"].model, stages["function"].model
    structure = structure.structure if isinstance(structure, StructureMAEForPreTraining) else structure
    function = function.target_encoder if isinstance(function, FunctionJEPAForPreTraining) else function
    return structure, function


def _harmonizer_encoder(model):
    return model.harmonizer if isinstance(model, HarmonizerForPreTraining) else model


def _processor(config: BrainHarmonixConfig) -> BrainHarmonixProcessor:
    return BrainHarmonixProcessor(
        t1_feature_extractor(config.structure_config), fmri_feature_extractor(config.function_config)
    )


def _classifier_model(structure, function, fine_tuned) -> BrainHarmonixForSequenceClassification:
    """The end-to-end classifier: converted encoders + the stage-2 Harmonizer and head."""
    config = BrainHarmonixConfig(
        structure_config=structure.config.to_dict(),
        function_config=function.config.to_dict(),
        harmonizer_config=fine_tuned.config.to_dict(),
        num_labels=fine_tuned.config.num_labels,
    )
    model = BrainHarmonixForSequenceClassification(config)
    model.brainharmonix.structure.load_state_dict(structure.state_dict())
    model.brainharmonix.function.load_state_dict(function.state_dict())
    model.brainharmonix.harmonizer.load_state_dict(fine_tuned.harmonizer.state_dict())
    model.classifier.load_state_dict(fine_tuned.classifier.state_dict())
    return model
