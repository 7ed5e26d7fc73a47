"""T1 volume processor on nilearn's 1 mm MNI152 template and nibabel's real 2 mm anatomical image."""

import json
import tempfile
import unittest
from pathlib import Path
from typing import ClassVar

import nibabel as nib
import numpy as np
import pytest
import torch
from hf_common.upstream.test_feature_extraction_common import FeatureExtractionSavingTestMixin
from nibabel.processing import resample_to_output
from nibabel.testing import data_path
from nilearn.datasets import load_mni152_template
from transformers import AutoFeatureExtractor

from brainharmonix_hf import StructureMAEConfig
from brainharmonix_hf.processing.feature_extraction_t1 import T1VolumeFeatureExtractor
from brainharmonix_hf.processing.nifti_io import NiftiInputError
from brainharmonix_hf.processing.reference_grid import crop_to_box, input_box

ANATOMICAL = Path(data_path) / "anatomical.nii"  # real T1, 33 x 41 x 25, 2 mm
MNI_SHAPE = (197, 233, 189)
MNI_PADDED_SHAPE = (197 + 15, 233 + 6, 189 + 22)


class T1VolumeFeatureExtractorSavingTest(FeatureExtractionSavingTestMixin, unittest.TestCase):
    feature_extraction_class = T1VolumeFeatureExtractor
    feat_extract_dict: ClassVar[dict] = {
        "volume_size": [32, 48, 40],
        "target_spacing": 2.0,
        "resample": True,
        "reference_field_of_view": [[-90.0, 90.0], [-126.0, 90.0], [-72.0, 108.0]],
        "check_mni_space": False,
        "reference_padding": [[1, 2], [0, 0], [3, 0]],
        "normalization": "brain",
    }


@pytest.fixture(scope="module")
def mni():
    template = load_mni152_template(resolution=1)
    assert template.shape == MNI_SHAPE and nib.aff2axcodes(template.affine) == ("R", "A", "S")
    return template


@pytest.fixture(scope="module")
def mni_voxels(mni):
    return mni.get_fdata(dtype=np.float32)


@pytest.fixture(scope="module")
def mni_pixel_values(mni):
    return T1VolumeFeatureExtractor()(mni)["pixel_values"]


def test_mni_template_matches_pad_zscore_crop_by_hand(mni_voxels, mni_pixel_values):
    assert mni_pixel_values.shape == (1, 1, 160, 192, 160)
    assert mni_pixel_values.dtype == np.float32
    padded = np.pad(mni_voxels.astype(np.float64), ((6, 9), (2, 4), (0, 22)))
    assert padded.shape == MNI_PADDED_SHAPE
    # Centre crop 212 x 239 x 211 -> 160 x 192 x 160 starts at floor(excess / 2) = (26, 23, 25).
    expected = (padded[26:186, 23:215, 25:185] - padded.mean()) / (padded.std() + 1e-9)
    np.testing.assert_allclose(mni_pixel_values[0, 0], expected, atol=1e-5)


@pytest.mark.parametrize("normalization", ["whole_volume", "brain"])
def test_zscore_statistics_without_cropping(mni, mni_voxels, normalization):
    extractor = T1VolumeFeatureExtractor(volume_size=MNI_PADDED_SHAPE, normalization=normalization)
    pixel_values = extractor(mni)["pixel_values"][0, 0].astype(np.float64)
    padded_brain = np.pad(mni_voxels, ((6, 9), (2, 4), (0, 22))) != 0
    normalised = pixel_values if normalization == "whole_volume" else pixel_values[padded_brain]
    assert normalised.mean() == pytest.approx(0.0, abs=1e-5)
    assert normalised.std() == pytest.approx(1.0, abs=1e-5)
    # Background (raw 0) goes through the same map: it sits at -mean/std, below every brain voxel.
    background = pixel_values[~padded_brain]
    assert background.max() == background.min() < pixel_values[padded_brain].min()


def test_no_normalization_keeps_intensities(mni, mni_voxels):
    pixel_values = T1VolumeFeatureExtractor(normalization="none")(mni)["pixel_values"][0, 0]
    np.testing.assert_array_equal(pixel_values, np.pad(mni_voxels, ((6, 9), (2, 4), (0, 22)))[26:186, 23:215, 25:185])


def _reoriented(image: nib.Nifti1Image, permutation: tuple[int, int, int], flips: tuple[bool, bool, bool]):
    """The same voxels in another array order: permute and flip the array, and move the affine with it."""
    data = image.get_fdata(dtype=np.float32).transpose(permutation)
    affine = image.affine.copy()
    affine[:, :3] = affine[:, list(permutation)]
    for axis, flip in enumerate(flips):
        if flip:
            data = np.flip(data, axis)
            affine[:, 3] += affine[:, axis] * (data.shape[axis] - 1)
            affine[:, axis] *= -1
    return nib.Nifti1Image(np.ascontiguousarray(data), affine)


@pytest.mark.parametrize(
    ("permutation", "flips", "axcodes"),
    [((0, 1, 2), (True, False, False), ("L", "A", "S")), ((2, 0, 1), (False, True, True), ("S", "L", "P"))],
)
def test_other_orientations_give_the_same_output(mni, mni_pixel_values, permutation, flips, axcodes):
    reoriented = _reoriented(mni, permutation, flips)
    assert nib.aff2axcodes(reoriented.affine) == axcodes
    np.testing.assert_array_equal(T1VolumeFeatureExtractor()(reoriented)["pixel_values"], mni_pixel_values)


def test_files_arrays_and_batches_agree(tmp_path, mni, mni_voxels, mni_pixel_values):
    paths = [tmp_path / "mni.nii", tmp_path / "mni.nii.gz"]
    for path in paths:
        nib.save(mni, path)
    extractor = T1VolumeFeatureExtractor()
    batch = extractor([paths[0], str(paths[1]), mni_voxels], affine=[None, None, mni.affine], return_tensors="pt")
    pixel_values = batch["pixel_values"]
    assert isinstance(pixel_values, torch.Tensor) and pixel_values.dtype == torch.float32
    assert pixel_values.shape == (3, 1, 160, 192, 160)
    # Files store the template as uint8 with a scale factor; reading it back rounds differently in the last bit.
    for index in range(3):
        np.testing.assert_allclose(pixel_values[index].numpy(), mni_pixel_values[0], rtol=0, atol=1e-6)


def test_one_affine_is_shared_by_every_array(mni, mni_voxels, mni_pixel_values):
    pixel_values = T1VolumeFeatureExtractor()([mni_voxels, mni_voxels], affine=mni.affine)["pixel_values"]
    np.testing.assert_array_equal(pixel_values, np.concatenate([mni_pixel_values] * 2))


def test_affine_list_of_the_wrong_length_is_refused(mni_voxels):
    with pytest.raises(ValueError, match="Got 1 affines for 2 volumes"):
        T1VolumeFeatureExtractor()([mni_voxels, mni_voxels], affine=[np.eye(4)])


def test_empty_batch_is_refused():
    with pytest.raises(ValueError, match="empty list of volumes"):
        T1VolumeFeatureExtractor()([])


def test_array_without_affine_is_refused(mni_voxels):
    with pytest.raises(NiftiInputError, match="pass its `affine=`"):
        T1VolumeFeatureExtractor()(mni_voxels)


def test_trailing_singleton_dimension_is_squeezed(mni, mni_voxels, mni_pixel_values):
    pixel_values = T1VolumeFeatureExtractor()(mni_voxels[..., None], affine=mni.affine)["pixel_values"]
    np.testing.assert_array_equal(pixel_values, mni_pixel_values)


def test_several_volumes_are_refused(mni):
    series = nib.Nifti1Image(np.zeros((*MNI_SHAPE[:2], 4, 2), dtype=np.float32), mni.affine)
    with pytest.raises(NiftiInputError, match=r"4D with 2 volumes .* single 3D volume"):
        T1VolumeFeatureExtractor()(series)


def test_2mm_mni_image_is_refused_without_resampling(mni):
    two_mm = resample_to_output(mni, voxel_sizes=2.0, order=1)
    message = r"not on the model's reference grid.*voxels are \(2\.0, 2\.0, 2\.0\) mm.*Pass `resample=True`"
    with pytest.raises(NiftiInputError, match=message):
        T1VolumeFeatureExtractor()(two_mm)


def test_2mm_native_image_is_resampled_to_1mm_when_the_mni_check_is_off():
    extractor = T1VolumeFeatureExtractor(resample=True, check_mni_space=False, normalization="none")
    pixel_values = extractor(ANATOMICAL)["pixel_values"][0, 0]
    assert pixel_values.shape == (160, 192, 160)
    # Every voxel of the 33 x 41 x 25 image is nonzero; at 1 mm it spans (2n - 1) voxels per axis.
    nonzero = np.argwhere(pixel_values != 0)
    extent = nonzero.max(axis=0) - nonzero.min(axis=0) + 1
    assert tuple(extent) == (65, 81, 49)
    # Placed by its affine: its first RAS voxel centre (-32, -40, -16) mm is output voxel (-32, -40, -16) - (-78, -113,
    # -47) = (46, 73, 31).
    assert tuple(nonzero.min(axis=0)) == (46, 73, 31)
    # Trilinear resampling keeps the original voxel values at the original voxel centres.
    original = nib.as_closest_canonical(nib.load(ANATOMICAL)).get_fdata(dtype=np.float32)
    np.testing.assert_allclose(pixel_values[46::2, 73::2, 31::2][:33, :41, :25], original)


def test_constant_volume_is_refused():
    with pytest.raises(NiftiInputError, match=r"The volume has a single value \(3\.0\)"):
        T1VolumeFeatureExtractor()(np.full((20, 20, 20), 3.0), affine=np.eye(4))


def test_binary_mask_is_refused_before_normalization():
    mask = np.zeros((20, 20, 20))
    mask[5:15, 5:15, 5:15] = 1.0
    with pytest.raises(NiftiInputError, match=r"The volume holds only 2 distinct values \(0, 1\): it looks like"):
        T1VolumeFeatureExtractor(normalization="brain", check_mni_space=False)(mask, affine=np.eye(4))


def test_non_finite_voxels_are_refused_with_the_batch_index(mni, mni_voxels):
    damaged = mni_voxels.copy()
    damaged[100, 100, 100] = np.nan
    with pytest.raises(NiftiInputError, match="Volume 1 of the batch: The array has 1 NaN/Inf voxels"):
        T1VolumeFeatureExtractor()([mni_voxels, damaged], affine=mni.affine)


def test_damaged_file_is_refused(tmp_path, mni):
    path = tmp_path / "truncated.nii.gz"
    nib.save(mni, path)
    path.write_bytes(path.read_bytes()[:-5000])
    message = r"truncated\.nii\.gz: its header claims .* needs 8,675,641 bytes uncompressed, but the file holds at most"
    with pytest.raises(NiftiInputError, match=message):
        T1VolumeFeatureExtractor()(path)


@pytest.mark.parametrize(
    ("length", "target", "kept", "padding"),
    [(10, 6, (2, 8), (0, 0)), (11, 6, (2, 8), (0, 0)), (6, 6, (0, 6), (0, 0)), (4, 7, (0, 4), (1, 2))],
)
def test_centre_pad_or_crop_per_axis(length, target, kept, padding):
    volume = np.arange(1, length + 1, dtype=np.float32)[:, None, None] * np.ones((1, 3, 5), dtype=np.float32)
    box = input_box(volume.shape, [[0, 0]] * 3, [target, 3, 5])
    result = crop_to_box(volume, box)
    assert result.shape == (target, 3, 5)
    expected = np.pad(np.arange(kept[0] + 1, kept[1] + 1, dtype=np.float32), padding)
    np.testing.assert_array_equal(result[:, 1, 2], expected)


def test_input_box_sits_at_fixed_mni_coordinates():
    extractor = T1VolumeFeatureExtractor()
    np.testing.assert_array_equal(extractor.input_box(), [[20, 180], [21, 213], [25, 185]])
    expected_affine = [[1, 0, 0, -78], [0, 1, 0, -113], [0, 0, 1, -47], [0, 0, 0, 1]]
    np.testing.assert_array_equal(extractor.input_affine(), expected_affine)
    # Padding widths move the box on the grid: with none, a deficit is split floor-first before the grid's start.
    bare = T1VolumeFeatureExtractor(reference_padding=[[0, 0]] * 3, volume_size=[200, 192, 160])
    np.testing.assert_array_equal(bare.input_box(), [[-1, 199], [20, 212], [14, 174]])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"normalization": "minmax"}, "`normalization` must be one of"),
        ({"volume_size": [160, 192]}, "`volume_size` must be three positive sizes"),
        ({"target_spacing": 0}, "`target_spacing` must be positive"),
        ({"reference_field_of_view": [[-98, 98], [98, -134], [-72, 116]]}, "`reference_field_of_view` must be three"),
        ({"reference_padding": [[6, 9], [2, 4]]}, "`reference_padding` must be three non-negative"),
    ],
)
def test_invalid_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        T1VolumeFeatureExtractor(**kwargs)


def test_saved_settings_reload_and_can_be_overridden():
    extractor = T1VolumeFeatureExtractor(volume_size=[64, 64, 64], normalization="brain", check_mni_space=False)
    with tempfile.TemporaryDirectory() as directory:
        extractor.save_pretrained(directory)
        reloaded = T1VolumeFeatureExtractor.from_pretrained(directory)
        resampling = T1VolumeFeatureExtractor.from_pretrained(directory, resample=True)
    assert reloaded.to_dict() == extractor.to_dict()
    assert resampling.resample and resampling.volume_size == [64, 64, 64]
    volume = np.random.default_rng(0).normal(size=(50, 70, 60)).astype(np.float32)
    np.testing.assert_array_equal(
        reloaded(volume, affine=np.eye(4))["pixel_values"], extractor(volume, affine=np.eye(4))["pixel_values"]
    )


def test_auto_feature_extractor_loads_it_next_to_a_structure_config():
    extractor = T1VolumeFeatureExtractor(normalization="brain", resample=True)
    with tempfile.TemporaryDirectory() as directory:
        StructureMAEConfig().save_pretrained(directory)
        saved = Path(extractor.save_pretrained(directory)[0])
        # Without the class name in the file, the class must come from the registration for the config's model type.
        settings = json.loads(saved.read_text())
        del settings["feature_extractor_type"], settings["auto_map"]
        saved.write_text(json.dumps(settings))
        loaded = AutoFeatureExtractor.from_pretrained(directory)
    assert type(loaded) is T1VolumeFeatureExtractor
    assert loaded.to_dict() == extractor.to_dict()


def test_load_time_options_reach_the_extractor_even_when_the_saved_file_lacks_them(tmp_path):
    StructureMAEConfig().save_pretrained(tmp_path)
    saved = Path(T1VolumeFeatureExtractor().save_pretrained(tmp_path)[0])
    settings = json.loads(saved.read_text())
    del settings["check_mni_space"]  # as in a file saved before the option existed
    saved.write_text(json.dumps(settings))
    loaded = AutoFeatureExtractor.from_pretrained(tmp_path, check_mni_space=False, resample=True)
    assert (loaded.check_mni_space, loaded.resample) == (False, True)
    with pytest.raises(ValueError, match=r"\['resampel'\] are not options of T1VolumeFeatureExtractor"):
        AutoFeatureExtractor.from_pretrained(tmp_path, resampel=True)
    with pytest.raises(ValueError, match="`normalization` must be one of"):
        T1VolumeFeatureExtractor.from_pretrained(tmp_path, normalization="minmax")
