"""Token packing: both layouts round-trip, and every model that packs gives, for a whole batch packed into one varlen
sequence, the outputs it gives for each sample alone.

The varlen layout is what flash-attention kernels run (`cu_seq_lens_q/k`, `max_length_q/k`). On CPU it is checked
with two attention implementations on the same packed layout: SDPA with the block-diagonal mask, and a reference kernel
registered like a flash kernel (transformers' flash mask function: it receives the sample boundaries, never a mask)
that runs SDPA on each sample's slice of the packed sequence, as a varlen kernel does. The reference records how many
tokens it computed: exactly the valid ones, never a padded fMRI token.
"""

import itertools
import sys
from pathlib import Path

import pytest
import torch
from huggingface_hub.errors import StrictDataclassClassValidationError
from torch.nn.functional import scaled_dot_product_attention
from transformers import AttentionInterface
from transformers.masking_utils import AttentionMaskInterface, flash_attention_mask

from brainharmonix_hf import (
    FunctionJEPAConfig,
    FunctionJEPAForPreTraining,
    FunctionJEPAModel,
    HarmonizerConfig,
    HarmonizerForPreTraining,
    HarmonizerModel,
    SpatiotemporalMaskSampler,
)
from brainharmonix_hf.modeling.token_packing import (
    attention_inputs,
    leading_tokens,
    pack_tokens,
    packing_layout,
    prepend_tokens,
    unpack_tokens,
)

sys.path.insert(0, str(Path(__file__).parents[1]))
from small_configs import DECODER, LAYER, PREDICTOR

REFERENCE = "varlen_sdpa_reference"
# Query lengths of every sample the reference kernel computed, in call order.
COMPUTED_LENGTHS: list[int] = []
TOLERANCE = {"atol": 2e-5, "rtol": 1e-4}


def varlen_sdpa_reference(module, query, key, value, attention_mask, scaling, dropout=0.0, **kwargs):
    """What a flash kernel computes, on CPU. With sample boundaries (the varlen layout), `query`/`key`/`value`
    `(1, heads, total, head_dim)` hold the samples one after another and each attends to its own slice
    `cu_seq_lens_q[i]:cu_seq_lens_q[i + 1]` only; without them (stacks that pack nothing), plain attention."""
    assert attention_mask is None, "a flash kernel gets sample boundaries, never a mask, from these models"
    if "cu_seq_lens_q" not in kwargs:
        return scaled_dot_product_attention(query, key, value, scale=scaling).transpose(1, 2).contiguous(), None
    boundaries = kwargs["cu_seq_lens_q"].tolist()
    assert torch.equal(kwargs["cu_seq_lens_q"], kwargs["cu_seq_lens_k"]) and query.shape[0] == 1
    assert kwargs["max_length_q"] == max(end - start for start, end in itertools.pairwise(boundaries))
    outputs = []
    for start, end in itertools.pairwise(boundaries):
        COMPUTED_LENGTHS.append(end - start)
        outputs.append(
            scaled_dot_product_attention(
                query[:, :, start:end], key[:, :, start:end], value[:, :, start:end], scale=scaling
            )
        )
    return torch.cat(outputs, dim=2).transpose(1, 2).contiguous(), None


AttentionInterface.register(REFERENCE, varlen_sdpa_reference)
AttentionMaskInterface.register(REFERENCE, flash_attention_mask)


def packed_model(model, implementation: str):
    """`model` set to pack the whole batch (`token_packing="varlen"`) with `implementation`."""
    model.set_attn_implementation(implementation)
    model.config.token_packing = "varlen"
    return model


def alone_and_packed(model, batch: dict, one_sample, implementation: str) -> tuple[list, object]:
    """Outputs of each of the three samples run alone (per-sample layout, SDPA), and of the batch packed whole."""
    with torch.no_grad():
        alone = [model(**one_sample(batch, index)) for index in range(3)]
        packed = packed_model(model, implementation)(**batch)
    return alone, packed


def per_sample_and_packed_steps(model, batch: dict, implementation: str) -> tuple:
    """`(outputs, gradients)` of a training step in the per-sample layout with SDPA, then packed whole with
    `implementation`; gradients of the parameters that get one."""
    assert model.config.token_packing == "per_sample" and model.config._attn_implementation == "sdpa"
    steps = []
    for packed in (False, True):
        model.zero_grad()
        if packed:
            packed_model(model, implementation)
        outputs = model(**batch)
        outputs.loss.backward()
        steps.append(
            (outputs, [parameter.grad.clone() for parameter in model.parameters() if parameter.grad is not None])
        )
    return steps


def assert_same_gradients(gradients: list, reference: list) -> None:
    assert len(gradients) == len(reference)
    for gradient, expected in zip(gradients, reference, strict=True):
        assert torch.isfinite(gradient).all()
        torch.testing.assert_close(gradient, expected, atol=1e-5, rtol=1e-3)


@pytest.fixture
def computed_lengths():
    COMPUTED_LENGTHS.clear()
    yield COMPUTED_LENGTHS
    COMPUTED_LENGTHS.clear()


# ---------------------------------------------------------------------------------------------------- layouts


@pytest.mark.parametrize("layout", ["per_sample", "varlen"])
def test_pack_unpack_round_trip_in_both_layouts(layout):
    hidden = torch.randn(3, 7, 5)
    hidden[0, 1] = float("nan")  # a padded token's content never reaches the packed sequence
    mask = torch.tensor([[1, 0, 1, 1, 0, 0, 1], [0, 0, 0, 0, 0, 0, 1], [1, 1, 1, 1, 1, 1, 1]])
    packed = pack_tokens(hidden, mask, layout)
    assert torch.isfinite(packed.hidden_states).all()
    if layout == "varlen":
        assert packed.hidden_states.shape == (1, 12, 5)
        assert packed.cu_seq_lens.tolist() == [0, 4, 5, 12] and packed.max_length == 7
        assert packed.mask is None  # every packed token is real: the boundaries say where samples end
        torch.testing.assert_close(packed.hidden_states[0, :4], hidden[0, [0, 2, 3, 6]])
        torch.testing.assert_close(packed.hidden_states[0, 4], hidden[1, 6])
    else:
        assert packed.hidden_states.shape == (3, 7, 5)
        torch.testing.assert_close(packed.hidden_states[0, :4], hidden[0, [0, 2, 3, 6]])
    expected = torch.where(mask.bool().unsqueeze(-1), hidden, 0.0)
    torch.testing.assert_close(unpack_tokens(packed, packed.hidden_states), expected)


@pytest.mark.parametrize("layout", ["per_sample", "varlen"])
def test_prepended_tokens_lead_every_sample(layout):
    hidden = torch.randn(3, 6, 4)
    mask = torch.tensor([[1, 1, 0, 0, 0, 0], [0, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1]])
    prefix = torch.randn(3, 2, 4)
    packed = prepend_tokens(pack_tokens(hidden, mask, layout), prefix)
    torch.testing.assert_close(leading_tokens(packed, packed.hidden_states, 2), prefix)
    expected = torch.cat([prefix, torch.where(mask.bool().unsqueeze(-1), hidden, 0.0)], dim=1)
    torch.testing.assert_close(unpack_tokens(packed, packed.hidden_states), expected)
    if layout == "varlen":
        assert packed.cu_seq_lens.tolist() == [0, 4, 10, 18] and packed.max_length == 8
        assert packed.mask is None


def test_unpadded_batch_is_packed_without_copies():
    hidden = torch.randn(2, 5, 3)
    for layout in ("per_sample", "varlen"):
        packed = pack_tokens(hidden, torch.ones(2, 5), layout)
        assert packed.complete and packed.hidden_states.data_ptr() == hidden.data_ptr()
        assert unpack_tokens(packed, packed.hidden_states).data_ptr() == hidden.data_ptr()


def test_varlen_attention_inputs_follow_the_implementation():
    config = FunctionJEPAConfig(**LAYER, roi_tables="placeholder", token_packing="varlen")
    packed = pack_tokens(torch.randn(2, 4, 3), torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]]), packing_layout(config))
    config._attn_implementation = "sdpa"
    mask, kwargs = attention_inputs(config, packed)
    same_sample = torch.tensor([0, 0, 0, 1, 1])
    assert kwargs == {} and torch.equal(mask[0, 0], same_sample[:, None] == same_sample[None, :])
    config._attn_implementation = REFERENCE
    mask, kwargs = attention_inputs(config, packed)
    assert mask is None and kwargs["cu_seq_lens_q"].tolist() == [0, 3, 5] and kwargs["max_length_k"] == 3


def test_auto_packs_the_whole_batch_for_kernels_that_take_boundaries():
    config = HarmonizerConfig(**LAYER, **DECODER)
    config._attn_implementation = "sdpa"
    assert packing_layout(config) == "per_sample"
    for implementation in ("flash_attention_2", REFERENCE):
        config._attn_implementation = implementation
        assert packing_layout(config) == "varlen"
    config.token_packing = "per_sample"
    assert packing_layout(config) == "per_sample"
    with pytest.raises(StrictDataclassClassValidationError, match="token_packing must be one of"):
        HarmonizerConfig(token_packing="dense")


# ---------------------------------------------------------------------------------------------------- models


def function_config(**overrides) -> FunctionJEPAConfig:
    return FunctionJEPAConfig(
        **(LAYER | {"num_hidden_layers": 2}),
        **PREDICTOR,
        num_rois=6,
        num_time_patches=5,
        num_geometric_modes=4,
        num_gradient_components=3,
        roi_tables="placeholder",
        **overrides,
    )


def fmri_batch(generator: torch.Generator) -> dict:
    """Three series at TR 2 s (patch 18 frames): 5, 2 and 3 of 5 time patches real; padded frames hold NaN."""
    frames = [90, 30, 50]
    values = torch.randn(3, 6, 90, generator=generator)
    attention_mask = torch.zeros(3, 90, dtype=torch.long)
    for index, count in enumerate(frames):
        attention_mask[index, :count] = 1
        values[index, :, count:] = float("nan")
    return {"fmri_values": values, "repetition_time": torch.full((3,), 2.0), "attention_mask": attention_mask}


def one_sample(batch: dict, index: int) -> dict:
    """Sample `index` alone (its frames only)."""
    frames = int(batch["attention_mask"][index].sum())
    return {
        "fmri_values": batch["fmri_values"][index : index + 1, :, :frames],
        "repetition_time": batch["repetition_time"][index : index + 1],
    }


@pytest.mark.parametrize("implementation", ["sdpa", "eager", REFERENCE])
def test_function_encoder_packed_batch_equals_each_series_alone(implementation, computed_lengths):
    torch.manual_seed(0)
    model = FunctionJEPAModel(function_config()).eval()
    alone, packed = alone_and_packed(model, fmri_batch(torch.Generator().manual_seed(1)), one_sample, implementation)
    for index, single in enumerate(alone):
        valid = packed.token_mask[index].bool()
        assert torch.equal(valid, single.token_mask[0].bool())
        torch.testing.assert_close(
            packed.last_hidden_state[index, valid], single.last_hidden_state[0, valid], **TOLERANCE
        )
        assert (packed.last_hidden_state[index, ~valid] == 0).all()
        torch.testing.assert_close(packed.pooler_output[index], single.pooler_output[0], **TOLERANCE)
    if implementation == REFERENCE:
        # Two layers, each computing exactly the 6 ROIs x (5, 2, 3) valid patches.
        assert computed_lengths == [30, 12, 18] * 2


@pytest.mark.parametrize("implementation", ["sdpa", REFERENCE])
def test_jepa_pretraining_packed_batch_equals_per_sample_layout(implementation, computed_lengths):
    torch.manual_seed(0)
    config = function_config(token_packing="per_sample")
    model = FunctionJEPAForPreTraining(config)
    batch = fmri_batch(torch.Generator().manual_seed(2))
    masks = SpatiotemporalMaskSampler.from_config(config)(
        torch.tensor([5, 2, 3]), generator=torch.Generator().manual_seed(3)
    )
    batch |= {"context_indices": masks.context_indices, "target_indices": masks.target_indices}
    (reference, reference_gradients), (packed, gradients) = per_sample_and_packed_steps(model, batch, implementation)
    torch.testing.assert_close(packed.loss, reference.loss, **TOLERANCE)
    torch.testing.assert_close(packed.predictions, reference.predictions, **TOLERANCE)
    torch.testing.assert_close(packed.targets, reference.targets, **TOLERANCE)
    assert_same_gradients(gradients, reference_gradients)
    if implementation == REFERENCE:
        target_lengths = computed_lengths[:6]  # the target encoder runs first: whole series, valid patches only
        assert target_lengths == [30, 12, 18] * 2


def harmonizer_config(**overrides) -> HarmonizerConfig:
    return HarmonizerConfig(
        **(LAYER | {"num_hidden_layers": 2}),
        **DECODER,
        num_fmri_tokens=12,
        num_t1_tokens=4,
        latent_size=24,
        num_hub_tokens=3,
        decoder_hidden_size=16,
        decoder_intermediate_size=32,
        **overrides,
    )


def harmonizer_batch(generator: torch.Generator) -> dict:
    """Subject 0: both modalities, 5 of 12 fMRI tokens valid; subject 1: fMRI only, all valid; subject 2: T1 only.
    Invalid fMRI tokens hold NaN."""
    fmri_mask = torch.zeros(3, 12, dtype=torch.long)
    fmri_mask[0, :5] = 1
    fmri_mask[1] = 1
    fmri_latents = torch.randn(3, 12, 24, generator=generator)
    fmri_latents[~fmri_mask.bool()] = float("nan")
    return {
        "fmri_latents": fmri_latents,
        "fmri_token_mask": fmri_mask,
        "t1_latents": torch.randn(3, 4, 24, generator=generator),
        "t1_token_mask": torch.tensor([1, 0, 1]).unsqueeze(1).expand(-1, 4),
    }


def harmonizer_subject(batch: dict, index: int) -> dict:
    return {name: values[index : index + 1] for name, values in batch.items()}


@pytest.mark.parametrize("implementation", ["sdpa", "eager", REFERENCE])
def test_harmonizer_packed_batch_equals_each_subject_alone(implementation, computed_lengths):
    torch.manual_seed(0)
    model = HarmonizerModel(harmonizer_config()).eval()
    batch = harmonizer_batch(torch.Generator().manual_seed(4))
    alone, packed = alone_and_packed(model, batch, harmonizer_subject, implementation)
    for index, single in enumerate(alone):
        torch.testing.assert_close(packed.last_hidden_state[index], single.last_hidden_state[0], **TOLERANCE)
        torch.testing.assert_close(packed.pooler_output[index], single.pooler_output[0], **TOLERANCE)
    if implementation == REFERENCE:
        # CLS + 3 hub tokens + the valid latents: 5 fMRI + 4 T1, 12 fMRI, 4 T1; in each of the two layers.
        assert computed_lengths == [4 + 9, 4 + 12, 4 + 4] * 2


@pytest.mark.parametrize("implementation", ["sdpa", REFERENCE])
def test_harmonizer_pretraining_packed_batch_equals_per_sample_layout(implementation):
    torch.manual_seed(0)
    model = HarmonizerForPreTraining(harmonizer_config(token_packing="per_sample"))
    batch = harmonizer_batch(torch.Generator().manual_seed(5))
    (reference, reference_gradients), (packed, gradients) = per_sample_and_packed_steps(model, batch, implementation)
    torch.testing.assert_close(packed.loss, reference.loss, **TOLERANCE)
    torch.testing.assert_close(packed.reconstruction, reference.reconstruction, **TOLERANCE)
    assert_same_gradients(gradients, reference_gradients)
