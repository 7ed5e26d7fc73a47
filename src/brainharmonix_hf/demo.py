# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Offline demo: embed nilearn's MNI152 T1 template with a randomly initialised StructureMAE.

Everything it needs ships with the installed packages (the template is inside nilearn), so it runs without network.
The weights are random (seeded), so the tokens carry no meaning: the demo shows the data path and the shapes.
"""

import torch
from nilearn.datasets import load_mni152_template

from .modeling.configuration_structure_mae import StructureMAEConfig
from .modeling.modeling_structure_mae import StructureMAEModel
from .processing.feature_extraction_t1 import T1VolumeFeatureExtractor


def embed_mni152_template(config: StructureMAEConfig, seed: int = 0) -> torch.Tensor:
    """Preprocess the 1 mm MNI152 T1 template to `config.image_size` and encode it with seeded random weights.

    Returns:
        `(1, num_patches, hidden_size)` patch tokens, `(1, 1200, 768)` for the default config.
    """
    extractor = T1VolumeFeatureExtractor(volume_size=list(config.image_size))
    pixel_values = extractor(load_mni152_template(resolution=1), return_tensors="pt")["pixel_values"]
    torch.manual_seed(seed)
    model = StructureMAEModel(config).eval()
    with torch.no_grad():
        return model(pixel_values).last_hidden_state


def describe_tokens(tokens: torch.Tensor) -> str:
    """One line with the token shape and a checksum: the mean absolute value and the first values of the token mean.

    (The plain sum is no checksum here: every token leaves the final LayerNorm with zero mean over its features.)
    """
    pooled = tokens.mean(dim=1)[0, :4].tolist()
    return (
        f"tokens {tuple(tokens.shape)}  mean |x| {tokens.abs().mean().item():.6f}  "
        f"token mean[:4] [{', '.join(f'{value:+.6f}' for value in pooled)}]"
    )
