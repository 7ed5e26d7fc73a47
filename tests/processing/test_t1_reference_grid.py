"""The T1's place in space: nilearn's MNI152 template written to NIfTI files on other grids, orientations, voxel sizes
and obliquities lands on the same reference box; images not in MNI space are refused (and files left untouched)."""

import os

import nibabel as nib
import numpy as np
import pytest
from nibabel.testing import data_path
from scipy import ndimage

from brainharmonix_hf import sample_data
from brainharmonix_hf.processing.feature_extraction_t1 import T1VolumeFeatureExtractor
from brainharmonix_hf.processing.nifti_io import NiftiInputError
from brainharmonix_hf.processing.reference_grid import (
    MNI152_BRAIN_CENTROID_MM,
    MNI152_BRAIN_EXTENT_MM,
    MNI152_FIELD_OF_VIEW,
    brain_geometry,
    reference_grid,
)

ANATOMICAL = os.path.join(data_path, "anatomical.nii")  # real native-space T1, 33 x 41 x 25, 2 mm
NOT_MNI = r"does not look like an MNI152-space T1.*fMRIPrep.*antsRegistration.*FLIRT/FNIRT.*SPM.*check_mni_space=False"


@pytest.fixture(scope="module")
def template():
    """The template as its own NIfTI file stores it (uint8 with a scale factor), read back as float32 voxels."""
    image = sample_data.load_t1_sample()
    voxels = np.asarray(image.get_fdata(dtype=np.float32))
    return nib.Nifti1Image(voxels, image.affine)


@pytest.fixture(scope="module")
def on_grid(template):
    """Raw intensities of the template in the output box (no z-score), to compare other grids against."""
    return T1VolumeFeatureExtractor(normalization="none")(template)["pixel_values"][0, 0]


def _resampled(template: nib.Nifti1Image, affine: np.ndarray, shape: tuple[int, int, int]) -> nib.Nifti1Image:
    """The template's brain on another grid (same world positions), by trilinear interpolation."""
    to_template = np.linalg.inv(template.affine) @ affine
    data = ndimage.affine_transform(
        template.get_fdata(dtype=np.float32), to_template[:3, :3], to_template[:3, 3], output_shape=shape, order=1
    )
    return nib.Nifti1Image(data, affine)


def _centroid(volume: np.ndarray) -> np.ndarray:
    """Intensity-weighted centre of the volume, in voxels."""
    grid = np.indices(volume.shape).reshape(3, -1)
    weights = volume.reshape(-1).astype(np.float64)
    return grid @ weights / weights.sum()


def _file_state(path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


def test_reference_grid_is_the_template_grid_and_the_box_sits_at_fixed_mni_coordinates(template):
    affine, shape = reference_grid(MNI152_FIELD_OF_VIEW, 1.0)
    assert shape == template.shape == (197, 233, 189)
    np.testing.assert_array_equal(affine, template.affine)
    # Constants the MNI-space check compares against, measured on the template itself.
    centroid, extent = brain_geometry(template)
    np.testing.assert_allclose(centroid, MNI152_BRAIN_CENTROID_MM, atol=0.05)
    # Extents are measured on a lattice of every 2nd voxel of the 1 mm template: to within its 2 mm spacing.
    np.testing.assert_allclose(extent, MNI152_BRAIN_EXTENT_MM, atol=2.0)
    assert reference_grid(MNI152_FIELD_OF_VIEW, 2.0)[1] == (99, 117, 95)


def test_template_file_is_mapped_exactly_as_pad_zscore_crop_of_its_own_voxels(tmp_path):
    """On the grid, the mapping is the identity: the output is bit for bit what the processor computed before the
    affine was used (pad by the reference widths, whole-volume z-score in float32 with float64 statistics, centre
    crop), computed here by hand from the file's voxels."""
    path = tmp_path / "mni.nii.gz"
    nib.save(sample_data.load_t1_sample(), path)
    voxels = nib.load(path).get_fdata(dtype=np.float32)
    padded = np.pad(voxels, ((6, 9), (2, 4), (0, 22)))
    mean, std = float(padded.mean(dtype=np.float64)), float(padded.std(dtype=np.float64))
    expected = (padded[26:186, 23:215, 25:185] - mean) / (std + 1e-9)
    assert expected.dtype == np.float32
    np.testing.assert_array_equal(T1VolumeFeatureExtractor()(path)["pixel_values"][0, 0], expected)


def test_larger_grid_and_lps_storage_land_exactly_on_the_template_result(tmp_path, template, on_grid):
    voxels = template.get_fdata(dtype=np.float32)
    # (b) The same brain inside a 256^3 1 mm grid that starts 30, 10 and 40 voxels earlier.
    large = np.zeros((256, 256, 256), dtype=np.float32)
    large[30:227, 10:243, 40:229] = voxels
    large_affine = template.affine @ nib.affines.from_matvec(np.eye(3), [-30, -10, -40])
    # (e) LPS storage: the first two axes flipped, the affine moved with them.
    lps_affine = template.affine @ nib.affines.from_matvec(np.diag([-1, -1, 1]), [196, 232, 0])
    lps = np.ascontiguousarray(voxels[::-1, ::-1])
    extractor = T1VolumeFeatureExtractor(normalization="none")
    for name, data, affine in (("large.nii", large, large_affine), ("lps.nii", lps, lps_affine)):
        nib.save(nib.Nifti1Image(data, affine), tmp_path / name)
        np.testing.assert_array_equal(extractor(tmp_path / name)["pixel_values"][0, 0], on_grid)
    assert nib.aff2axcodes(lps_affine) == ("L", "P", "S")
    # The statistics come from the reference grid, not the file's field of view: the z-scored outputs agree too.
    np.testing.assert_array_equal(
        T1VolumeFeatureExtractor()(tmp_path / "large.nii")["pixel_values"],
        T1VolumeFeatureExtractor()(template)["pixel_values"],
    )


@pytest.mark.parametrize("case", ["1.05 mm", "30 degrees oblique"])
def test_other_voxel_sizes_and_oblique_affines_are_resampled_onto_the_grid(tmp_path, template, on_grid, case):
    if case == "1.05 mm":
        # (c) 1.05 mm voxels over the template's field of view.
        affine = nib.affines.from_matvec(np.eye(3) * 1.05, template.affine[:3, 3])
        shape = (187, 221, 180)
    else:
        # (d) Voxel axes rotated by 30 degrees about an oblique axis, around the brain's centre, on a grid large enough
        # to hold the whole brain: the same brain in world space.
        axis = np.array([1.0, 1.0, 0.5]) / np.linalg.norm([1.0, 1.0, 0.5])
        angle = np.radians(30)
        cross = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
        rotation = np.eye(3) + np.sin(angle) * cross + (1 - np.cos(angle)) * cross @ cross
        shape = (240, 260, 240)
        centre = np.array(MNI152_BRAIN_CENTROID_MM)
        affine = nib.affines.from_matvec(rotation, centre - rotation @ (np.array(shape) - 1) / 2)
    path = tmp_path / "moved.nii"
    nib.save(_resampled(template, affine, shape), path)
    before = _file_state(path)
    with pytest.raises(NiftiInputError, match=r"not on the model's reference grid.*Pass `resample=True`"):
        T1VolumeFeatureExtractor()(path)
    assert _file_state(path) == before
    result = T1VolumeFeatureExtractor(resample=True, normalization="none")(path)["pixel_values"][0, 0]
    correlation = np.corrcoef(result.reshape(-1), on_grid.reshape(-1))[0, 1]
    assert correlation > 0.99, correlation  # measured: 0.998 (1.05 mm), 0.997 (oblique)
    assert np.linalg.norm(_centroid(result) - _centroid(on_grid)) < 0.25  # voxels; measured < 0.05


@pytest.mark.parametrize("case", ["translated template", "native-space anatomical"])
def test_images_not_in_mni_space_are_refused_and_the_override_works(tmp_path, template, on_grid, case):
    if case == "translated template":
        # (f) The template with its origin moved by 60 mm: a brain far from where MNI puts it.
        affine = template.affine.copy()
        affine[:3, 3] += [0.0, 60.0, 0.0]
        path = tmp_path / "shifted.nii"
        nib.save(nib.Nifti1Image(template.get_fdata(dtype=np.float32), affine), path)
    else:
        path = tmp_path / "anatomical.nii"  # a copy, so its bytes and mtime can be checked
        path.write_bytes(open(ANATOMICAL, "rb").read())
    before = _file_state(path)
    with pytest.raises(NiftiInputError, match=NOT_MNI):
        T1VolumeFeatureExtractor(resample=True)(path)
    assert _file_state(path) == before
    overridden = T1VolumeFeatureExtractor(resample=True, check_mni_space=False, normalization="none")(path)
    volume = overridden["pixel_values"][0, 0]
    assert volume.shape == (160, 192, 160) and np.count_nonzero(volume) > 0
    assert _file_state(path) == before
    if case == "translated template":
        # Placed where its affine says: 60 voxels further along y than the template (the part beyond the box is cut).
        np.testing.assert_array_equal(volume[:, 60:], on_grid[:, :-60])
