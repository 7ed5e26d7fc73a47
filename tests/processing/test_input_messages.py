"""Inputs that are almost right get a message naming the problem and the fix: a time-first array read ROI-first, a
table with an index column, tab-separated text in a `.csv`, a binary mask or label image given as a T1.

Real data: nilearn's MNI152 template and seeded ROI series written to real files; refused files stay unchanged.
"""

import os
import warnings

import nibabel as nib
import numpy as np
import pytest
from nilearn.datasets import load_mni152_template

from brainharmonix_hf import FMRIFeatureExtractor, T1VolumeFeatureExtractor
from brainharmonix_hf.processing.atlases import (
    SCHAEFER400_7NETWORKS,
    SCHAEFER400_17NETWORKS,
    schaefer400_permutation,
    schaefer400_roi_names,
)

NAMES = schaefer400_roi_names(SCHAEFER400_7NETWORKS)
TR = 2.0


@pytest.fixture(scope="module")
def series():
    """A z-scored-scale `(250 frames, 400 ROIs)` series, time-first."""
    return np.random.default_rng(0).standard_normal((250, 400))


def write_rows(path, rows, delimiter):
    path.write_text("\n".join(delimiter.join(str(cell) for cell in row) for row in rows) + "\n")
    before = (path.read_bytes(), os.stat(path).st_mtime_ns)
    return path, before


def assert_unchanged(path, before):
    assert (path.read_bytes(), os.stat(path).st_mtime_ns) == before


def test_time_first_array_read_rois_first_names_the_layout_fix(series):
    with pytest.raises(ValueError) as error:
        FMRIFeatureExtractor()(series, repetition_time=TR, layout="rois_first")
    message = str(error.value)
    assert "(250, 400)" in message and "looks time-first" in message
    assert "layout='time_first'" in message


def test_time_first_npy_from_a_manifest_names_the_layout_fix(series, tmp_path):
    path = tmp_path / "sub-01.npy"  # a manifest's .npy is read ROI-first unless declared
    np.save(path, series)
    with pytest.raises(ValueError, match=r"looks time-first.*layout='time_first'.*\(num_rois, num_timepoints\)"):
        FMRIFeatureExtractor().read_fmri_file(str(path), atlas=SCHAEFER400_7NETWORKS)


@pytest.mark.parametrize("index_header", ["", "index", "Unnamed: 0"])
def test_time_first_table_with_an_index_column_names_the_column(series, tmp_path, index_header):
    rows = [[index_header, *NAMES]] + [[frame, *(f"{v:.5f}" for v in row)] for frame, row in enumerate(series)]
    path, before = write_rows(tmp_path / "sub-01_timeseries.tsv", rows, "\t")
    with pytest.raises(ValueError) as error:
        FMRIFeatureExtractor().process_roi_csv(path, repetition_time=TR, layout="time_first")
    message = str(error.value)
    assert f"first column ({index_header!r})" in message and "numbers the rows 0..249" in message
    assert "index=False" in message
    assert_unchanged(path, before)


def test_rois_first_table_with_an_index_column_names_the_column(series, tmp_path):
    rows = [["", "roi", *(f"t{frame}" for frame in range(250))]]
    labelled = enumerate(zip(NAMES, series.T, strict=True))
    rows += [[index, name, *(f"{v:.5f}" for v in row)] for index, (name, row) in labelled]
    path, before = write_rows(tmp_path / "sub-01.csv", rows, ",")
    with pytest.raises(ValueError, match=r"first column \(''\) numbers the rows 0\.\.399.*index=False"):
        FMRIFeatureExtractor().process_roi_csv(path, repetition_time=TR)
    assert_unchanged(path, before)


def test_tab_separated_csv_and_comma_separated_tsv_name_the_separator(series, tmp_path):
    rows = [[name, *(f"{v:.5f}" for v in row)] for name, row in zip(NAMES, series.T, strict=True)]
    tabs, before_tabs = write_rows(tmp_path / "sub-01.csv", rows, "\t")
    commas, before_commas = write_rows(tmp_path / "sub-01.tsv", rows, ",")
    with pytest.raises(ValueError, match=r"sub-01\.csv is tab-separated.*rename it to \.tsv"):
        FMRIFeatureExtractor().process_roi_csv(tabs, repetition_time=TR)
    with pytest.raises(ValueError, match=r"sub-01\.tsv is comma-separated.*rename it to \.csv"):
        FMRIFeatureExtractor().process_roi_csv(commas, repetition_time=TR)
    assert_unchanged(tabs, before_tabs)
    assert_unchanged(commas, before_commas)


@pytest.mark.parametrize("kind", ["binary mask", "label image"])
def test_a_mask_or_label_image_given_as_a_t1_is_refused(tmp_path, kind):
    template = load_mni152_template(resolution=1)
    data = template.get_fdata()
    if kind == "binary mask":
        voxels = (data > np.percentile(data, 60)).astype(np.uint8)
    else:  # a tissue segmentation: background, CSF, grey matter, white matter
        voxels = np.digitize(data, np.percentile(data[data > 0], [5, 40, 75])).astype(np.int16)
    path = tmp_path / "sub-01_T1w.nii.gz"
    nib.save(nib.Nifti1Image(voxels, template.affine), path)
    before = (path.read_bytes(), os.stat(path).st_mtime_ns)
    with pytest.raises(ValueError) as error:
        T1VolumeFeatureExtractor()(str(path))
    message = str(error.value)
    assert f"holds only {len(np.unique(voxels))} distinct values" in message
    assert "mask or label image" in message and "T1-weighted" in message
    assert_unchanged(path, before)


# Arrays carry no ROI labels: a Schaefer-400 model warns when their order is not declared.


def test_an_undeclared_schaefer_array_warns_once_at_the_callers_line_naming_the_fix(series):
    extractor = FMRIFeatureExtractor()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # Python's default: once per calling line
        for _ in range(3):
            extractor(series, repetition_time=TR, layout="time_first")
    undeclared = [w for w in caught if "no declared ROI order" in str(w.message)]
    assert len(undeclared) == 1
    assert "atlas='schaefer400_17networks'" in str(undeclared[0].message)
    assert undeclared[0].filename == __file__  # the caller's line, not the package's


def test_declared_arrays_and_user_atlases_do_not_warn(series, recwarn):
    FMRIFeatureExtractor()(series, repetition_time=TR, layout="time_first", atlas=SCHAEFER400_7NETWORKS)
    FMRIFeatureExtractor()(series, repetition_time=TR, layout="time_first", roi_labels=NAMES)
    FMRIFeatureExtractor(atlas="my_atlas", num_rois=400)(series, repetition_time=TR, layout="time_first")
    assert not [w for w in recwarn if "no declared ROI order" in str(w.message)]


def test_robust_statistics_take_the_atlas_of_the_means(series):
    rng = np.random.default_rng(1)
    means_7 = rng.normal(size=(6, 400)) * np.arange(1, 401)  # every ROI its own spread
    from_7 = FMRIFeatureExtractor().fit_robust_statistics_from_means(means_7, atlas=SCHAEFER400_7NETWORKS)
    to_17 = schaefer400_permutation(SCHAEFER400_7NETWORKS, SCHAEFER400_17NETWORKS)
    from_17 = FMRIFeatureExtractor().fit_robust_statistics_from_means(means_7[:, to_17], atlas=SCHAEFER400_17NETWORKS)
    np.testing.assert_allclose(from_17.robust_iqr, from_7.robust_iqr)
    np.testing.assert_allclose(from_17.robust_median, from_7.robust_median)
    series_17 = [series[:, to_17] + offset for offset in means_7[:, to_17]]
    fitted = FMRIFeatureExtractor().fit_robust_statistics(series_17, layout="time_first", atlas=SCHAEFER400_17NETWORKS)
    # Each subject's means are its offsets plus the shared series' means: the median moves by those, the IQR does not.
    np.testing.assert_allclose(fitted.robust_median, np.asarray(from_7.robust_median) + series.mean(axis=0))
    np.testing.assert_allclose(fitted.robust_iqr, from_7.robust_iqr)
    with pytest.warns(UserWarning, match="The ROI means have no declared ROI order"):
        FMRIFeatureExtractor().fit_robust_statistics_from_means(means_7)


def test_npy_files_without_a_declared_atlas_warn_once_for_a_cohort(series, tmp_path):
    paths = []
    for index in range(3):
        np.save(tmp_path / f"sub-{index}.npy", series)
        paths.append(tmp_path / f"sub-{index}.npy")
    extractor = FMRIFeatureExtractor()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        for path in paths:
            extractor.read_fmri_file(path, layout="time_first")
        declared = extractor.read_fmri_file(paths[0], layout="time_first", atlas=SCHAEFER400_7NETWORKS)
    undeclared = [w for w in caught if "no declared ROI order" in str(w.message)]
    assert len(undeclared) == 1 and str(undeclared[0].message).startswith("Series of .npy files")
    assert "atlas='schaefer400_17networks'" in str(undeclared[0].message)
    np.testing.assert_array_equal(declared.series, series)
