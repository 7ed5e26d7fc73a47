"""Small BrainHarmonix configs for tests: narrow one-layer stages around inputs of a chosen size."""

import math

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
