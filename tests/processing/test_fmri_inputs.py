"""fMRI inputs at the processor's door: atlas identity and ROI order, ROI tables, signal scale, hostile values.

Real data: the LEMON run that brainspace ships, parcellated to Schaefer-400 (7-network order), written to real files
in a temp folder. Every refused file is checked to be left unchanged (bytes and mtime).
"""

import os
from contextlib import contextmanager

import numpy as np
import pytest

from brainharmonix_hf import BrainHarmonixProcessor, FMRIFeatureExtractor, T1VolumeFeatureExtractor
from brainharmonix_hf.modeling.repetition_time import check_repetition_time
from brainharmonix_hf.processing.atlases import (
    SCHAEFER400_7NETWORKS,
    SCHAEFER400_17NETWORKS,
    schaefer400_permutation,
    schaefer400_roi_names,
)
from brainharmonix_hf.processing.roi_csv import read_roi_table
from brainharmonix_hf.processing.schaefer400_orders import SEVENTEEN_INDEX_OF_SEVEN_NETWORK_ROI

NAMES_7 = schaefer400_roi_names(SCHAEFER400_7NETWORKS)
NAMES_17 = schaefer400_roi_names(SCHAEFER400_17NETWORKS)
TR = 1.4


@contextmanager
def unchanged(path):
    """The file at `path` has the same bytes and mtime after the block."""
    before = (path.read_bytes(), os.stat(path).st_mtime_ns)
    yield
    assert (path.read_bytes(), os.stat(path).st_mtime_ns) == before


def write_table(path, rows, header=None, delimiter=","):
    lines = [delimiter.join(header)] if header is not None else []
    lines += [delimiter.join(str(cell) for cell in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def rois_first_csv(path, series, labels, header=True):
    header_row = ["roi", *(f"t{frame}" for frame in range(series.shape[1]))] if header else None
    rows = [[label, *(f"{value:.9g}" for value in row)] for label, row in zip(labels, series, strict=True)]
    return write_table(path, rows, header_row)


@pytest.fixture(scope="module")
def lemon(lemon_schaefer400):
    """120 frames of the LEMON run in Schaefer-400 7-network order, rounded as written to the CSVs."""
    return np.asarray([[float(f"{value:.9g}") for value in row] for row in lemon_schaefer400[:, :120]])


def zscored(**kwargs):
    return FMRIFeatureExtractor(normalization="zscore", **kwargs)


# The shipped permutation.


def test_shipped_permutation_is_one_to_one_keeps_hemispheres_and_pairs_the_same_parcels():
    seventeen_of_seven = np.asarray(SEVENTEEN_INDEX_OF_SEVEN_NETWORK_ROI)
    assert sorted(seventeen_of_seven.tolist()) == list(range(400))
    assert ((np.arange(400) < 200) == (seventeen_of_seven < 200)).all()
    assert (NAMES_7[0], NAMES_17[0], NAMES_7[200], NAMES_17[399]) == (
        "7Networks_LH_Vis_1",
        "17Networks_LH_VisCent_ExStr_1",
        "7Networks_RH_Vis_1",
        "17Networks_RH_TempPar_10",
    )
    assert all(name.startswith("7Networks_LH_") for name in NAMES_7[:200])
    assert all(name.startswith("17Networks_RH_") for name in NAMES_17[200:])
    # Both directions invert each other; default-mode posterior cingulate parcels stay default-mode parcels.
    seven_to_seventeen = schaefer400_permutation(SCHAEFER400_7NETWORKS, SCHAEFER400_17NETWORKS)
    seventeen_to_seven = schaefer400_permutation(SCHAEFER400_17NETWORKS, SCHAEFER400_7NETWORKS)
    assert (seven_to_seventeen[seventeen_to_seven] == np.arange(400)).all()
    pairs = {NAMES_7[roi]: NAMES_17[seventeen_of_seven[roi]] for roi in range(400)}
    assert pairs["7Networks_LH_Default_pCunPCC_11"].startswith("17Networks_LH_Default")


# Atlas identity and ROI order.


def test_17_network_csv_is_permuted_into_the_7_network_model_order(tmp_path, lemon):
    in_17_order = lemon[schaefer400_permutation(SCHAEFER400_7NETWORKS, SCHAEFER400_17NETWORKS)]
    path = rois_first_csv(tmp_path / "sub-01_17n.csv", in_17_order, NAMES_17)
    from_csv = zscored().process_roi_csv(path, repetition_time=TR, return_tensors="np")
    from_array = zscored()(lemon, repetition_time=TR, layout="rois_first", return_tensors="np")
    np.testing.assert_array_equal(from_csv["fmri_values"], from_array["fmri_values"])
    # And a 17-network model takes the 7-network file into its order.
    path_7 = rois_first_csv(tmp_path / "sub-01_7n.csv", lemon, NAMES_7)
    model_17 = zscored(atlas=SCHAEFER400_17NETWORKS).process_roi_csv(path_7, repetition_time=TR, return_tensors="np")
    expected = zscored(atlas=SCHAEFER400_17NETWORKS)(in_17_order, repetition_time=TR, layout="rois_first")
    np.testing.assert_array_equal(model_17["fmri_values"], np.stack(expected["fmri_values"]))


def test_arrays_declare_their_atlas_or_labels(lemon):
    in_17_order = lemon[schaefer400_permutation(SCHAEFER400_7NETWORKS, SCHAEFER400_17NETWORKS)]
    reference = zscored()(lemon, repetition_time=TR, layout="rois_first", return_tensors="np")["fmri_values"]
    by_atlas = zscored()(in_17_order, repetition_time=TR, layout="rois_first", atlas=SCHAEFER400_17NETWORKS)
    by_labels = zscored()(in_17_order, repetition_time=TR, layout="rois_first", roi_labels=NAMES_17)
    np.testing.assert_array_equal(np.stack(by_atlas["fmri_values"]), reference)
    np.testing.assert_array_equal(np.stack(by_labels["fmri_values"]), reference)
    with pytest.raises(
        ValueError,
        match=r"declared atlas='schaefer400_7networks', but the ROI labels are 'schaefer400_17networks' parcel",
    ):
        zscored()(
            in_17_order, repetition_time=TR, layout="rois_first", roi_labels=NAMES_17, atlas=SCHAEFER400_7NETWORKS
        )
    with pytest.raises(
        ValueError, match=r"series: ROIs of 'aal116', but the model expects atlas 'schaefer400_7networks'"
    ):
        zscored()(lemon, repetition_time=TR, layout="rois_first", atlas="aal116")


def test_swapped_hemispheres_numeric_labels_and_other_atlases_are_refused(tmp_path, lemon):
    swapped = np.concatenate([lemon[200:], lemon[:200]])
    cases = [
        (
            rois_first_csv(tmp_path / "swapped.csv", swapped, NAMES_7[200:] + NAMES_7[:200]),
            r"swapped.csv: 'schaefer400_7networks' ROIs, but not in that atlas's order "
            r"\(row 0 is '7Networks_RH_Vis_1', expected '7Networks_LH_Vis_1'\)",
        ),
        (
            rois_first_csv(tmp_path / "numbered.csv", lemon, range(1, 401)),
            r"numbered.csv: numeric ROI labels 1..400 do not say which Schaefer-400 order "
            r".* atlas='schaefer400_7networks'",
        ),
        (
            rois_first_csv(tmp_path / "schaefer200.csv", lemon[:200], [f"7Networks_LH_Parcel_{i}" for i in range(200)]),
            r"schaefer200.csv: ROIs of an atlas with 200 ROIs labelled '7Networks_LH_Parcel_0'.* but the model "
            r"expects atlas 'schaefer400_7networks' \(200 rows, 400 expected\)",
        ),
    ]
    for path, message in cases:
        with unchanged(path), pytest.raises(ValueError, match=message):
            zscored().process_roi_csv(path, repetition_time=TR)
    # Numbered rows with a declared order are accepted, and permuted when that order is the other one.
    numbered_17 = rois_first_csv(
        tmp_path / "numbered17.csv",
        lemon[schaefer400_permutation(SCHAEFER400_7NETWORKS, SCHAEFER400_17NETWORKS)],
        range(1, 401),
    )
    got = zscored().process_roi_csv(numbered_17, repetition_time=TR, atlas=SCHAEFER400_17NETWORKS)
    expected = zscored()(lemon, repetition_time=TR, layout="rois_first")
    np.testing.assert_array_equal(np.stack(got["fmri_values"]), np.stack(expected["fmri_values"]))


def test_label_image_of_the_other_order_is_permuted(lemon_run, schaefer400_fsaverage5):
    vertex_data = lemon_run[0][:, :60]
    # Relabel every vertex with its parcel's 17-network number (0 stays the medial wall).
    seventeen_of_seven = schaefer400_permutation(SCHAEFER400_17NETWORKS, SCHAEFER400_7NETWORKS)
    labels_17 = np.concatenate([[0], seventeen_of_seven + 1])[schaefer400_fsaverage5]
    direct = zscored().process_surface(vertex_data, schaefer400_fsaverage5, repetition_time=TR, return_tensors="np")
    permuted = zscored().process_surface(
        vertex_data, labels_17, repetition_time=TR, atlas=SCHAEFER400_17NETWORKS, return_tensors="np"
    )
    np.testing.assert_array_equal(permuted["fmri_values"], direct["fmri_values"])


# CSV and TSV reading.


def test_csv_without_label_column_keeps_every_frame_and_headerless_keeps_the_first_roi(tmp_path):
    series = np.arange(24, dtype=float).reshape(6, 4) / 10
    no_labels = write_table(tmp_path / "no_labels.csv", series, header=["t0", "t1", "t2", "t3"])
    headerless = write_table(tmp_path / "headerless.csv", [[roi + 1, *row] for roi, row in enumerate(series)])
    headerless_unlabelled = write_table(tmp_path / "bare.csv", series)
    frame_numbers = write_table(
        tmp_path / "frames.csv", [[roi + 1, *row] for roi, row in enumerate(series)], header=["", "0", "1", "2", "3"]
    )
    for path, labels in (
        (no_labels, None),
        (headerless, [str(i) for i in range(1, 7)]),
        (headerless_unlabelled, None),
        (frame_numbers, [str(i) for i in range(1, 7)]),
    ):
        table = read_roi_table(path)
        np.testing.assert_array_equal(table.series, series)
        assert table.labels == labels


def test_time_first_and_semicolon_files_are_refused_with_the_reason(tmp_path, lemon):
    time_first = write_table(tmp_path / "time_first.csv", [[f"{v:.9g}" for v in row] for row in lemon.T], NAMES_7)
    numbers_only = write_table(tmp_path / "time_first_bare.csv", lemon[:, :50].T)
    semicolon = tmp_path / "european.csv"
    semicolon.write_text("roi;t0;t1\n1;0,5;0,25\n2;0,1;0,3\n")
    cases = [
        (time_first, r"looks time-first: its header names Schaefer-400 parcels.*layout='time_first'"),
        (numbers_only, r"has 50 rows and 400 value columns: it looks time-first"),
        (semicolon, r"is semicolon-separated .* expects commas"),
    ]
    for path, message in cases:
        with unchanged(path), pytest.raises(ValueError, match=message):
            zscored().process_roi_csv(path, repetition_time=TR)


def test_xcpd_style_tsv_is_read_time_first(tmp_path, lemon):
    path = write_table(
        tmp_path / "sub-01_timeseries.tsv", [[f"{v:.9g}" for v in row] for row in lemon.T], NAMES_7, delimiter="\t"
    )
    from_tsv = zscored().process_roi_csv(path, repetition_time=TR, layout="time_first", return_tensors="np")
    from_array = zscored()(lemon, repetition_time=TR, layout="rois_first", return_tensors="np")
    np.testing.assert_array_equal(from_tsv["fmri_values"], from_array["fmri_values"])


def test_combined_processor_reads_files_like_the_extractor_and_never_guesses_array_axes(tmp_path, lemon):
    processor = BrainHarmonixProcessor(T1VolumeFeatureExtractor(), zscored())
    path = rois_first_csv(
        tmp_path / "sub-01.csv", lemon[schaefer400_permutation(SCHAEFER400_7NETWORKS, SCHAEFER400_17NETWORKS)], NAMES_17
    )
    combined = processor(fmri=path, repetition_time=TR, return_tensors="np")
    alone = processor.fmri_feature_extractor.process_roi_csv(path, repetition_time=TR, return_tensors="np")
    np.testing.assert_array_equal(combined["fmri_values"], alone["fmri_values"])
    square = np.random.default_rng(0).normal(size=(400, 400))
    with pytest.raises(ValueError, match=r"layout must be declared .* never guessed"):
        processor(fmri=square, repetition_time=TR)


# Signal scale.


def test_raw_scale_bold_is_refused_unless_normalised(tmp_path, lemon):
    raw = 8000.0 + 40.0 * lemon  # scanner units: ROI means in the thousands
    path = rois_first_csv(tmp_path / "raw.csv", raw, NAMES_7)
    message = r"looks like raw-scale BOLD \(median absolute ROI mean \d{4} > raw_scale_threshold=50\)"
    with unchanged(path), pytest.raises(ValueError, match=message):
        FMRIFeatureExtractor().process_roi_csv(path, repetition_time=TR)
    normalised = zscored().process_roi_csv(path, repetition_time=TR, return_tensors="np")["fmri_values"][0, :, :120]
    np.testing.assert_allclose(normalised.mean(axis=1), 0, atol=1e-4)
    np.testing.assert_allclose(normalised.std(axis=1), 1, atol=1e-3)


def test_robust_statistics_streamed_from_a_generator_match_the_direct_fit(lemon):
    rng = np.random.default_rng(0)
    cohort = [500.0 + 100 * rng.random() + lemon * (1 + rng.random()) for _ in range(5)]
    streamed = FMRIFeatureExtractor(normalization="robust").fit_robust_statistics(
        (series for series in cohort), layout="rois_first"
    )
    from_means = FMRIFeatureExtractor(normalization="robust").fit_robust_statistics_from_means(
        np.stack([series.mean(axis=1) for series in cohort])
    )
    means = np.stack([series.mean(axis=1) for series in cohort])
    np.testing.assert_allclose(streamed.robust_median, np.median(means, axis=0))
    assert streamed.robust_median == from_means.robust_median and streamed.robust_iqr == from_means.robust_iqr
    out = streamed(cohort[0], repetition_time=TR, layout="rois_first", return_tensors="np")["fmri_values"][0]
    assert np.abs(np.median(out[:, :120].mean(axis=1))) < 2


def test_robust_statistics_fit_on_the_files_every_reader_takes(tmp_path, lemon):
    """XCP-D-style time-first `.tsv` tables (17-network labels), ROI-first `.csv` and `.npy` paths give the fit of the
    same series as arrays."""
    rng = np.random.default_rng(1)
    cohort = [500.0 + 100 * rng.random() + lemon * (1 + rng.random()) for _ in range(3)]
    to_17 = schaefer400_permutation(SCHAEFER400_7NETWORKS, SCHAEFER400_17NETWORKS)
    tsv = [
        write_table(tmp_path / f"sub-{i}_timeseries.tsv", [[f"{v:.9g}" for v in row] for row in series[to_17].T],
                    NAMES_17, delimiter="\t")
        for i, series in enumerate(cohort)
    ]  # fmt: skip
    csv = [rois_first_csv(tmp_path / f"sub-{i}.csv", series, NAMES_7) for i, series in enumerate(cohort)]
    npy = []
    for i, series in enumerate(cohort):
        np.save(tmp_path / f"sub-{i}.npy", series)
        npy.append(tmp_path / f"sub-{i}.npy")
    expected = FMRIFeatureExtractor(normalization="robust").fit_robust_statistics(
        cohort, layout="rois_first", atlas=SCHAEFER400_7NETWORKS
    )
    assert np.ptp(expected.robust_median) > 0
    for paths, atlas in ((tsv, None), (csv, None), (npy, SCHAEFER400_7NETWORKS)):
        fitted = FMRIFeatureExtractor(normalization="robust").fit_robust_statistics(paths, atlas=atlas)
        np.testing.assert_allclose(fitted.robust_median, expected.robust_median, rtol=1e-7)
        np.testing.assert_allclose(fitted.robust_iqr, expected.robust_iqr, rtol=1e-6)


# Hostile values at the model.


def test_boolean_repetition_time_is_refused():
    with pytest.raises(ValueError, match="is True, a boolean"):
        check_repetition_time(True)
    with pytest.raises(ValueError, match="is True, a boolean"):
        zscored()(np.zeros((400, 30)), repetition_time=True, layout="rois_first")


def test_nifti_run_with_a_label_image_of_another_atlas_is_refused_and_left_unchanged(tmp_path):
    import nibabel as nib
    from nibabel.testing import data_path

    run = nib.load(os.path.join(data_path, "functional.nii"))  # 17 x 21 x 3 voxels, 20 frames
    run_path, atlas_path = tmp_path / "run.nii.gz", tmp_path / "atlas.nii.gz"
    nib.save(run, run_path)
    labels = np.random.default_rng(0).integers(0, 7, size=run.shape[:3]).astype(np.int16)
    nib.save(nib.Nifti1Image(labels, run.affine), atlas_path)
    extractor = FMRIFeatureExtractor(num_rois=6, atlas="tiny6", normalization="zscore")
    with unchanged(run_path), unchanged(atlas_path):
        with pytest.raises(ValueError, match=r"The label image: ROIs of 'aal116', but the model expects atlas 'tiny6'"):
            extractor.process_nifti(run_path, atlas_path, atlas="aal116")
    out = extractor.process_nifti(run_path, atlas_path, return_tensors="np")
    assert out["fmri_values"].shape == (1, 6, 36) and out["attention_mask"].sum() == 20


def test_user_atlas_labels_are_stored_saved_and_checked(tmp_path, lemon):
    names = [f"zone_{index}" for index in range(6)]
    extractor = FMRIFeatureExtractor(num_rois=6, atlas="zones6", roi_labels=names, normalization="zscore")
    extractor.save_pretrained(tmp_path)
    loaded = FMRIFeatureExtractor.from_pretrained(tmp_path)
    assert loaded.roi_labels == names and loaded.model_roi_labels() == names
    series = lemon[:6]
    good = rois_first_csv(tmp_path / "zones.csv", series, names)
    reversed_rows = rois_first_csv(tmp_path / "reversed.csv", series[::-1], names[::-1])
    np.testing.assert_array_equal(
        loaded.process_roi_csv(good, repetition_time=TR, return_tensors="np")["fmri_values"],
        loaded(series, repetition_time=TR, layout="rois_first", return_tensors="np")["fmri_values"],
    )
    message = r"reversed.csv: the ROIs of the model's atlas 'zones6', but in another order \(row 0 is 'zone_5'"
    with unchanged(reversed_rows), pytest.raises(ValueError, match=message):
        loaded.process_roi_csv(reversed_rows, repetition_time=TR)
    with pytest.raises(ValueError, match=r"Atlas 'schaefer400_7networks' has 400 ROIs but num_rois=6"):
        FMRIFeatureExtractor(num_rois=6)
