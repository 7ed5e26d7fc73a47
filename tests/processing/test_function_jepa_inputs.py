"""FunctionJEPA at its inputs: ROI count and TR checks, ROI tables by explicit source, Schaefer-400 in either order,
pooled and unpadded outputs, and the evaluation-harness path (one sample at a time, `default_collate`)."""

import numpy as np
import pytest
import torch
from huggingface_hub.errors import StrictDataclassClassValidationError
from small_configs import small_brainharmonix_config
from torch.utils.data import default_collate
from transformers.testing_utils import CaptureLogger
from transformers.utils import logging

from brainharmonix_hf import BrainHarmonixModel, FMRIFeatureExtractor, FunctionJEPAConfig, FunctionJEPAModel
from brainharmonix_hf.modeling.modeling_function_jepa import split_valid_tokens
from brainharmonix_hf.processing.atlases import (
    SCHAEFER400_7NETWORKS,
    SCHAEFER400_17NETWORKS,
    schaefer400_permutation,
)
from brainharmonix_hf.roi_positions.tables import load_roi_tables

SMALL = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}


def schaefer_config(atlas=SCHAEFER400_7NETWORKS, **overrides) -> FunctionJEPAConfig:
    return FunctionJEPAConfig(atlas=atlas, **(SMALL | overrides))


def user_config(**overrides) -> FunctionJEPAConfig:
    """A 10-ROI user atlas, 4 patches of 8 s."""
    settings = {
        "atlas": "my_atlas10",
        "num_rois": 10,
        "num_time_patches": 4,
        "window_seconds": 8.0,
        "base_patch_length": 8,
        "num_geometric_modes": 5,
        "num_gradient_components": 3,
    }
    return FunctionJEPAConfig(**(SMALL | settings | overrides))


def test_wrong_roi_count_is_a_value_error_at_the_input():
    model = FunctionJEPAModel(user_config(roi_tables="placeholder")).eval()
    with pytest.raises(
        ValueError,
        match=r"fmri_values must have shape \(batch, num_rois=10, num_timepoints\), got "
        r"\(1, 12, 16\)\. Parcellate with the model's atlas",
    ):
        model(torch.randn(1, 12, 16), repetition_time=torch.tensor([1.0]))
    composite = BrainHarmonixModel(small_brainharmonix_config(image_size=(32, 32, 32))).eval()
    with pytest.raises(ValueError, match=r"num_rois=400, num_timepoints\), got \(2, 399, 30\)"):
        composite(fmri_values=torch.randn(2, 399, 30), repetition_time=torch.tensor([2.0, 2.0]))


def test_boolean_repetition_time_is_refused_by_the_model():
    model = FunctionJEPAModel(user_config(roi_tables="placeholder")).eval()
    with pytest.raises(ValueError, match="repetition_time is a boolean"):
        model(torch.randn(1, 10, 16), repetition_time=torch.tensor([True]))
    with pytest.raises(ValueError, match="repetition_time is a boolean"):
        model(torch.randn(1, 10, 16), repetition_time=True)


def test_an_atlas_without_tables_needs_its_tables_or_an_explicit_placeholder(tmp_path):
    with pytest.raises(
        ValueError,
        match=r"No ROI position tables are registered for atlas 'my_atlas10'.*roi_tables='custom'.*"
        r"roi_tables='placeholder'",
    ):
        FunctionJEPAModel(user_config())
    logger = logging.get_logger("brainharmonix_hf.modeling.roi_position_embedding")
    with CaptureLogger(logger) as captured:
        FunctionJEPAModel(user_config(roi_tables="placeholder", atlas="my_atlas_logged"))
    assert "starts with placeholder ROI tables (roi_tables='placeholder')" in captured.out
    model = FunctionJEPAModel(user_config(roi_tables="custom")).eval()
    inputs = {"fmri_values": torch.randn(1, 10, 20), "repetition_time": torch.tensor([1.0])}
    with pytest.raises(ValueError, match=r"ROI position tables were never set .*set_roi_tables"):
        model(**inputs)
    generator = torch.Generator().manual_seed(0)
    model.set_roi_tables(torch.randn(10, 5, generator=generator), torch.randn(10, 3, generator=generator))
    model.save_pretrained(tmp_path)
    loaded = FunctionJEPAModel.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(**inputs).pooler_output, model(**inputs).pooler_output)


def test_too_many_gradients_for_a_small_atlas_is_a_config_error_naming_the_field():
    message = r"num_gradient_components=30 but atlas 'my_atlas10' has 10 ROIs.*set num_gradient_components to at most 8"
    with pytest.raises(StrictDataclassClassValidationError, match=message):
        user_config(roi_tables="custom", num_gradient_components=30)


def test_seventeen_network_model_uses_the_permuted_tables_and_embeds_the_same(lemon_schaefer400):
    tables = load_roi_tables(SCHAEFER400_7NETWORKS)
    to_17 = torch.from_numpy(schaefer400_permutation(SCHAEFER400_7NETWORKS, SCHAEFER400_17NETWORKS))
    torch.manual_seed(0)
    model_7 = FunctionJEPAModel(schaefer_config()).eval()
    model_17 = FunctionJEPAModel(schaefer_config(SCHAEFER400_17NETWORKS)).eval()
    assert torch.equal(model_17.roi_positions.geometric_harmonics, tables.geometric_harmonics[to_17])
    assert torch.equal(model_17.roi_positions.functional_gradients, tables.functional_gradients[to_17])
    state = {
        k: v
        for k, v in model_7.state_dict().items()
        if "roi_positions.geometric_harmonics" not in k and "roi_positions.functional_gradients" not in k
    }
    model_17.load_state_dict(state, strict=False)
    series = torch.from_numpy(lemon_schaefer400[:, :60]).unsqueeze(0)
    with torch.no_grad():
        pooled_7 = model_7(series, repetition_time=torch.tensor([1.4])).pooler_output
        pooled_17 = model_17(series[:, to_17], repetition_time=torch.tensor([1.4])).pooler_output
    torch.testing.assert_close(pooled_17, pooled_7, atol=1e-5, rtol=1e-4)


def test_pooler_output_is_the_mean_of_the_valid_tokens_and_split_valid_tokens_drops_padding():
    torch.manual_seed(0)
    model = FunctionJEPAModel(user_config(roi_tables="placeholder")).eval()
    fmri_values = torch.randn(2, 10, 32)
    attention_mask = torch.ones(2, 32, dtype=torch.long)
    attention_mask[1, 10:] = 0  # 10 frames at TR 1 s: 2 of 4 patches
    with torch.no_grad():
        outputs = model(fmri_values, repetition_time=torch.tensor([1.0, 1.0]), attention_mask=attention_mask)
    tokens = split_valid_tokens(outputs.last_hidden_state, outputs.token_mask)
    assert [tuple(t.shape) for t in tokens] == [(40, 32), (20, 32)]
    torch.testing.assert_close(outputs.pooler_output, torch.stack([t.mean(dim=0) for t in tokens]))


def test_single_samples_of_different_lengths_and_trs_collate_and_match_the_batched_path(lemon_schaefer400):
    extractor = FMRIFeatureExtractor(normalization="zscore")
    samples = [(lemon_schaefer400[:, :100], 1.4), (lemon_schaefer400[:, ::2][:, :40], 2.8)]
    items = [
        extractor(
            series, repetition_time=tr, layout="rois_first", padding="max_length", unbatched=True, return_tensors="pt"
        )
        for series, tr in samples
    ]
    # Default shortest TR 0.72 s (HCP): 18 patches of round(35.28 / 0.72) = 49 frames.
    assert items[0]["fmri_values"].shape == (400, extractor.max_length) == (400, 18 * 49)
    assert items[0]["repetition_time"].shape == () and items[1]["attention_mask"].sum() == 40
    batch = default_collate(items)
    assert batch["fmri_values"].shape == (2, 400, 882) and batch["repetition_time"].tolist() == pytest.approx(
        [1.4, 2.8]
    )
    torch.manual_seed(0)
    model = FunctionJEPAModel(schaefer_config()).eval()
    batched = extractor(
        [s for s, _ in samples], repetition_time=[tr for _, tr in samples], layout="rois_first", return_tensors="pt"
    )
    with torch.no_grad():
        torch.testing.assert_close(model(**batch).pooler_output, model(**batched).pooler_output)
    with pytest.raises(ValueError, match="unbatched=True prepares one series with padding='max_length'"):
        extractor(samples[0][0], repetition_time=1.4, layout="rois_first", unbatched=True)
    long_run = np.tile(lemon_schaefer400, 2)[:, :1000]  # TR 0.5 s: 71-frame patches, 15 of them
    with pytest.raises(
        ValueError, match=r"needs 1065 frames, more than max_length=882 .*Lower shortest_repetition_time"
    ):
        extractor(long_run, repetition_time=0.5, layout="rois_first", padding="max_length")


def test_a_long_hcp_run_pads_to_max_length_and_saved_processors_keep_their_shortest_tr(tmp_path, lemon_schaefer400):
    hcp_run = np.tile(lemon_schaefer400, 2)[:, :1200]  # 1200 frames at TR 0.72 s, as an HCP run: cropped to 18 x 49
    extractor = FMRIFeatureExtractor(normalization="zscore")
    with pytest.warns(UserWarning, match=r"last 318 frames"):
        item = extractor(hcp_run, repetition_time=0.72, layout="rois_first", padding="max_length", unbatched=True)
    assert item["fmri_values"].shape == (400, 882) and int(item["attention_mask"].sum()) == 882
    # A processor saved before the default changed (shortest TR 0.735 s, UK Biobank) loads with its own value.
    FMRIFeatureExtractor(shortest_repetition_time=0.735).save_pretrained(tmp_path)
    assert FMRIFeatureExtractor.from_pretrained(tmp_path).max_length == 18 * 48
