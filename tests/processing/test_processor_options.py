"""Feature-extractor options given to `AutoProcessor.from_pretrained` / `BrainHarmonixProcessor.from_pretrained` reach
the extractor they belong to, or are refused: never dropped."""

import numpy as np
import pytest
from nibabel.processing import resample_to_output
from transformers import AutoProcessor

from brainharmonix_hf import BrainHarmonixConfig, BrainHarmonixProcessor, T1VolumeFeatureExtractor, sample_data
from brainharmonix_hf.processing.nifti_io import NiftiInputError


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A saved default processor next to its config, and the saved files' bytes."""
    directory = tmp_path_factory.mktemp("processor")
    config = BrainHarmonixConfig()
    config.save_pretrained(directory)
    BrainHarmonixProcessor.for_config(config).save_pretrained(directory)
    return directory, {path.name: path.read_bytes() for path in directory.iterdir()}


@pytest.mark.parametrize("loader", [AutoProcessor, BrainHarmonixProcessor], ids=["AutoProcessor", "direct"])
def test_options_reach_the_feature_extractors(saved, loader):
    directory, files = saved
    processor = loader.from_pretrained(
        directory, resample=True, check_mni_space=False, t1_normalization="brain", fmri_normalization="zscore"
    )
    assert isinstance(processor, BrainHarmonixProcessor)
    t1, fmri = processor.t1_feature_extractor, processor.fmri_feature_extractor
    assert (t1.resample, t1.check_mni_space, t1.normalization) == (True, False, "brain")
    assert fmri.normalization == "zscore"
    # Everything not given keeps its saved value, and the saved files are untouched.
    default = loader.from_pretrained(directory)
    assert default.t1_feature_extractor.resample is False and default.fmri_feature_extractor.normalization == "none"
    assert {**t1.to_dict(), "resample": False, "check_mni_space": True, "normalization": "whole_volume"} == (
        default.t1_feature_extractor.to_dict()
    )
    assert {path.name: path.read_bytes() for path in directory.iterdir()} == files


def test_resample_given_at_load_time_changes_what_the_processor_accepts(saved):
    """A 2 mm MNI T1 is refused by the saved processor and processed by one loaded with `resample=True`."""
    directory, _ = saved
    two_mm = resample_to_output(sample_data.load_t1_sample(), voxel_sizes=2.0, order=1)
    with pytest.raises(NiftiInputError, match="Pass `resample=True`"):
        AutoProcessor.from_pretrained(directory)(t1=two_mm)
    pixel_values = AutoProcessor.from_pretrained(directory, resample=True)(t1=two_mm)["pixel_values"]
    assert pixel_values.shape == (1, 1, 160, 192, 160)
    np.testing.assert_array_equal(pixel_values, T1VolumeFeatureExtractor(resample=True)(two_mm)["pixel_values"])
    # The same brain as the 1 mm template, through two trilinear resamplings.
    on_grid = T1VolumeFeatureExtractor()(sample_data.load_t1_sample())["pixel_values"]
    assert np.corrcoef(pixel_values.reshape(-1), on_grid.reshape(-1))[0, 1] > 0.99  # measured: 0.997


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"resampel": True}, r"`resampel` is not an option of BrainHarmonixProcessor\.from_pretrained\. T1 options: "),
        ({"normalization": "brain"}, r"`normalization` is an option of both .* `t1_normalization=` or `fmri_normal"),
        ({"t1_normalization": "minmax"}, r"`normalization` must be one of"),
    ],
)
def test_unknown_ambiguous_or_invalid_options_are_refused(saved, options, message):
    directory, _ = saved
    for loader in (AutoProcessor, BrainHarmonixProcessor):
        with pytest.raises(ValueError, match=message):
            loader.from_pretrained(directory, **options)


def test_for_model_loads_the_saved_processor_and_warns_without_one(tmp_path):
    config = BrainHarmonixConfig()
    with_processor, without = tmp_path / "with", tmp_path / "without"
    config.save_pretrained(with_processor)
    config.save_pretrained(without)
    processor = BrainHarmonixProcessor.for_config(config)
    processor.fmri_feature_extractor.normalization = "zscore"
    processor.save_pretrained(with_processor)
    assert BrainHarmonixProcessor.for_model(with_processor, config).fmri_feature_extractor.normalization == "zscore"
    with pytest.warns(UserWarning, match="has no saved processor"):
        fallback = BrainHarmonixProcessor.for_model(without, config)
    assert fallback.fmri_feature_extractor.normalization == "none"
