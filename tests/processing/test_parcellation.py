import os

import nibabel as nib
import numpy as np
import pytest
from nibabel.testing import data_path
from nilearn.maskers import NiftiLabelsMasker

from brainharmonix_hf.processing.nifti_io import NiftiInputError
from brainharmonix_hf.processing.parcellation import (
    average_by_label,
    parcellate_surface,
    parcellate_volume,
    transfer_labels,
)


def random_atlas_on_grid(image: nib.Nifti1Image, num_labels: int, seed: int = 0) -> nib.Nifti1Image:
    """A label image on `image`'s voxel grid holding 0 (background) and every label 1..num_labels."""
    labels = np.random.default_rng(seed).integers(0, num_labels + 1, size=image.shape[:3]).astype(np.int16)
    assert set(np.unique(labels)) == set(range(num_labels + 1))
    return nib.Nifti1Image(labels, image.affine)


def test_average_by_label_means_in_requested_order():
    unit_series = np.arange(12, dtype=np.float32).reshape(6, 2)  # unit u: [2u, 2u + 1]
    unit_labels = np.array([3, 0, 1, 3, 1, 3])
    series, labels = average_by_label(unit_series, unit_labels, labels=[3, 1])
    np.testing.assert_array_equal(labels, [3, 1])
    # label 3: units 0, 3, 5 -> mean [16/3, 19/3]; label 1: units 2, 4 -> [6, 7]
    np.testing.assert_allclose(series, [[16 / 3, 19 / 3], [6, 7]], rtol=1e-6)
    assert series.dtype == np.float32
    _, default_labels = average_by_label(unit_series, unit_labels)
    np.testing.assert_array_equal(default_labels, [1, 3])


def test_absent_labels_are_named():
    with pytest.raises(ValueError, match=r"2 requested label\(s\) are absent from the label array: 5, 7"):
        average_by_label(np.zeros((3, 4)), np.array([1, 2, 0]), labels=[1, 5, 7])


def test_label_zero_and_fractional_labels_are_refused():
    with pytest.raises(ValueError, match="Label 0 means unlabelled"):
        average_by_label(np.zeros((2, 4)), np.array([1, 2]), labels=[0, 1])
    with pytest.raises(ValueError, match="non-integer or non-finite"):
        average_by_label(np.zeros((2, 4)), np.array([1.0, 1.5]))


@pytest.mark.parametrize("file_name", ["functional.nii", "example4d.nii.gz"])
def test_volume_parcellation_matches_nilearn_labels_masker(file_name):
    image = nib.load(os.path.join(data_path, file_name))
    atlas = random_atlas_on_grid(image, num_labels=7)
    series, labels = parcellate_volume(image, atlas)
    expected = NiftiLabelsMasker(atlas, strategy="mean", standardize=None).fit_transform(image)  # (time, labels)
    np.testing.assert_array_equal(labels, np.arange(1, 8))
    assert series.shape == (7, image.shape[3])
    np.testing.assert_allclose(series, expected.T, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


def test_volume_parcellation_refuses_atlas_on_another_grid():
    image = nib.load(os.path.join(data_path, "functional.nii"))
    shifted_affine = image.affine.copy()
    shifted_affine[0, 3] += 2.0
    shifted = nib.Nifti1Image(np.ones(image.shape[:3], np.int16), shifted_affine)
    cropped = nib.Nifti1Image(np.ones((17, 21, 2), np.int16), image.affine)
    for atlas in (shifted, cropped):
        with pytest.raises(NiftiInputError, match=r"(?s)not on the grid.*resample_to_img"):
            parcellate_volume(image, atlas)


def test_surface_parcellation_checks_orientation():
    vertex_labels = np.array([1, 1, 2, 0, 2])
    vertex_data = np.random.default_rng(0).normal(size=(5, 9))
    series, labels = parcellate_surface(vertex_data, vertex_labels)
    np.testing.assert_array_equal(labels, [1, 2])
    np.testing.assert_allclose(series, [vertex_data[:2].mean(0), vertex_data[[2, 4]].mean(0)], rtol=1e-6)
    with pytest.raises(ValueError, match=r"looks time-first: pass `vertex_data.T`"):
        parcellate_surface(vertex_data.T, vertex_labels)


def test_transfer_labels_takes_the_nearest_source_vertex():
    source = np.array([[0.0, 0, 0], [10, 0, 0], [0, 10, 0]])
    target = np.array([[1.0, 1, 0], [9, -1, 0], [0, 8, 1], [6, 0, 0]])
    np.testing.assert_array_equal(transfer_labels(source, [4, 5, 6], target), [4, 5, 6, 5])
    with pytest.raises(ValueError, match="has 2 entries but `source_coords` has 3 vertices"):
        transfer_labels(source, [4, 5], target)


def test_schaefer400_transferred_to_fsaverage5(brainspace_data, schaefer400_fsaverage5):
    conte69_labels = np.loadtxt(brainspace_data / "parcellations" / "schaefer_400_conte69.csv").astype(np.int64)
    left, right = np.split(schaefer400_fsaverage5, 2)
    assert schaefer400_fsaverage5.shape == (20484,)
    assert set(np.unique(left)) == {0, *range(1, 201)}
    assert set(np.unique(right)) == {0, *range(201, 401)}
    # The medial wall (label 0) covers about the same share of both meshes, and parcel sizes agree.
    assert abs((schaefer400_fsaverage5 == 0).mean() - (conte69_labels == 0).mean()) < 0.01
    target_sizes = np.bincount(schaefer400_fsaverage5, minlength=401)[1:]
    source_sizes = np.bincount(conte69_labels, minlength=401)[1:]
    assert np.corrcoef(target_sizes, source_sizes)[0, 1] > 0.8
