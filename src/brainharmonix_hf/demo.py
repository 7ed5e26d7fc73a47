# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Offline demo: one subject's T1 and resting-state fMRI, from bundled sample data to hub tokens.

The T1 is nilearn's MNI152 template and the fMRI the LEMON run that brainspace ships (see `sample_data`); the model
has seeded random weights, so the tokens carry no meaning: the demo shows the whole data path and its shapes.
"""

import time
import warnings
from dataclasses import dataclass

import torch

from .modeling.configuration_brainharmonix import BrainHarmonixConfig
from .modeling.modeling_brainharmonix import BrainHarmonixModel
from .processing.processing_brainharmonix import BrainHarmonixProcessor
from .sample_data import load_fmri_sample, load_t1_sample


@dataclass
class DemoResult:
    """What the demo computed: the processor's inputs, the model's outputs, notes from preprocessing, seconds taken."""

    inputs: dict
    hub_tokens: torch.Tensor
    embedding: torch.Tensor
    notes: list[str]
    seconds: float


def embed_sample_subject(config: BrainHarmonixConfig, seed: int = 0) -> DemoResult:
    """Process the bundled T1 and fMRI samples for `config` and embed them with seeded random weights."""
    processor = BrainHarmonixProcessor.for_config(config)
    fmri = load_fmri_sample()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        inputs = processor(
            t1=load_t1_sample(),
            fmri=fmri.series,
            repetition_time=fmri.repetition_time,
            layout="rois_first",
            atlas=fmri.atlas,
            return_tensors="pt",
        )
    torch.manual_seed(seed)
    model = BrainHarmonixModel(config).eval()
    start = time.perf_counter()
    with torch.inference_mode():
        outputs = model(**inputs)
    return DemoResult(
        inputs=dict(inputs),
        hub_tokens=outputs.last_hidden_state,
        embedding=outputs.pooler_output,
        notes=[str(warning.message) for warning in caught],
        seconds=time.perf_counter() - start,
    )


def describe(result: DemoResult) -> list[str]:
    """Report lines: input shapes, preprocessing notes, output shapes and a checksum (mean |x| and the first values
    of the embedding; a plain sum is no checksum after a LayerNorm)."""
    inputs = result.inputs
    valid_frames = int(inputs["attention_mask"].sum())
    lines = [
        f"T1   pixel_values {tuple(inputs['pixel_values'].shape)}",
        f"fMRI fmri_values {tuple(inputs['fmri_values'].shape)}, {valid_frames} frames at TR "
        f"{float(inputs['repetition_time'][0]):g} s",
        *(f"note: {note}" for note in result.notes),
        f"hub tokens {tuple(result.hub_tokens.shape)}  embedding {tuple(result.embedding.shape)}",
        f"checksum: mean |hub tokens| {result.hub_tokens.abs().mean().item():.6f}  embedding[:4] "
        f"[{', '.join(f'{value:+.6f}' for value in result.embedding[0, :4].tolist())}]",
        f"forward pass: {result.seconds:.1f} s on {torch.get_num_threads()} CPU threads",
    ]
    return lines
