"""CUDA parity of every model: bfloat16 and flash attention against float32 SDPA. Skipped without a CUDA device (and
the flash tests without the flash-attn package); `benchmarks/gpu_check.sh` runs them on a GPU.

Inputs are padded the way real batches are (fMRI series of different lengths, a subject without T1), so the packed
paths run: per sample with SDPA, the whole batch as one varlen sequence with flash attention (`token_packing="auto"`).
bfloat16 keeps 8 bits of mantissa, so outputs are compared by relative error (‖a − b‖ / ‖b‖) over the real tokens.
"""

import copy

import pytest
import torch
from transformers.utils import is_flash_attn_2_available

from brainharmonix_hf import (
    BrainHarmonixConfig,
    BrainHarmonixModel,
    FunctionJEPAConfig,
    FunctionJEPAForPreTraining,
    FunctionJEPAModel,
    HarmonizerConfig,
    HarmonizerForPreTraining,
    HarmonizerModel,
    SpatiotemporalMaskSampler,
    StructureMAEConfig,
    StructureMAEForPreTraining,
    StructureMAEModel,
)

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
requires_flash = pytest.mark.skipif(not is_flash_attn_2_available(), reason="needs the flash-attn package")

DEVICE = "cuda"
# Widths flash kernels take (head dim 32; 96 is a multiple of 6 for 3D positions), two layers, the published grids.
LAYERS = {"hidden_size": 96, "num_hidden_layers": 2, "num_attention_heads": 3, "intermediate_size": 192}
DECODER = {
    "decoder_hidden_size": 64,
    "decoder_num_hidden_layers": 1,
    "decoder_num_attention_heads": 2,
    "decoder_intermediate_size": 128,
}
PREDICTOR = {
    "predictor_hidden_size": 64,
    "predictor_num_hidden_layers": 1,
    "predictor_num_attention_heads": 2,
    "predictor_intermediate_size": 128,
}
# Relative error of bfloat16 (or flash in bfloat16) against float32 SDPA.
BF16_TOLERANCE = 3e-2


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    actual, expected = actual.float(), expected.float()
    return float((actual - expected).norm() / expected.norm())


def fmri_inputs(generator: torch.Generator) -> dict:
    """Three series at TR 2 s: 18, 9 and 5 of 18 time patches real."""
    frames = [324, 162, 90]
    attention_mask = torch.zeros(3, 324, dtype=torch.long)
    for index, count in enumerate(frames):
        attention_mask[index, :count] = 1
    return {
        "fmri_values": torch.randn(3, 400, 324, generator=generator),
        "repetition_time": torch.full((3,), 2.0),
        "attention_mask": attention_mask,
    }


def function_config() -> FunctionJEPAConfig:
    return FunctionJEPAConfig(**LAYERS, **PREDICTOR, roi_tables="placeholder")


def harmonizer_config() -> HarmonizerConfig:
    return HarmonizerConfig(**LAYERS, **DECODER, latent_size=96, num_hub_tokens=8)


def harmonizer_inputs(config: HarmonizerConfig, generator: torch.Generator) -> dict:
    """Subject 0: both modalities, half its fMRI tokens real; subject 1: fMRI only; subject 2: T1 only."""
    fmri_mask = torch.ones(3, config.num_fmri_tokens, dtype=torch.long)
    fmri_mask[0, config.num_fmri_tokens // 2 :] = 0
    fmri_mask[2] = 0
    return {
        "fmri_latents": torch.randn(3, config.num_fmri_tokens, config.latent_size, generator=generator),
        "fmri_token_mask": fmri_mask,
        "t1_latents": torch.randn(3, config.num_t1_tokens, config.latent_size, generator=generator),
        "t1_token_mask": torch.tensor([1, 0, 1]).unsqueeze(1).expand(-1, config.num_t1_tokens),
    }


def encoder_case(name: str):
    """`(model, inputs, outputs -> (tokens, token mask))` of one encoder, on CUDA in float32."""
    generator = torch.Generator().manual_seed(0)
    if name == "structure":
        model = StructureMAEModel(StructureMAEConfig(**LAYERS))
        inputs = {"pixel_values": torch.randn(2, 1, 160, 192, 160, generator=generator)}

        def tokens(outputs):
            return outputs.last_hidden_state, None

    elif name == "function":
        model = FunctionJEPAModel(function_config())
        inputs = fmri_inputs(generator)

        def tokens(outputs):
            return outputs.last_hidden_state, outputs.token_mask

    elif name == "harmonizer":
        config = harmonizer_config()
        model = HarmonizerModel(config)
        inputs = harmonizer_inputs(config, generator)

        def tokens(outputs):
            return outputs.last_hidden_state, None

    else:
        config = BrainHarmonixConfig(
            structure_config=LAYERS,
            function_config=LAYERS | {"roi_tables": "placeholder"},
            harmonizer_config=LAYERS | {"latent_size": 96, "num_hub_tokens": 8},
        )
        model = BrainHarmonixModel(config)
        inputs = {"pixel_values": torch.randn(3, 1, 160, 192, 160, generator=generator), **fmri_inputs(generator)}
        inputs["has_t1"] = torch.tensor([True, False, True])

        def tokens(outputs):
            return outputs.last_hidden_state, None

    inputs = {key: value.to(DEVICE) for key, value in inputs.items()}
    return model.to(DEVICE).eval(), inputs, tokens


def real_tokens(tokens: torch.Tensor, token_mask: torch.Tensor | None) -> torch.Tensor:
    return tokens if token_mask is None else tokens[token_mask.bool()]


def run(model, inputs: dict, tokens) -> torch.Tensor:
    with torch.no_grad():
        values, token_mask = tokens(model(**inputs))
    return real_tokens(values, token_mask)


ENCODERS = ["structure", "function", "harmonizer", "brainharmonix"]


@pytest.mark.parametrize("name", ENCODERS)
def test_bfloat16_weights_match_float32(name):
    model, inputs, tokens = encoder_case(name)
    expected = run(model, inputs, tokens)
    bf16 = copy.deepcopy(model).to(torch.bfloat16)
    # Data in bfloat16; TRs stay float32 (the patch length is read from them).
    bf16_inputs = {
        key: value.to(torch.bfloat16) if value.is_floating_point() and key != "repetition_time" else value
        for key, value in inputs.items()
    }
    assert relative_error(run(bf16, bf16_inputs, tokens), expected) < BF16_TOLERANCE


@requires_flash
@pytest.mark.flash_attn_test
@pytest.mark.parametrize("name", ENCODERS)
def test_flash_attention_matches_float32_sdpa(name):
    model, inputs, tokens = encoder_case(name)
    expected = run(model, inputs, tokens)
    flash = copy.deepcopy(model).to(torch.bfloat16)
    flash.set_attn_implementation("flash_attention_2")
    with torch.autocast(DEVICE, dtype=torch.bfloat16):
        actual = run(flash, inputs, tokens)
        sdpa_bf16 = run(copy.deepcopy(model).to(torch.bfloat16), inputs, tokens)
    assert relative_error(actual, expected) < BF16_TOLERANCE
    # Against SDPA at the same precision: the packed varlen layout changes nothing but rounding.
    assert relative_error(actual, sdpa_bf16) < BF16_TOLERANCE / 2


@requires_flash
@pytest.mark.flash_attn_test
@pytest.mark.parametrize("name", ["function", "harmonizer"])
def test_flash_varlen_packing_matches_flash_per_sample(name):
    model, inputs, tokens = encoder_case(name)
    model = model.to(torch.bfloat16)
    model.set_attn_implementation("flash_attention_2")
    with torch.autocast(DEVICE, dtype=torch.bfloat16):
        varlen = run(model, inputs, tokens)
        model.config.token_packing = "per_sample"
        per_sample = run(model, inputs, tokens)
    assert relative_error(varlen, per_sample) < 1e-2


def pretraining_case(name: str):
    generator = torch.Generator().manual_seed(1)
    if name == "structure":
        model = StructureMAEForPreTraining(StructureMAEConfig(**LAYERS, **DECODER))
        inputs = {
            "pixel_values": torch.randn(2, 1, 160, 192, 160, generator=generator),
            "noise": torch.rand(2, 1200, generator=generator),
        }
    elif name == "function":
        config = function_config()
        model = FunctionJEPAForPreTraining(config)
        inputs = fmri_inputs(generator)
        masks = SpatiotemporalMaskSampler.from_config(config)(torch.tensor([18, 9, 5]), generator=generator)
        inputs |= {"context_indices": masks.context_indices, "target_indices": masks.target_indices}
    else:
        config = harmonizer_config()
        model = HarmonizerForPreTraining(config)
        inputs = harmonizer_inputs(config, generator)
    return model.to(DEVICE), {key: value.to(DEVICE) for key, value in inputs.items()}


def loss_and_gradient_norm(model, inputs: dict, autocast: bool) -> tuple[float, float]:
    model.zero_grad()
    with torch.autocast(DEVICE, dtype=torch.bfloat16, enabled=autocast):
        loss = model(**inputs).loss
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), float("inf"))
    return float(loss.detach()), float(norm)


@pytest.mark.parametrize("implementation", ["sdpa", pytest.param("flash_attention_2", marks=[requires_flash])])
@pytest.mark.parametrize("name", ["structure", "function", "harmonizer"])
def test_bfloat16_training_step_matches_float32(name, implementation):
    """The loss and the gradient norm of a bf16-autocast step (what `--mixed_precision bf16` runs) against fp32 SDPA."""
    model, inputs = pretraining_case(name)
    torch.manual_seed(0)
    expected_loss, expected_norm = loss_and_gradient_norm(model, inputs, autocast=False)
    model.set_attn_implementation(implementation)
    torch.manual_seed(0)
    loss, norm = loss_and_gradient_norm(model, inputs, autocast=True)
    assert abs(loss - expected_loss) / abs(expected_loss) < BF16_TOLERANCE
    assert abs(norm - expected_norm) / expected_norm < 5 * BF16_TOLERANCE
