# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""The TR rule: patch length per TR, valid patches, and one answer for the feature extractor and the model."""

import numpy as np
import pytest
import torch

from brainharmonix_hf.modeling.repetition_time import (
    MAX_REPETITION_TIME,
    MIN_REPETITION_TIME,
    patch_length_for_tr,
    valid_time_patches,
)
from brainharmonix_hf.modeling.tape import TAPEPatchEmbedding
from brainharmonix_hf.processing.feature_extraction_fmri import FMRIFeatureExtractor

NUM_TIME_PATCHES = 18


@pytest.mark.parametrize(
    ("repetition_time", "patch_length"),
    [(0.735, 48), (1.47, 24), (2.0, 18), (2.205, 16), (2.5, 14), (3.0, 12), (0.72, 49), (0.8, 44), (1.4, 25)],
)
def test_patch_length_is_the_rounded_window_over_tr(repetition_time, patch_length):
    assert patch_length_for_tr(repetition_time) == patch_length
    assert patch_length_for_tr(torch.tensor(repetition_time, dtype=torch.float32).item()) == patch_length


def test_patch_length_refuses_bad_trs():
    with pytest.raises(ValueError, match="positive"):
        patch_length_for_tr(0.0)
    with pytest.raises(ValueError, match="check that TR is in seconds"):
        patch_length_for_tr(2000.0)


def test_valid_patches_round_up_and_clip():
    frames = torch.tensor([150, 1, 17, 18, 19, 1000])
    lengths = torch.full_like(frames, 18)
    assert valid_time_patches(frames, lengths, NUM_TIME_PATCHES).tolist() == [9, 1, 1, 1, 2, 18]
    with pytest.raises(ValueError, match="at least one real frame"):
        valid_time_patches(torch.tensor([0]), torch.tensor([18]), NUM_TIME_PATCHES)


def test_processor_and_model_agree_on_patch_length_at_every_tr():
    # Every TR of the plausible range on a 1 ms grid, each series exactly two patches long as the extractor counts.
    trs = np.round(np.arange(MIN_REPETITION_TIME, MAX_REPETITION_TIME + 5e-4, 1e-3), 3).tolist()
    extractor = FMRIFeatureExtractor(num_rois=2, atlas="two_rois", num_time_patches=4, normalization="zscore")
    expected = [extractor.patch_length(tr) for tr in trs]
    assert expected[trs.index(2.016)] == 18  # 35.28 / 2.016 = 17.5: half to even, in float32 and float64 alike
    features = extractor(
        [np.ones((2 * length, 2)) for length in expected], repetition_time=trs, layout="time_first", return_tensors="pt"
    )
    assert features["repetition_time"].dtype == torch.float32
    module = TAPEPatchEmbedding(4, 4, base_patch_length=48, window_seconds=35.28).eval()
    with torch.no_grad():
        derived = module(features["fmri_values"], features["repetition_time"], features["attention_mask"])
        given = module(
            features["fmri_values"], features["repetition_time"], features["attention_mask"], features["patch_size"]
        )
    assert derived.num_valid_time_patches.tolist() == [2] * len(trs)
    assert features["patch_size"].tolist() == expected
    assert given.num_valid_time_patches.tolist() == [2] * len(trs)
