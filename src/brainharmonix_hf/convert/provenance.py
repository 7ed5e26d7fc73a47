# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""`conversion.json`: the facts of a conversion, written into every output folder.

The record says where the weights come from (file names and SHA-256 of the reference files), their licence, the ROI
order and input handling the weights expect, and what happened to every reference key. The model-card builder reads
it to write the folder's card; nothing here writes a card.
"""

import json
from pathlib import Path

from .. import __version__
from ..file_hashes import sha256_of
from ..modeling.configuration_function_jepa import FunctionJEPAConfig

RECORD_FILE = "conversion.json"
LICENSE = "cc-by-nc-sa-4.0"
LICENSE_STATEMENT = (
    "Converted from the BrainHarmonix reference release, which is licensed CC BY-NC-SA 4.0 (attribution, "
    "non-commercial, share-alike); the converted weights keep that licence."
)


def source_entry(path: str | Path, role: str) -> dict:
    """`{"role", "file", "sha256"}` of one reference file."""
    return {"role": role, "file": Path(path).name, "sha256": sha256_of(path)}


def fmri_input_facts(config: FunctionJEPAConfig) -> dict:
    """Atlas, ROI order, normalisation and TR handling the converted fMRI encoder expects."""
    return {
        "atlas": config.atlas,
        "roi_order": config.roi_order,
        "normalization": (
            "robust: per ROI, (x - median) / IQR of the subjects' temporal means, on the original signal, as the "
            "encoder was pretrained; the reference's UK Biobank statistics were never released, so fit them on your "
            "cohort (fit_robust_statistics)"
        ),
        "repetition_time": (
            f"any TR: a token spans {config.window_seconds} s = round({config.window_seconds} / TR) frames, the patch "
            f"kernel stored for {config.base_patch_length} frames is resized by pseudo-inverse; up to "
            f"{config.num_time_patches} time patches per ROI (longer series cropped, shorter ones zero-padded and "
            "masked); TRs may differ within a batch"
        ),
    }


def write_conversion_record(
    folder: str | Path,
    model_class: str,
    sources: list[dict],
    keys: dict,
    fmri_inputs: dict | None = None,
    training_state_not_loaded: dict | None = None,
) -> Path:
    """Write `conversion.json` into `folder`.

    Args:
        model_class: the class saved in the folder.
        sources: `source_entry` of every reference file the folder's weights come from.
        keys: per reference checkpoint, `ConversionPlan.summary()`.
        fmri_inputs: `fmri_input_facts` for folders that read fMRI.
        training_state_not_loaded: per checkpoint, its top-level entries besides the weights (optimizer, args, ...).
    """
    record = {
        "description": "Conversion record of reference BrainHarmonix weights (read by the model-card builder).",
        "converter": f"brainharmonix_hf {__version__}",
        "model_class": model_class,
        "license": LICENSE,
        "license_statement": LICENSE_STATEMENT,
        "sources": sources,
        "keys": keys,
    }
    if fmri_inputs is not None:
        record["fmri_inputs"] = fmri_inputs
    if training_state_not_loaded:
        record["training_state_not_loaded"] = training_state_not_loaded
    path = Path(folder) / RECORD_FILE
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path
