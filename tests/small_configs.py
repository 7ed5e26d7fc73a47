"""Small BrainHarmonix configs for tests: narrow one-layer stages around inputs of a chosen size."""

import math
import os
import tempfile

import pytest
import torch
from safetensors.torch import save_file

from brainharmonix_hf import BrainHarmonixConfig

LAYER = {"num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 48, "hidden_size": 24}
DECODER = {"decoder_num_hidden_layers": 1, "decoder_num_attention_heads": 2}
PREDICTOR = {
    "predictor_hidden_size": 16,
    "predictor_num_hidden_layers": 1,
    "predictor_num_attention_heads": 2,
    "predictor_intermediate_size": 32,
}


def small_brainharmonix_config(
    image_size: tuple[int, int, int] = (160, 192, 160), freeze_encoders: bool = True, **function_fields
) -> BrainHarmonixConfig:
    """24-wide, one-layer stages and 4 hub tokens; T1 volumes of `image_size` in 16³ patches; the fMRI encoder at its
    default grid (400 ROIs × 18 time patches) unless `function_fields` change it. The Harmonizer's token counts follow.
    """
    structure = (
        LAYER | DECODER | {"image_size": list(image_size), "decoder_hidden_size": 24, "decoder_intermediate_size": 48}
    )
    function = LAYER | PREDICTOR | function_fields
    num_fmri_tokens = function.get("num_rois", 400) * function.get("num_time_patches", 18)
    harmonizer = (
        LAYER
        | DECODER
        | {
            "num_fmri_tokens": num_fmri_tokens,
            "num_t1_tokens": math.prod(size // 16 for size in image_size),
            "latent_size": 24,
            "num_hub_tokens": 4,
            "decoder_hidden_size": 16,
            "decoder_intermediate_size": 32,
        }
    )
    return BrainHarmonixConfig(
        structure_config=structure,
        function_config=function,
        harmonizer_config=harmonizer,
        freeze_encoders=freeze_encoders,
    )


def tiny6_brainharmonix_config(**overrides) -> BrainHarmonixConfig:
    """T1 32³ in 16³ patches (8 tokens), fMRI 6 ROIs × 4 patches of 8 s (24 tokens), 4 hub tokens, all 24 wide."""
    return small_brainharmonix_config(
        image_size=(32, 32, 32),
        num_rois=6,
        atlas="tiny6",
        roi_tables="placeholder",
        num_time_patches=4,
        window_seconds=8.0,
        base_patch_length=8,
        **overrides,
    )


def assert_checkpoint_without_roi_tables_is_refused(test_case) -> None:
    """For transformers' common tests that reload a checkpoint holding no weights: a model holding a FunctionJEPA
    refuses it (ROI tables are data, never re-initialised), and the checkpoint file is left as it was."""
    for model_class in test_case.all_model_classes:
        config, _ = test_case.model_tester.prepare_config_and_inputs_for_common()
        with tempfile.TemporaryDirectory() as folder:
            model_class(config).save_pretrained(folder)
            weights = os.path.join(folder, "model.safetensors")
            save_file({"tensor": torch.tensor([1, 2])}, weights, metadata={"format": "pt"})
            before = (open(weights, "rb").read(), os.stat(weights).st_mtime_ns)
            with pytest.raises(ValueError, match=r"The checkpoint has no ROI table 'geometric_harmonics'"):
                model_class.from_pretrained(folder)
            assert (open(weights, "rb").read(), os.stat(weights).st_mtime_ns) == before
