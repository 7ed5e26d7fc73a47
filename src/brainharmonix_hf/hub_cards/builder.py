# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""One model-card builder for every saved folder of the package: stage models, the composite, their heads, and
processors saved on their own.

The card is built from the files in the folder, so it states what the checkpoint really expects: `config.json`
(model type, architecture, sizes, atlas and ROI order), `preprocessor_config.json` / `processor_config.json`
(normalisation, T1 box, TR window) and, for converted reference weights, `conversion.json` (source files and their
sha256, licence, ROI order). `ModelCardData` carries the Hub metadata (library_name, license, tags, pipeline_tag,
datasets, metrics, base_model).

`conversion.json` is read as written by the converters: `license` sets the card's licence (else the config's
`license`, which converted models carry), `fmri_inputs.roi_order` the ROI order stated under Inputs, `base_model`
the metadata field; every other entry (source files, sha256 sums, ...) is listed under Provenance. Write it into the
folder before `save_pretrained`, or rebuild the card afterwards with
`build_model_card(folder).save(folder / "README.md")`.
"""

import json
import os
from importlib import resources
from pathlib import Path

from huggingface_hub import ModelCard, ModelCardData
from transformers.utils import CONFIG_NAME, FEATURE_EXTRACTOR_NAME, PROCESSOR_NAME

from ..modeling.configuration_brainharmonix import BrainHarmonixConfig
from ..modeling.configuration_function_jepa import FunctionJEPAConfig
from ..modeling.configuration_harmonizer import HarmonizerConfig
from ..modeling.configuration_structure_mae import StructureMAEConfig
from ..modeling.hub_mixin import GENERATED_CARD_MARKER, PROVENANCE_NAME, REPO_ID_PLACEHOLDER, is_generated_card

OWN_WEIGHTS_LICENSE = "apache-2.0"
STRUCTURE, FUNCTION, HARMONIZER, COMPOSITE = (
    config.model_type for config in (StructureMAEConfig, FunctionJEPAConfig, HarmonizerConfig, BrainHarmonixConfig)
)
TAGS = ["brainharmonix", "neuroscience", "mri", "fmri", "brain", "self-supervised"]

# What each model type is, in one sentence, and the title the card opens with.
MODEL_TYPES = {
    STRUCTURE: (
        "BrainHarmonix-S (StructureMAE)",
        "a 3D ViT masked autoencoder that encodes a T1-weighted MRI volume into patch tokens (brain morphology).",
    ),
    FUNCTION: (
        "BrainHarmonix-F (FunctionJEPA)",
        "a ViT trained as a joint-embedding predictive architecture (JEPA) that encodes an ROI x time fMRI series of "
        "any TR into ROI x time-patch tokens (brain dynamics), with geometric-harmonic and functional-gradient ROI "
        "positions and temporal adaptive patch embedding (TAPE).",
    ),
    HARMONIZER: (
        "BrainHarmonix Harmonizer",
        "a transformer that fuses frozen fMRI and T1 latents into a short sequence of learned 1D hub tokens.",
    ),
    COMPOSITE: (
        "BrainHarmonix",
        "the complete multimodal model: the T1 encoder, the fMRI encoder and the Harmonizer, from a subject's T1 "
        "volume and fMRI series (either may be missing) to 1D hub tokens.",
    ),
}
PROCESSOR_TYPES = {
    "T1VolumeFeatureExtractor": "BrainHarmonix T1 processor",
    "FMRIFeatureExtractor": "BrainHarmonix fMRI processor",
    "BrainHarmonixProcessor": "BrainHarmonix processor (T1 + fMRI)",
}
CITATION = """@inproceedings{dong2025brainharmony,
  title     = {Brain Harmony: A Multimodal Foundation Model Unifying Morphology and Function into 1D Tokens},
  author    = {Dong, Zijian and Li, Ruilin and Chong, Joanna Su Xian and Dehestani, Niousha and Teng, Yinghui and
               Lin, Yi and Li, Zhizhou and Zhang, Yichi and Xie, Yapei and Ooi, Leon Qi Rong and Yeo, B. T. Thomas
               and Zhou, Juan Helen},
  booktitle = {Advances in Neural Information Processing Systems (NeurIPS)},
  year      = {2025},
  eprint    = {2509.24693},
  archivePrefix = {arXiv}
}"""
REFERENCE_RECIPE = {
    STRUCTURE: "masked-autoencoder pretraining on T1 volumes (mask ratio 0.75, MSE on masked 16³ patches)",
    FUNCTION: (
        "JEPA pretraining with spatiotemporal masks and an EMA target encoder (AdamW, lr 5e-5 -> 1e-3 over 40 warmup "
        "epochs then cosine, 300 epochs, effective batch 512), with multi-TR augmentation (every r-th frame, r = 1-4)"
    ),
    HARMONIZER: (
        "hub-token pretraining on frozen encoder latents: reconstruct both modalities' standardised latents from the "
        "hub tokens (AdamW (0.9, 0.95), weight decay 0.05, lr 5e-4 x batch/256, 300 epochs, 40 warmup)"
    ),
}
REFERENCE_RECIPE[COMPOSITE] = (
    f"three stages: {REFERENCE_RECIPE[STRUCTURE]}; {REFERENCE_RECIPE[FUNCTION]}; then {REFERENCE_RECIPE[HARMONIZER]}"
)
LIMITATIONS = (
    "For research only: not a medical device, not for diagnosis, prognosis or any clinical decision about a person. "
    "Pretraining covered children (ABCD, 8-11 years) and middle-aged to older adults (UK Biobank, 44-83 years), "
    "mostly from Western cohorts; infants, young adults and other populations are under-represented. Only T1 and "
    "resting-state fMRI are modelled. Low-quality T1s (e.g. motion) can degrade the fused representation. Inputs "
    "must follow the preprocessing, atlas and ROI order stated above: a series in another ROI order gives "
    "meaningless tokens without any error. Fine-tuned heads inherit the biases of their training cohort."
)


def read_saved_folder(folder: str | os.PathLike) -> dict:
    """The JSON files of a saved folder that a card describes: `config`, `processor` (a feature extractor's settings,
    or the combined processor's with one entry per sub-processor) and `provenance`, each `{}` when absent."""
    folder = Path(folder)

    def load(name):
        path = folder / name
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}

    processor = load(FEATURE_EXTRACTOR_NAME) | load(PROCESSOR_NAME)
    return {"config": load(CONFIG_NAME), "processor": processor, "provenance": load(PROVENANCE_NAME)}


def build_model_card(
    folder: str | os.PathLike,
    *,
    repo_id: str | None = None,
    license: str | None = None,
    datasets: list[str] | None = None,
    base_model: str | None = None,
    training_summary: str | None = None,
    evaluation_summary: str | None = None,
    tags: list[str] | None = None,
) -> ModelCard:
    """Build the card of a saved folder (a model, a processor, or both).

    Args:
        folder: the folder `save_pretrained` (or `brainharmonix convert`) wrote.
        repo_id: the Hub id used in the loading snippet (defaults to a placeholder that `push_to_hub` fills in).
        license: Hub licence id; defaults to `conversion.json`'s licence, else apache-2.0 (the package's own weights).
        datasets: Hub dataset ids the weights were trained on (UK Biobank / ABCD are not Hub datasets; name those in
            `training_summary`).
        base_model: Hub id of the checkpoint these weights were fine-tuned from.
        training_summary: what these weights were trained on and how; defaults to a statement of the provenance.
        evaluation_summary: results measured on these weights.
        tags: extra Hub tags.
    """
    saved = read_saved_folder(folder)
    config, processor, provenance = saved["config"], saved["processor"], saved["provenance"]
    model_type = config.get("model_type")
    architecture = (config.get("architectures") or [None])[0]
    classifier = bool(architecture and architecture.endswith("ForSequenceClassification"))
    if model_type in MODEL_TYPES:
        title, what = MODEL_TYPES[model_type]
        title = f"{title}: {architecture}" if architecture else title
    else:
        processor_class = processor.get("processor_class") or processor.get("feature_extractor_type")
        if processor_class not in PROCESSOR_TYPES:
            raise ValueError(f"{folder} holds neither a brainharmonix_hf model nor one of its processors.")
        title, what = PROCESSOR_TYPES[processor_class], "the preprocessing that turns a subject's files into inputs."
    # The weights' licence travels in the config too, so a converted model re-saved or pushed elsewhere keeps it.
    license = license or provenance.get("license") or config.get("license") or OWN_WEIGHTS_LICENSE
    labels = list((config.get("id2label") or {}).values())
    metrics = None
    if classifier:
        metrics = ["mse", "pearsonr"] if len(labels) == 1 else ["accuracy", "f1", "roc_auc"]
    card_data = ModelCardData(
        library_name="transformers",
        license=license,
        tags=list(dict.fromkeys(TAGS + (tags or []))),
        pipeline_tag=None if classifier or model_type is None else "feature-extraction",
        datasets=datasets,
        metrics=metrics,
        base_model=base_model or provenance.get("base_model"),
    )
    summary = f"{title.split(':')[0]} is {what} From the BrainHarmonix paper (NeurIPS 2025, arXiv 2509.24693)."
    if classifier:
        kind = "regression (one output)" if len(labels) == 1 else f"{len(labels)} classes ({', '.join(labels)})"
        summary += f" This checkpoint adds a sequence-classification head on the mean hub token: {kind}."
    template = resources.files(__package__).joinpath("model_card_template.md").read_text(encoding="utf-8")
    return ModelCard.from_template(
        card_data,
        template_str=template,
        marker=GENERATED_CARD_MARKER,
        title=title,
        summary=summary,
        inputs=_inputs_section(config, processor, provenance),
        loading=_loading_snippet(config, processor, repo_id or REPO_ID_PLACEHOLDER),
        training=training_summary or _training_section(model_type, provenance, config.get("exported_encoder")),
        evaluation=evaluation_summary or _evaluation_section(model_type, provenance),
        provenance=_provenance_section(provenance, license),
        limitations=LIMITATIONS,
        citation=CITATION,
    )


def write_model_card(obj, save_directory: str | os.PathLike, overwrite_card: bool = False) -> None:
    """Save hook: (re)write `README.md` in `save_directory` unless it holds a card the package did not generate."""
    path = Path(save_directory) / "README.md"
    if path.is_file() and not overwrite_card and not is_generated_card(path.read_text(encoding="utf-8")):
        return
    build_model_card(save_directory).save(path)


def _configs_by_type(config: dict) -> dict:
    """`{model_type: config}` for a stage config or each sub-config of the composite."""
    found = {config["model_type"]: config} if "model_type" in config else {}
    for value in config.values():
        if isinstance(value, dict) and "model_type" in value:
            found[value["model_type"]] = value
    return found


def _processor_parts(processor: dict) -> dict:
    """`{feature_extractor_type: settings}` for a feature extractor or each part of the combined processor."""
    parts = {processor["feature_extractor_type"]: processor} if "feature_extractor_type" in processor else {}
    for value in processor.values():
        if isinstance(value, dict) and "feature_extractor_type" in value:
            parts[value["feature_extractor_type"]] = value
    return parts


def _inputs_section(config: dict, processor: dict, provenance: dict) -> str:
    configs, parts = _configs_by_type(config), _processor_parts(processor)
    lines = []
    t1 = parts.get("T1VolumeFeatureExtractor", {})
    if STRUCTURE in configs or t1:
        size = configs.get(STRUCTURE, {}).get("image_size") or t1.get("volume_size")
        patch = configs.get(STRUCTURE, {}).get("patch_size", 16)
        lines.append(
            f"- **T1** `pixel_values` `(batch, 1, {', '.join(map(str, size))})` float32: a T1-weighted volume on the "
            f"1 mm MNI152 grid (register native-space scans first), cut into {patch}³ patches."
        )
        if t1:
            lines.append(
                f"  - T1 processor: voxel size {t1.get('target_spacing')} mm (resample: {t1.get('resample')}), "
                f"intensity normalisation `{t1.get('normalization')}`, box {t1.get('volume_size')}."
            )
    fmri = parts.get("FMRIFeatureExtractor", {})
    function = configs.get(FUNCTION, {})
    if function or fmri:
        rois = function.get("num_rois") or fmri.get("num_rois")
        patches = function.get("num_time_patches") or fmri.get("num_time_patches")
        window = function.get("window_seconds") or fmri.get("window_seconds")
        atlas = function.get("atlas") or fmri.get("atlas")
        roi_order = provenance.get("fmri_inputs", {}).get("roi_order") or function.get("roi_order") or atlas
        lines += [
            f"- **fMRI** `fmri_values` `(batch, {rois}, time)` float32 (ROI x time), `repetition_time` `(batch,)` in "
            "seconds and `attention_mask` `(batch, time)` (1 = real frame). Each subject may have its own TR.",
            f"  - TR handling: a time patch always spans {window} s, so the patch length is round({window} / TR) "
            f"frames; up to {patches} patches ({patches * window:.2f} s) are used, longer series are cropped (with a "
            "warning) and shorter ones zero-padded and masked.",
            f"  - Atlas `{atlas}`; ROI order: {roi_order}. Series in another order must be permuted first.",
        ]
        if fmri:
            normalization = fmri.get("normalization")
            detail = {"zscore": f" (scope `{fmri.get('zscore_scope')}`)", "robust": " (cohort median / IQR per ROI)"}
            lines.append(f"  - fMRI normalisation: `{normalization}`{detail.get(normalization, '')}.")
    harmonizer = configs.get(HARMONIZER)
    if harmonizer and COMPOSITE not in configs:
        lines.append(
            f"- **Latents** `fmri_latents` `(batch, {harmonizer['num_fmri_tokens']}, {harmonizer['latent_size']})` "
            f"with its token mask and `t1_latents` `(batch, {harmonizer['num_t1_tokens']}, "
            f"{harmonizer['latent_size']})`, from the frozen encoders."
        )
    if harmonizer:
        lines.append(
            f"- **Output**: CLS + {harmonizer['num_hub_tokens']} hub tokens `(batch, {harmonizer['num_hub_tokens'] + 1}"
            f", {harmonizer['hidden_size']})`."
        )
    elif STRUCTURE in configs or function:
        width = (function or configs.get(STRUCTURE))["hidden_size"]
        lines.append(f"- **Output**: token sequence of width {width}.")
    if not (fmri or t1) and config:
        lines.append("- No processor was saved with these weights: build one with `BrainHarmonixProcessor.for_config`.")
    return "\n".join(lines)


def _loading_snippet(config: dict, processor: dict, repo_id: str) -> str:
    architecture = (config.get("architectures") or [None])[0]
    auto = "AutoModel"
    if architecture and architecture.endswith("ForSequenceClassification"):
        auto = "AutoModelForSequenceClassification"
    elif architecture and architecture.endswith("ForPreTraining"):
        auto = "AutoModelForPreTraining"
    lines = ["import brainharmonix_hf  # without the package: drop this line, pass trust_remote_code=True below"]
    if config:
        lines += [f"from transformers import {auto}", f'model = {auto}.from_pretrained("{repo_id}")']
    if processor:
        processor_auto = "AutoProcessor" if "processor_class" in processor else "AutoFeatureExtractor"
        lines += [
            f"from transformers import {processor_auto}",
            f'processor = {processor_auto}.from_pretrained("{repo_id}")',
        ]
    return "\n".join(lines)


EXPORTED_ENCODERS = {
    "target": "the JEPA target encoder (the exponential moving average of the context encoder, the one the reference "
    "recipe embeds with)",
    "context": "the JEPA context encoder (the one trained by gradient descent)",
}


def _training_section(model_type: str | None, provenance: dict, exported_encoder: str | None = None) -> str:
    if model_type is None:
        return "A processor has no trained weights."
    if exported_encoder in EXPORTED_ENCODERS:
        return (
            f"These weights are {EXPORTED_ENCODERS[exported_encoder]}, exported by `brainharmonix pretrain function` "
            f"(`--export_encoder`). {_training_section(model_type, provenance)}"
        )
    recipe = REFERENCE_RECIPE[model_type]
    if provenance:
        return (
            "Converted from the reference BrainHarmonix release. The reference pretraining used UK Biobank (43,112 "
            "participants; T1 and resting-state fMRI at TR 0.735 s, downsampled to 1.47 / 2.205 / 2.94 s) and ABCD "
            "(11,221 children; TR 0.8 s, downsampled to 1.6 / 2.4 s): 64,594 T1 images, 252,961 fMRI series after "
            f"augmentation and 69,360 paired sessions. Recipe: {recipe}."
        )
    return (
        "Weights saved by brainharmonix_hf; their training data were not recorded in this folder (pass "
        f"`training_summary=` to `build_model_card`). The reference recipe for this model: {recipe}."
    )


def _evaluation_section(model_type: str | None, provenance: dict) -> str:
    if model_type is None:
        return "Not applicable: a processor has no weights."
    if provenance:
        return (
            "Not re-measured for this conversion. The paper reports fine-tuned results on ABIDE-I/II (autism), "
            "ADHD-200, PPMI (Parkinson's, 4 classes), ADNI (MCI), HCP-A (executive function) and MACC (amyloid); the "
            "converted forward pass matches the reference implementation numerically."
        )
    return "No evaluation recorded for these weights (pass `evaluation_summary=` to `build_model_card`)."


def _provenance_section(provenance: dict, license: str) -> str:
    lines = [f"Licence of these weights: `{license}`."]
    if not provenance:
        return lines[0] + " Produced by brainharmonix_hf (no conversion record)."
    lines.append(f"Converted by brainharmonix_hf from reference checkpoints (`{PROVENANCE_NAME}`):")
    for key, value in provenance.items():
        if key == "license":
            continue
        if isinstance(value, list):
            lines.append(f"- {key}:")
            lines += [f"  - `{json.dumps(item, sort_keys=True)}`" for item in value]
        elif isinstance(value, dict):
            lines.append(f"- {key}:")
            lines += [f"  - {name}: `{json.dumps(item, sort_keys=True)}`" for name, item in value.items()]
        else:
            lines.append(f"- {key}: {value}")
    return "\n".join(lines)
