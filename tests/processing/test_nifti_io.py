"""NIfTI loading and validation on real files written with nibabel, and on nibabel's shipped images."""

import gzip
import math
import pickle
import re
import tracemalloc
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from nibabel.filebasedimages import ImageFileError
from nibabel.testing import data_path

from brainharmonix_hf.processing.feature_extraction_fmri import FMRIFeatureExtractor
from brainharmonix_hf.processing.feature_extraction_t1 import T1VolumeFeatureExtractor
from brainharmonix_hf.processing.nifti_io import (
    NiftiFileError,
    NiftiInputError,
    as_3d,
    check_labels_on_grid,
    load_image,
    repetition_time,
    require_4d,
    to_ras,
    voxel_sizes,
)

ANATOMICAL = Path(data_path) / "anatomical.nii"  # real T1, 33 x 41 x 25, 2 mm, LAS
FUNCTIONAL = Path(data_path) / "functional.nii"  # real 4D run, 17 x 21 x 3 x 20, TR 2 s


@pytest.fixture(scope="module")
def anatomical():
    return nib.load(ANATOMICAL)


@pytest.fixture
def anatomical_gz(tmp_path, anatomical):
    path = tmp_path / "anatomical.nii.gz"
    nib.save(anatomical, path)
    return path


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_path_round_trip_keeps_voxels_and_affine(tmp_path, anatomical, suffix):
    path = tmp_path / f"t1{suffix}"
    nib.save(anatomical, path)
    for source in (path, str(path)):
        image = load_image(source)
        assert isinstance(image, nib.Nifti1Image)
        np.testing.assert_array_equal(image.get_fdata(), anatomical.get_fdata())
        np.testing.assert_array_equal(image.affine, anatomical.affine)


def test_a_loaded_image_is_not_checked_again_but_one_derived_from_it_is(anatomical_gz):
    """An image `load_image` returned comes back as it is (also after pickling, as into DataLoader workers); an image
    made from it with other voxels is read and checked anew."""
    image = load_image(anatomical_gz)
    assert load_image(image) is image
    copied = pickle.loads(pickle.dumps(image))
    assert load_image(copied) is copied
    data = image.get_fdata()
    data[0, 0, 0] = np.nan
    with pytest.raises(NiftiInputError, match="1 NaN/Inf voxels"):
        load_image(image.__class__(data, image.affine, image.header))
    sliced = image.slicer[1:, :, :]
    assert load_image(sliced) is not sliced and load_image(sliced).shape == (image.shape[0] - 1, *image.shape[1:])


def test_4d_file_keeps_header_repetition_time(tmp_path):
    path = tmp_path / "run.nii.gz"
    nib.save(nib.load(FUNCTIONAL), path)
    image = load_image(path)
    assert image.shape == (17, 21, 3, 20)
    assert repetition_time(image) == pytest.approx(2.0)


def test_non_nifti_nibabel_image_is_converted(anatomical):
    data = anatomical.get_fdata(dtype=np.float32)
    image = load_image(nib.MGHImage(data, anatomical.affine))
    assert isinstance(image, nib.Nifti1Image)
    np.testing.assert_array_equal(image.get_fdata(dtype=np.float32), data)
    np.testing.assert_allclose(image.affine, anatomical.affine)


@pytest.mark.parametrize(
    ("array", "stored_dtype"),
    [
        (np.arange(24, dtype=np.float64).reshape(2, 3, 4), np.float64),
        (torch.arange(24, dtype=torch.float32).reshape(2, 3, 4), np.float32),
        (np.arange(24).reshape(2, 3, 4) % 2 == 0, np.uint8),
        (np.arange(24, dtype=np.float16).reshape(2, 3, 4), np.float32),
    ],
)
def test_array_with_affine(array, stored_dtype):
    affine = np.diag([2.0, 3.0, 4.0, 1.0])
    image = load_image(array, affine=affine)
    assert image.dataobj.dtype == stored_dtype
    np.testing.assert_array_equal(image.get_fdata(), np.asarray(array, dtype=np.float64))
    assert voxel_sizes(image) == (2.0, 3.0, 4.0)


def test_array_without_affine_is_refused():
    with pytest.raises(NiftiInputError, match=r"pass its `affine=`.*load_mni152_template\(resolution=1\)\.affine"):
        load_image(np.zeros((4, 4, 4)))


@pytest.mark.parametrize("affine", [np.eye(3), np.full((4, 4), np.nan), np.zeros((4, 4))])
def test_invalid_affine_is_refused(affine):
    with pytest.raises(NiftiInputError, match="finite, invertible 4x4"):
        load_image(np.zeros((4, 4, 4)), affine=affine)


def test_affine_with_a_file_is_refused(anatomical_gz):
    with pytest.raises(NiftiInputError, match="applies to arrays only; a file path carries its own"):
        load_image(anatomical_gz, affine=np.eye(4))


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"No NIfTI file at .*absent\.nii\.gz"):
        load_image(tmp_path / "absent.nii.gz")


def test_wrong_extension_is_refused(tmp_path, anatomical):
    path = tmp_path / "t1.mgz"
    nib.save(nib.MGHImage(anatomical.get_fdata(dtype=np.float32), anatomical.affine), path)
    with pytest.raises(NiftiInputError, match=r"t1\.mgz is not a NIfTI file \(expected a name ending in \.nii"):
        load_image(path)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("garbage.nii", b"not an image " * 100),  # wrong magic
        ("plain.nii.gz", ANATOMICAL.read_bytes()),  # uncompressed bytes behind a .gz name
    ],
)
def test_unreadable_header_is_refused(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(NiftiInputError, match=rf"{name} is not a readable NIfTI file .*header is missing or damaged"):
        load_image(path)


def test_truncated_gzip_is_detected_at_load(tmp_path, anatomical_gz):
    path = tmp_path / "truncated.nii.gz"
    path.write_bytes(anatomical_gz.read_bytes()[:-2000])
    message = r"truncated\.nii\.gz: its header claims .* needs 68,002 bytes uncompressed, but the file holds at most"
    with pytest.raises(NiftiInputError, match=message):
        load_image(path)


def test_corrupt_gzip_is_detected_at_load(tmp_path, anatomical_gz):
    compressed = bytearray(anatomical_gz.read_bytes())
    middle = len(compressed) // 2
    compressed[middle : middle + 64] = bytes(byte ^ 0xFF for byte in compressed[middle : middle + 64])
    path = tmp_path / "corrupt.nii.gz"
    path.write_bytes(bytes(compressed))
    with pytest.raises(NiftiInputError, match=r"corrupt\.nii\.gz: the file is truncated or corrupt"):
        load_image(path)


def test_truncated_uncompressed_file_is_detected_at_load(tmp_path):
    path = tmp_path / "truncated.nii"
    raw = ANATOMICAL.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    message = r"truncated\.nii: .* needs 68,002 bytes, but the file holds at most 34,001"
    with pytest.raises(NiftiInputError, match=message):
        load_image(path)


def test_file_errors_are_nibabel_image_file_errors_and_input_errors(tmp_path, anatomical_gz):
    truncated = tmp_path / "truncated.nii.gz"
    truncated.write_bytes(anatomical_gz.read_bytes()[:-2000])
    garbage = tmp_path / "garbage.nii"
    garbage.write_bytes(b"not an image " * 100)
    other_format = tmp_path / "t1.mgz"
    other_format.write_bytes(b"\0" * 400)
    for path in (truncated, garbage, other_format):
        # Callers written for nibabel (`except ImageFileError`) and for this package both catch it.
        with pytest.raises(ImageFileError) as raised:
            load_image(path)
        assert isinstance(raised.value, NiftiFileError) and isinstance(raised.value, NiftiInputError)
        assert path.name in str(raised.value)


@pytest.mark.parametrize("bad_value", [np.nan, np.inf, -np.inf])
def test_non_finite_voxels_are_refused(tmp_path, bad_value):
    data = np.ones((5, 6, 7), dtype=np.float32)
    data[1, 2, 3] = bad_value
    data[4, 5, 6] = bad_value
    with pytest.raises(NiftiInputError, match=r"The array has 2 NaN/Inf voxels out of 210.*nan_to_num"):
        load_image(data, affine=np.eye(4))
    path = tmp_path / "bad.nii.gz"
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)
    with pytest.raises(NiftiInputError, match=r"bad\.nii\.gz has 2 NaN/Inf voxels"):
        load_image(path)


@pytest.mark.parametrize("shape", [(5, 6), (2, 3, 4, 5, 6)])
def test_wrong_number_of_dimensions_is_refused(shape):
    with pytest.raises(NiftiInputError, match=re.escape(f"has shape {shape} ({len(shape)}D)")):
        load_image(np.zeros(shape), affine=np.eye(4))


def test_other_python_types_are_refused():
    with pytest.raises(TypeError, match="call the processor with a list"):
        load_image([np.zeros((2, 2, 2))])


def test_as_3d_squeezes_a_single_volume_and_refuses_several():
    data = np.random.default_rng(0).normal(size=(4, 5, 6, 1)).astype(np.float32)
    squeezed = as_3d(load_image(data, affine=np.diag([2.0, 2.0, 2.0, 1.0])))
    assert squeezed.shape == (4, 5, 6)
    np.testing.assert_array_equal(squeezed.get_fdata(dtype=np.float32), data[..., 0])
    assert voxel_sizes(squeezed) == (2.0, 2.0, 2.0)
    with pytest.raises(NiftiInputError, match=r"4D with 3 volumes \(4, 5, 6, 3\).*index_img"):
        as_3d(load_image(np.zeros((4, 5, 6, 3)), affine=np.eye(4)))


def test_require_4d_refuses_a_volume(anatomical):
    with pytest.raises(NiftiInputError, match=r"shape \(33, 41, 25\), but a 4D time series"):
        require_4d(anatomical)
    series = nib.load(FUNCTIONAL)
    assert require_4d(series) is series


@pytest.mark.parametrize(
    ("zoom", "unit", "expected"),
    [(2.0, "sec", 2.0), (720.0, "msec", 0.72), (800000.0, "usec", 0.8), (1.5, "unknown", 1.5),
     (0.0, "sec", None), (2.0, "hz", None)],
)  # fmt: skip
def test_repetition_time_from_header(zoom, unit, expected):
    image = nib.Nifti1Image(np.zeros((2, 2, 2, 3), dtype=np.float32), np.eye(4))
    image.header.set_zooms((1.0, 1.0, 1.0, zoom))
    image.header.set_xyzt_units("mm", unit)
    assert repetition_time(image) == (pytest.approx(expected) if expected is not None else None)


def test_repetition_time_of_a_volume_is_none(anatomical):
    assert repetition_time(anatomical) is None


def test_voxel_sizes_of_an_oblique_affine():
    rotation = np.array([[np.cos(0.3), -np.sin(0.3), 0.0], [np.sin(0.3), np.cos(0.3), 0.0], [0.0, 0.0, 1.0]])
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag([1.5, 2.0, 3.0])
    assert voxel_sizes(nib.Nifti1Image(np.zeros((2, 2, 2), dtype=np.float32), affine)) == pytest.approx((1.5, 2.0, 3.0))


def test_to_ras_flips_the_las_anatomical(anatomical):
    assert nib.aff2axcodes(anatomical.affine) == ("L", "A", "S")
    ras = to_ras(anatomical)
    assert nib.aff2axcodes(ras.affine) == ("R", "A", "S")
    np.testing.assert_array_equal(ras.get_fdata(), anatomical.get_fdata()[::-1])


def test_labels_on_the_image_grid():
    series = load_image(nib.load(FUNCTIONAL))
    labels = np.arange(17 * 21 * 3).reshape(17, 21, 3, 1) % 7
    checked = check_labels_on_grid(nib.Nifti1Image(labels.astype(np.int16), series.affine), series)
    assert checked.shape == (17, 21, 3)
    np.testing.assert_array_equal(np.asanyarray(checked.dataobj), labels[..., 0])


def test_labels_off_the_image_grid_are_refused():
    series = load_image(nib.load(FUNCTIONAL))
    other_shape = nib.Nifti1Image(np.zeros((17, 21, 4), dtype=np.int16), series.affine)
    with pytest.raises(
        NiftiInputError, match=r"(?s)not on the grid of the image \(shape \(17, 21, 3\)\).*resample_to_img"
    ):
        check_labels_on_grid(other_shape, series)
    shifted_affine = series.affine.copy()
    shifted_affine[0, 3] += 2.0
    shifted = nib.Nifti1Image(np.zeros((17, 21, 3), dtype=np.int16), shifted_affine)
    with pytest.raises(NiftiInputError, match="not on the grid"):
        check_labels_on_grid(shifted, series)


def test_non_integer_labels_are_refused():
    series = load_image(nib.load(FUNCTIONAL))
    blurred = nib.Nifti1Image(np.full((17, 21, 3), 2.5, dtype=np.float32), series.affine)
    with pytest.raises(NiftiInputError, match=r"non-integer values.*interpolation='nearest'"):
        check_labels_on_grid(blurred, series)


# Hostile headers: refused from the header alone, before any voxel is allocated.


def _write_claiming(path: Path, shape: tuple[int, ...], payload: bytes, header_class=nib.Nifti1Header) -> None:
    """A NIfTI file whose header claims `shape` (float32) but whose data is only `payload`."""
    header = header_class()
    header.set_data_dtype(np.float32)
    header.set_data_shape(shape)
    header.set_qform(np.eye(4), code=1)
    header.set_sform(np.eye(4), code=1)
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wb") as file:
        header.write_to(file)
        file.write(b"\0" * (int(header["vox_offset"]) - file.tell()))
        file.write(payload)


def _refused_with_little_memory(load, path: Path, message: str) -> float:
    """Assert `load(path)` raises `NiftiInputError` matching `message` leaving the file untouched; peak MB traced."""
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    tracemalloc.start()
    try:
        with pytest.raises(NiftiInputError, match=message):
            load(path)
        peak = tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before
    return peak


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
@pytest.mark.parametrize(
    "shape", [(100_000, 100_000, 100_000), (10_000, 10_000, 10_000, 1_000)], ids=["3D 1e15 voxels", "4D 1e15 voxels"]
)
def test_header_claiming_more_than_the_limit_is_refused_before_allocation(tmp_path, shape, suffix):
    path = tmp_path / f"huge{suffix}"
    _write_claiming(path, shape, np.ones(1024, dtype=np.float32).tobytes(), header_class=nib.Nifti2Header)
    message = re.escape(f"claims a shape of {shape}") + r", 1,000,000,000,000,000 voxels, more than the limit of 2,147"
    assert _refused_with_little_memory(load_image, path, message) < 2


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
@pytest.mark.parametrize("shape", [(1024, 1024, 1024), (91, 109, 91, 1200)], ids=["3D 4 GiB", "4D 4 GiB"])
def test_header_claiming_more_than_the_file_holds_is_refused_before_allocation(tmp_path, shape, suffix):
    # 6 MiB of random (incompressible) voxels: a .nii.gz of this size could hold 6 GiB by deflate's ratio, so only
    # its trailer and a streaming count can tell that it holds 6 MiB.
    payload = np.random.default_rng(0).random(3 * 2**19).astype(np.float32).tobytes()
    path = tmp_path / f"short{suffix}"
    _write_claiming(path, shape, payload)
    needed = 352 + math.prod(shape) * 4
    held = 352 + len(payload)
    holds = re.escape(f", but the file holds at most {held:,}")
    message = re.escape(f"needs {needed:,} bytes") + r"( uncompressed)?" + holds
    assert _refused_with_little_memory(load_image, path, message) < 8
    # A loaded (lazy) image of the file is checked the same way.
    assert _refused_with_little_memory(lambda p: load_image(nib.load(p)), path, message) < 8


def test_hostile_runs_and_volumes_are_refused_by_the_processors(tmp_path):
    volume, run = tmp_path / "t1.nii.gz", tmp_path / "run.nii.gz"
    _write_claiming(volume, (100_000, 100_000, 100_000), b"\0" * 4096, header_class=nib.Nifti2Header)
    _write_claiming(run, (91, 109, 91, 1200), b"\0" * 4096)
    labels = nib.Nifti1Image(np.ones((91, 109, 91), dtype=np.int16), np.eye(4))
    assert _refused_with_little_memory(T1VolumeFeatureExtractor(), volume, "more than the limit") < 2
    extractor = FMRIFeatureExtractor(num_rois=1, atlas="one_roi")
    refused = _refused_with_little_memory(lambda path: extractor.process_nifti(path, labels), run, "holds at most")
    assert refused < 8


def test_a_stated_voxel_limit_refuses_a_real_run():
    with pytest.raises(NiftiInputError, match=r"\(17, 21, 3, 20\), 21,420 voxels, more than the limit of 10,000"):
        load_image(FUNCTIONAL, max_voxels=10_000)
    assert load_image(FUNCTIONAL, max_voxels=21_420).shape == (17, 21, 3, 20)


# sform and qform.


def _with_forms(tmp_path, sform_shift: float, sform_code: int = 4, qform_code: int = 1) -> Path:
    anatomical = nib.load(ANATOMICAL)
    image = nib.Nifti1Image(anatomical.get_fdata(dtype=np.float32), None)
    image.set_qform(anatomical.affine, code=qform_code)
    shifted = anatomical.affine.copy()
    shifted[1, 3] += sform_shift
    image.set_sform(shifted, code=sform_code)
    path = tmp_path / "forms.nii.gz"
    nib.save(image, path)
    return path


def test_sform_and_qform_disagreeing_warns_naming_the_one_used(tmp_path):
    path = _with_forms(tmp_path, sform_shift=5.0)
    message = r"sform \(code 4\) and qform \(code 1\) disagree.*up to 5\.00 mm apart\. Using the sform \(code 4\)"
    with pytest.warns(UserWarning, match=message):
        image = load_image(path)
    assert image.affine[1, 3] == pytest.approx(nib.load(ANATOMICAL).affine[1, 3] + 5.0)


@pytest.mark.parametrize(("shift", "sform_code"), [(0.0, 4), (5.0, 0)], ids=["agreeing", "sform unset"])
def test_agreeing_or_unset_forms_do_not_warn(tmp_path, shift, sform_code):
    path = _with_forms(tmp_path, sform_shift=shift, sform_code=sform_code)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image = load_image(path)
    np.testing.assert_allclose(image.affine, nib.load(ANATOMICAL).affine, atol=1e-5)
