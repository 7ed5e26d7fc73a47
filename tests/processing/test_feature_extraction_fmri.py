import gzip
import json
import os
import unittest

import nibabel as nib
import numpy as np
import pytest
import torch
from hf_common.upstream.test_sequence_feature_extraction_common import SequenceFeatureExtractionTestMixin
from nibabel.testing import data_path
from nilearn.maskers import NiftiLabelsMasker
from transformers import AutoFeatureExtractor

from brainharmonix_hf import FunctionJEPAConfig, FunctionJEPAModel
from brainharmonix_hf.processing.feature_extraction_fmri import FMRIFeatureExtractor

NUM_ROIS = 6
rng = np.random.default_rng(0)


class FMRIFeatureExtractionTester:
    """Inputs for transformers' sequence feature-extraction tests: time-first `(frames, num_rois)` series, as `pad`
    (which pads axis 0) receives them."""

    batch_size = 7
    min_seq_length = 40
    max_seq_length = 160
    seq_length_diff = (max_seq_length - min_seq_length) // (batch_size - 1)
    feature_size = NUM_ROIS

    def prepare_feat_extract_dict(self):
        return {
            "num_rois": self.feature_size,
            "atlas": "tiny6",
            "num_time_patches": 4,
            "normalization": "zscore",
            "padding_value": 0.0,
        }

    def prepare_inputs_for_common(self, equal_length=False, numpify=False):
        lengths = (
            [self.max_seq_length] * self.batch_size
            if equal_length
            else [self.min_seq_length + index * self.seq_length_diff for index in range(self.batch_size)]
        )
        series = [rng.normal(size=(length, self.feature_size)) for length in lengths]
        return series if numpify else [s.tolist() for s in series]


class FMRIFeatureExtractionTest(SequenceFeatureExtractionTestMixin, unittest.TestCase):
    """transformers' 14 common tests (saving, JSON, `pad`, truncation, attention masks), none skipped."""

    feature_extraction_class = FMRIFeatureExtractor

    def setUp(self):
        self.feat_extract_tester = FMRIFeatureExtractionTester()


def series(num_timepoints, num_rois=NUM_ROIS, seed=0):
    """A ROI-first `(num_rois, num_timepoints)` series with ROI-specific offsets and scales."""
    generator = np.random.default_rng(seed)
    return generator.normal(size=(num_rois, num_timepoints)) * np.arange(1, num_rois + 1)[:, None] + 10.0


def extractor(**kwargs):
    """An extractor for a 6-ROI user atlas numbered 1..6."""
    return FMRIFeatureExtractor(num_rois=NUM_ROIS, atlas="tiny6", **kwargs)


def test_mixed_tr_batch_is_padded_to_whole_patches_and_masked():
    first, second = series(30), series(100, seed=1)
    out = extractor()([first, second], repetition_time=[2.0, 0.735], layout="rois_first", return_tensors="pt")
    # TR 2.0 -> 18-frame patches (30 frames -> 36); TR 0.735 -> 48-frame patches (100 frames -> 144).
    assert out["fmri_values"].shape == (2, NUM_ROIS, 144) and out["fmri_values"].dtype == torch.float32
    assert out["attention_mask"].sum(-1).tolist() == [30, 100]
    assert out["repetition_time"].dtype == torch.float32
    torch.testing.assert_close(out["repetition_time"], torch.tensor([2.0, 0.735]))
    torch.testing.assert_close(out["fmri_values"][0, :, :30], torch.from_numpy(first).float())
    torch.testing.assert_close(out["fmri_values"][1, :, :100], torch.from_numpy(second).float())
    assert out["fmri_values"][0, :, 30:].abs().sum() == 0


def test_declared_layouts_agree_and_layout_is_required():
    data = series(25)
    rois_first = extractor()(data, repetition_time=2.0, layout="rois_first", return_tensors="np")
    time_first = extractor()(torch.from_numpy(data.T), repetition_time=2.0, layout="time_first", return_tensors="np")
    np.testing.assert_array_equal(rois_first["fmri_values"], time_first["fmri_values"])
    with pytest.raises(ValueError, match=r"layout must be declared.*never guessed"):
        extractor()(data, repetition_time=2.0)


@pytest.mark.parametrize(
    ("repetition_time", "message"),
    [
        (None, "repetition_time is missing"),
        (0.0, "must be a positive number of seconds"),
        (-2.0, "must be a positive number of seconds"),
        (float("nan"), "must be a positive number of seconds"),
        (0.05, r"outside the plausible range \[0.1, 10.0\]"),
        (2000.0, "looks like milliseconds: pass 2"),
        ([2.0, 2.0, 2.0], "3 values for 2 series"),
    ],
)
def test_bad_repetition_times_are_refused(repetition_time, message):
    with pytest.raises(ValueError, match=message):
        extractor()([series(20), series(20)], repetition_time=repetition_time, layout="rois_first")


def test_bad_series_are_refused():
    with_nan, with_inf = series(20), series(20)
    with_nan[2, 5] = np.nan
    with_inf[0, 1] = np.inf
    with pytest.raises(ValueError, match=r"Series 1 has 1 NaN/Inf values \(first at frame 5, ROI 2\)"):
        extractor()([series(20), with_nan], repetition_time=2.0, layout="rois_first")
    with pytest.raises(ValueError, match="NaN/Inf"):
        extractor()(with_inf, repetition_time=2.0, layout="rois_first")
    with pytest.raises(ValueError, match="empty"):
        extractor()(np.zeros((NUM_ROIS, 0)), repetition_time=2.0, layout="rois_first")
    with pytest.raises(ValueError, match=r"has 5 ROIs but the model expects num_rois=6"):
        extractor()(series(20, num_rois=5), repetition_time=2.0, layout="rois_first")
    with pytest.raises(ValueError, match=r"looks time-first .*Pass layout='time_first'"):
        extractor()(series(20).T, repetition_time=2.0, layout="rois_first")


def test_long_series_are_cropped_with_a_warning():
    data = series(400)
    with pytest.warns(UserWarning, match=r"last 76 frames \(152.0 s\) are dropped"):
        out = extractor()(data, repetition_time=2.0, layout="rois_first", return_tensors="np")
    assert out["fmri_values"].shape == (1, NUM_ROIS, 18 * 18)
    assert out["attention_mask"].sum() == 324
    np.testing.assert_allclose(out["fmri_values"][0], data[:, :324], rtol=1e-6)


def test_series_shorter_than_one_patch_is_padded_to_one_patch_with_a_warning():
    with pytest.warns(UserWarning, match="5 frames at TR 2 s, shorter than one 18-frame patch"):
        out = extractor()(series(5), repetition_time=2.0, layout="rois_first", return_tensors="np")
    assert out["fmri_values"].shape == (1, NUM_ROIS, 18)
    assert out["attention_mask"].tolist() == [[1] * 5 + [0] * 13]


def test_zscore_per_roi_and_global_use_real_frames_only():
    data = series(50)
    out = extractor(normalization="zscore")(
        [data, series(90, seed=2)], repetition_time=2.0, layout="rois_first", return_tensors="np"
    )
    real = out["fmri_values"][0, :, :50]
    np.testing.assert_allclose(real.mean(axis=1), 0, atol=1e-5)
    np.testing.assert_allclose(real.std(axis=1), 1, rtol=1e-5)
    assert np.all(out["fmri_values"][0, :, 50:] == 0)
    global_out = extractor(normalization="zscore", zscore_scope="global")(
        data, repetition_time=2.0, layout="rois_first", return_tensors="np"
    )
    expected = (data - data.mean()) / data.std()
    np.testing.assert_allclose(global_out["fmri_values"][0, :, :50], expected, rtol=1e-5, atol=1e-5)


def test_zero_variance_roi_under_zscore_gives_zeros_and_a_warning():
    data = series(40)
    data[3] = 7.3
    with pytest.warns(UserWarning, match=r"1 ROI\(s\) \(3\) are constant over time"):
        out = extractor(normalization="zscore")(data, repetition_time=2.0, layout="rois_first", return_tensors="np")
    assert np.all(np.isfinite(out["fmri_values"]))
    assert np.all(out["fmri_values"][0, 3] == 0)
    np.testing.assert_allclose(out["fmri_values"][0, 0, :40].std(), 1, rtol=1e-5)


def test_robust_statistics_fit_save_load_round_trip(tmp_path):
    cohort = [series(60 + 10 * subject, seed=subject) for subject in range(5)]
    fitted = extractor(normalization="robust").fit_robust_statistics(cohort, layout="rois_first")
    subject_means = np.stack([subject.mean(axis=1) for subject in cohort])
    median = np.median(subject_means, axis=0)
    iqr = np.subtract(*np.percentile(subject_means, [75, 25], axis=0))
    np.testing.assert_allclose(fitted.robust_median, median)
    np.testing.assert_allclose(fitted.robust_iqr, iqr)

    new_subject = series(70, seed=9)
    out = fitted(new_subject, repetition_time=1.4, layout="rois_first", return_tensors="np")
    np.testing.assert_allclose(out["fmri_values"][0, :, :70], (new_subject - median[:, None]) / iqr[:, None], rtol=1e-5)

    fitted.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert saved["robust_median"] == median.tolist() and saved["normalization"] == "robust"
    reloaded = AutoFeatureExtractor.from_pretrained(tmp_path)
    assert type(reloaded) is FMRIFeatureExtractor
    reloaded_out = reloaded(new_subject, repetition_time=1.4, layout="rois_first", return_tensors="np")
    np.testing.assert_array_equal(reloaded_out["fmri_values"], out["fmri_values"])


def test_auto_feature_extractor_resolves_the_fmri_extractor_from_the_model_type(tmp_path):
    FunctionJEPAConfig(num_hidden_layers=1).save_pretrained(tmp_path)
    saved = extractor(normalization="zscore", zscore_scope="global")
    saved.save_pretrained(tmp_path)
    settings_path = tmp_path / "preprocessor_config.json"
    settings = json.loads(settings_path.read_text())
    del settings["feature_extractor_type"], settings["auto_map"]  # no class name left in the file
    settings_path.write_text(json.dumps(settings))
    loaded = AutoFeatureExtractor.from_pretrained(tmp_path)
    assert type(loaded) is FMRIFeatureExtractor
    assert loaded.to_dict() == saved.to_dict()


def test_robust_normalization_needs_statistics():
    with pytest.raises(ValueError, match=r"needs cohort statistics .*Fit them on your cohort: `fit_robust_statistics"):
        extractor(normalization="robust")(series(20), repetition_time=2.0, layout="rois_first")
    with pytest.raises(ValueError, match="need a cohort: got 1 series"):
        extractor().fit_robust_statistics([series(20)], layout="rois_first")
    with pytest.raises(ValueError, match="must each hold num_rois=6 values"):
        extractor(normalization="robust", robust_median=[0.0] * 5, robust_iqr=[1.0] * 5)


@pytest.mark.parametrize("compressed", [False, True])
def test_roi_csv_files_match_the_array_path(tmp_path, compressed):
    data = series(30)
    lines = ["label_name," + ",".join(f"t{frame}" for frame in range(30))]
    lines += [f"{roi + 1}," + ",".join(f"{value:.17g}" for value in row) for roi, row in enumerate(data)]
    path = tmp_path / ("series.csv.gz" if compressed else "series.csv")
    with (gzip.open if compressed else open)(path, "wt") as handle:
        handle.write("\n".join(lines) + "\n")
    from_csv = extractor().process_roi_csv([path, path], repetition_time=2.5, return_tensors="np")
    from_array = extractor()([data, data], repetition_time=2.5, layout="rois_first", return_tensors="np")
    np.testing.assert_array_equal(from_csv["fmri_values"], from_array["fmri_values"])


def nibabel_image(file_name):
    return os.path.join(data_path, file_name)


def atlas_on_grid(image_path, num_labels=NUM_ROIS):
    image = nib.load(image_path)
    labels = np.random.default_rng(1).integers(0, num_labels + 1, size=image.shape[:3]).astype(np.int16)
    return nib.Nifti1Image(labels, image.affine)


def test_nifti_path_matches_nilearn_and_reads_the_header_tr():
    image = nibabel_image("functional.nii")  # 17 x 21 x 3 voxels, 20 frames, TR 2.0 s in the header
    atlas = atlas_on_grid(image)
    # Raw scanner units, compared with nilearn's raw means: the raw-scale check is switched off on purpose.
    out = extractor(raw_scale_threshold=None).process_nifti(image, atlas, return_tensors="np")
    expected = NiftiLabelsMasker(atlas, strategy="mean", standardize=None).fit_transform(image).T
    assert out["repetition_time"].tolist() == [2.0]
    assert out["fmri_values"].shape == (1, NUM_ROIS, 36) and out["attention_mask"].sum() == 20
    np.testing.assert_allclose(out["fmri_values"][0, :, :20], expected, rtol=1e-5)


def test_nifti_explicit_tr_wins_and_a_disagreement_warns():
    image = nibabel_image("functional.nii")
    with pytest.warns(UserWarning, match=r"repetition_time=2.5 s disagrees with the header TR of image 0 .*\(2 s\)"):
        out = extractor(normalization="zscore").process_nifti(
            image, atlas_on_grid(image), repetition_time=2.5, return_tensors="np"
        )
    assert out["repetition_time"].tolist() == [2.5]


def test_nifti_with_an_absurd_header_tr():
    # example4d.nii.gz: 2 frames, and a header TR of 2000 with the unit set to seconds.
    image = nibabel_image("example4d.nii.gz")
    atlas = atlas_on_grid(image)
    with pytest.raises(ValueError, match=r"header TR of image 0.* is 2000 s.*looks like milliseconds"):
        extractor().process_nifti(image, atlas)
    with pytest.warns(UserWarning) as caught:
        out = extractor(normalization="zscore").process_nifti(image, atlas, repetition_time=2.0, return_tensors="np")
    messages = " | ".join(str(warning.message) for warning in caught)
    assert "disagrees with the header TR" in messages and "shorter than one 18-frame patch" in messages
    assert out["fmri_values"].shape == (1, NUM_ROIS, 18) and out["attention_mask"].sum() == 2


def test_nifti_atlas_missing_model_rois_is_refused():
    image = nibabel_image("functional.nii")
    atlas = atlas_on_grid(image, num_labels=NUM_ROIS - 2)
    with pytest.raises(ValueError, match=r"2 requested label.*absent from the label array: 5, 6"):
        extractor().process_nifti(image, atlas)


def test_lemon_rest_run_through_the_processor(lemon_run, lemon_schaefer400, schaefer400_fsaverage5):
    vertex_data, header_tr = lemon_run
    assert header_tr == 1.0  # the files say 1.0 s; the true TR is 1.4 s
    fmri = FMRIFeatureExtractor()
    with pytest.warns(UserWarning) as caught:
        out = fmri.process_surface(
            vertex_data,
            schaefer400_fsaverage5,
            repetition_time=1.4,
            header_repetition_time=header_tr,
            return_tensors="pt",
        )
    messages = " | ".join(str(warning.message) for warning in caught)
    assert "repetition_time=1.4 s disagrees with the header TR" in messages
    # p = round(35.28 / 1.4) = 25 frames, 18 patches = 450 frames kept of 652.
    assert "last 202 frames (282.8 s) are dropped" in messages
    assert out["fmri_values"].shape == (1, 400, 450)
    assert out["attention_mask"].sum().item() == 450
    torch.testing.assert_close(out["fmri_values"][0], torch.from_numpy(lemon_schaefer400[:, :450]))
    assert torch.isfinite(out["fmri_values"]).all() and out["fmri_values"][0].std(dim=1).min() > 0


def test_lemon_rest_run_through_a_small_function_jepa(lemon_run, schaefer400_fsaverage5):
    vertex_data, _ = lemon_run
    # The full run at its TR, and every other frame of its first 120 (TR 2.8 s, 13-frame patches) as a second TR.
    with pytest.warns(UserWarning, match="are dropped"):
        inputs = FMRIFeatureExtractor().process_surface(
            [vertex_data, vertex_data[:, :120:2]],
            schaefer400_fsaverage5,
            repetition_time=[1.4, 2.8],
            return_tensors="pt",
        )
    assert inputs["attention_mask"].sum(-1).tolist() == [450, 60]
    config = FunctionJEPAConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    torch.manual_seed(0)
    model = FunctionJEPAModel(config).eval()
    with torch.no_grad():
        outputs = model(**inputs)
    # 400 ROIs x 18 patches for the full run; 400 x ceil(60 / 13) = 400 x 5 for the second series.
    assert outputs.last_hidden_state.shape == (2, 7200, 32)
    assert outputs.token_mask.sum(-1).tolist() == [7200, 2000]
    real = outputs.token_mask.bool()
    assert torch.isfinite(outputs.last_hidden_state).all()
    assert outputs.last_hidden_state[~real].abs().max() == 0 and outputs.last_hidden_state[real].std() > 0.5
