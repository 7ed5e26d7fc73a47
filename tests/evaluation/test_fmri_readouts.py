"""Readouts of FunctionJEPA tokens (`evaluation.fmri_readouts`): whitening, the three readouts by hand on a padded
token grid, invariance to the feature basis, refusals."""

import numpy as np
import pytest
import torch

from brainharmonix_hf.evaluation.fmri_readouts import FMRI_READOUTS, fmri_readout, readout_of, whiten_tokens


def test_whitening_leaves_the_shrunk_covariance():
    rng = np.random.default_rng(0)
    tokens = rng.normal(size=(200, 5)) @ np.diag([10.0, 3.0, 1.0, 0.3, 0.01]) + 7.0
    centred = tokens - tokens.mean(axis=0)
    covariance = centred.T @ centred / len(tokens)
    for shrinkage in (1e-6, 0.1, 1.0):
        whitened = whiten_tokens(tokens, shrinkage)
        np.testing.assert_allclose(whitened.mean(axis=0), 0.0, atol=1e-9)
        shrunk = (1 - shrinkage) * covariance + shrinkage * np.trace(covariance) / 5 * np.eye(5)
        values, vectors = np.linalg.eigh(shrunk)
        inverse_root = vectors @ np.diag(values**-0.5) @ vectors.T
        np.testing.assert_allclose(whitened.T @ whitened / len(tokens), inverse_root @ covariance @ inverse_root)
    # Nearly no shrinkage: unit covariance; shrinkage 1: centred and scaled only, the directions keep their variances.
    nearly = whiten_tokens(tokens, 1e-9)
    np.testing.assert_allclose(nearly.T @ nearly / len(tokens), np.eye(5), atol=1e-3)
    scaled = whiten_tokens(tokens, 1.0)
    np.testing.assert_allclose(scaled, centred / np.sqrt(np.trace(covariance) / 5))
    with pytest.raises(ValueError, match="shrinkage must be in"):
        whiten_tokens(tokens, 0.0)


def _fisher_z_upper(vectors):
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.arctanh((unit @ unit.T)[np.triu_indices(len(vectors), k=1)])


def test_readouts_by_hand_on_a_padded_grid():
    # 2 series, 4 ROIs x 3 time patches, 6 features; series 1 has 2 valid patches, its third holds garbage.
    rng = np.random.default_rng(1)
    num_rois, num_patches, hidden = 4, 3, 6
    tokens = rng.normal(size=(2, num_rois, num_patches, hidden))
    tokens[1, :, 2] = 1e6
    valid_patches = [3, 2]
    mask = np.zeros((2, num_rois, num_patches), dtype=np.int64)
    for index, count in enumerate(valid_patches):
        mask[index, :, :count] = 1
    last_hidden_state = torch.from_numpy(tokens.reshape(2, -1, hidden))
    token_mask = torch.from_numpy(mask.reshape(2, -1))
    results = {name: fmri_readout(last_hidden_state, token_mask, num_rois, name) for name in FMRI_READOUTS}
    for index, count in enumerate(valid_patches):
        grid = tokens[index, :, :count]
        whitened = whiten_tokens(grid.reshape(-1, hidden)).reshape(num_rois, count, hidden)
        np.testing.assert_allclose(results["roi_similarity"][index], _fisher_z_upper(whitened.mean(axis=1)))
        expected = np.mean([_fisher_z_upper(whitened[:, patch]) for patch in range(count)], axis=0)
        np.testing.assert_allclose(results["token_connectivity"][index], expected)
        np.testing.assert_allclose(results["mean"][index], grid.mean(axis=(0, 1)))
    assert results["roi_similarity"].shape == results["token_connectivity"].shape == (2, 6)
    assert results["mean"].shape == (2, hidden)


def test_whitened_readouts_do_not_depend_on_the_feature_basis():
    # Whitening makes the ROI similarity blind to an invertible linear map (and offset) of the features: no direction
    # of large variance dominates. Without whitening (shrinkage 1) the map changes it.
    rng = np.random.default_rng(2)
    tokens = torch.from_numpy(rng.normal(size=(1, 5 * 4, 8)))
    mixing = torch.from_numpy((rng.normal(size=(8, 8)) + 3 * np.eye(8)) @ np.diag([10.0, 5, 3, 1, 1, 1, 0.5, 0.3]))
    mask = torch.ones(1, 20, dtype=torch.long)
    for readout in ("roi_similarity", "token_connectivity"):
        before = fmri_readout(tokens, mask, 5, readout, shrinkage=1e-12)
        after = fmri_readout(tokens @ mixing + 3.0, mask, 5, readout, shrinkage=1e-12)
        np.testing.assert_allclose(after, before, atol=1e-5)
        unwhitened = fmri_readout(tokens @ mixing, mask, 5, readout, shrinkage=1.0)
        assert np.abs(unwhitened - fmri_readout(tokens, mask, 5, readout, shrinkage=1.0)).max() > 0.1


def test_readout_refusals():
    tokens, mask = torch.zeros(1, 12, 4), torch.ones(1, 12, dtype=torch.long)
    with pytest.raises(ValueError, match="readout must be one of"):
        fmri_readout(tokens, mask, 4, "cls")
    with pytest.raises(ValueError, match="do not form a grid of 5 ROIs"):
        fmri_readout(tokens, mask, 5)
    with pytest.raises(ValueError, match="readout must be one of"):
        readout_of("cls")


def test_embed_series_represents_each_batch_of_an_encoder_or_a_composite(lemon_series, tiny_model_dir):
    """One embedding loop for every model: pooled outputs by default, a FunctionJEPA readout through `represent`,
    the same numbers whatever the batch size and as one forward pass of the same inputs."""
    from brainharmonix_hf import BrainHarmonixModel, BrainHarmonixProcessor
    from brainharmonix_hf.evaluation.fmri_windows import embed_series

    model = BrainHarmonixModel.from_pretrained(tiny_model_dir).eval()
    processor = BrainHarmonixProcessor.from_pretrained(tiny_model_dir)
    encoder, extractor = model.function, processor.fmri_feature_extractor
    series = [lemon_series[:, 50 * index : 50 * index + 50 - 10 * index] for index in range(3)]
    inputs = extractor(series, repetition_time=1.4, layout="rois_first", return_tensors="pt")
    with torch.no_grad():
        outputs = encoder(**inputs)
        pooled = model(**processor(fmri=series, repetition_time=1.4, layout="rois_first", return_tensors="pt"))
    readout = fmri_readout(outputs.last_hidden_state, outputs.token_mask, encoder.config.num_rois, "token_connectivity")
    for batch_size in (1, 3):
        np.testing.assert_allclose(
            embed_series(encoder, extractor, series, 1.4, batch_size, represent=readout_of("token_connectivity")),
            readout,
            atol=1e-6,
        )
        np.testing.assert_allclose(
            embed_series(model, processor, series, [1.4] * 3, batch_size), pooled.pooler_output.numpy(), atol=1e-5
        )
    assert readout.shape == (3, encoder.config.num_rois * (encoder.config.num_rois - 1) // 2)
    assert pooled.pooler_output.shape == (3, model.config.harmonizer_config.hidden_size)
