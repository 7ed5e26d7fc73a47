# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Loading and validating NIfTI images at the package boundary.

Every processor that takes a brain image goes through `load_image`, which accepts

- a path (`str` or `os.PathLike`) to a `.nii` or `.nii.gz` file,
- a nibabel spatial image (`Nifti1Image`, `Nifti2Image`, or any other nibabel image with an affine, e.g. the
  `Nifti1Image` a `datasets` `Nifti` feature decodes to),
- an array (numpy, or anything `np.asarray` accepts such as a CPU torch tensor) together with its `affine=`.

and returns an in-memory `nib.Nifti1Image` whose voxels have all been read and checked; passing that image to
`load_image` again returns it as it is, so callers may hand loaded images down without a second check (an image whose
voxel array was replaced, or derived from it by slicing or reorienting, is checked again). Reading the data at load time
means a truncated or corrupt `.nii.gz` fails here, with the file name, instead of deep inside a processor. Problems
with the content raise `NiftiInputError` (a `ValueError`); a file that is not a readable NIfTI image (wrong format,
damaged header, truncated or corrupt voxels) raises `NiftiFileError`, which is both a `NiftiInputError` and nibabel's
`ImageFileError`, so code that catches nibabel's error catches ours too; a missing file raises `FileNotFoundError`; an
input of the wrong Python type raises `TypeError`. Every message names the problem and how to fix it.

Before any voxel is read, the header's claimed size is checked: more than `max_voxels` voxels, or more bytes than the
file can hold (its size for `.nii`; for `.nii.gz` the gzip trailer's length, confirmed by a streaming count that
allocates nothing, and deflate's largest ratio), is refused from the header alone. A header whose sform and qform
disagree gets a warning naming the one used.
"""

import gzip
import math
import os
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.arrayproxy import ArrayProxy
from nibabel.filebasedimages import ImageFileError
from nibabel.freesurfer.mghformat import MGHHeader
from nibabel.spatialimages import SpatialImage

from ..modeling.user_warnings import warn_at_caller

NIFTI_SUFFIXES = (".nii", ".nii.gz")

# Seconds per unit of the NIfTI time code (`header.get_xyzt_units()[1]`). "unknown" is read as seconds, which is what
# most tools that leave the unit unset mean; "hz", "ppm" and "rads" mean the fourth axis is not time.
_SECONDS_PER_TIME_UNIT = {"sec": 1.0, "msec": 1e-3, "usec": 1e-6, "unknown": 1.0}

# Largest image read, in voxels (all axes together). 2**31 voxels hold a 4D run of 91 x 109 x 91 x 2375 frames (2 mm
# MNI, HCP-length) and take 8 GiB as float32; raise it per call with `load_image(..., max_voxels=)`.
MAX_VOXELS = 2**31
# Deflate never compresses better than about 1032:1, so a .gz file of n bytes holds at most this many times n.
_DEFLATE_MAX_RATIO = 1032
# Bytes a gzip member may hold after the voxel data (NIfTI writers add none; a little slack for unusual ones).
_GZIP_TRAILING_SLACK = 2**20
_GZIP_MAGIC = b"\x1f\x8b"
# sform and qform closer than this (mm, at every corner of the image) are taken to agree.
_AFFINE_AGREEMENT_MM = 0.01
_SFORM_QFORM_NAMES = {True: "sform", False: "qform"}

ImageSource = str | os.PathLike | SpatialImage | np.ndarray
# The attribute by which `load_image` marks an image it checked: the voxel array it checked (kept across pickling).
_CHECKED_VOXELS = "_brainharmonix_checked_voxels"


class NiftiInputError(ValueError):
    """A brain image that cannot be used as given; the message says what is wrong and how to fix it."""


class NiftiFileError(NiftiInputError, ImageFileError):
    """A file that is not a readable NIfTI image; also a nibabel `ImageFileError`."""


def load_image(source: ImageSource, affine: np.ndarray | None = None, max_voxels: int = MAX_VOXELS) -> nib.Nifti1Image:
    """Load a 3D or 4D brain image and check it: readable, finite, with a usable affine.

    Args:
        source: a `.nii`/`.nii.gz` path, a nibabel spatial image, or a voxel array `(x, y, z)` or `(x, y, z, t)`.
        affine: the `(4, 4)` voxel-to-world matrix of an array `source`; required for arrays (for a T1 on the
            MNI152 template grid, that grid's affine), refused otherwise because files and images carry their own.
        max_voxels: largest number of voxels (all axes together) a file or file-backed image may claim; checked on
            the header before any voxel is read.

    Returns:
        An in-memory `nib.Nifti1Image` (header kept for file and image inputs, so the TR stays readable); `source`
        itself when it is such an image already (returned by `load_image`, voxel array unchanged).

    Raises:
        FileNotFoundError: the path does not exist.
        TypeError: `source` is none of the accepted kinds.
        NiftiFileError: not a NIfTI file, damaged header, a header claiming more voxels than `max_voxels` or than
            the file holds, truncated or corrupt data (also a `NiftiInputError`).
        NiftiInputError: NaN/Inf voxels, wrong number of dimensions, missing or invalid affine.

    Warns:
        UserWarning: the header's sform and qform disagree (the message names the one used).
    """
    if affine is None and _is_checked(source):
        return source
    if isinstance(source, (str, os.PathLike)):
        _refuse_affine(affine, "a file path")
        image = _read_file(Path(source), max_voxels)
        name = str(source)
    elif isinstance(source, SpatialImage):
        _refuse_affine(affine, "a nibabel image")
        image = _in_memory(source, name="The nibabel image", max_voxels=max_voxels)
        name = "The nibabel image"
    elif isinstance(source, (list, tuple, dict)) or not hasattr(source, "__array__"):
        raise TypeError(
            f"Expected a path to a .nii/.nii.gz file, a nibabel image, or an array with `affine=`; got "
            f"{type(source).__name__}. For several images, call the processor with a list of them."
        )
    else:
        name = "The array"
        image = nib.Nifti1Image(_voxel_array(np.asarray(source)), _checked_affine(affine), dtype="compat")
    _check_dimensions(image, name)
    _check_finite(np.asanyarray(image.dataobj), name)
    setattr(image, _CHECKED_VOXELS, image.dataobj)
    return image


def _is_checked(source) -> bool:
    """Whether `source` is an image `load_image` returned, still holding the voxel array it checked."""
    return isinstance(source, nib.Nifti1Image) and getattr(source, _CHECKED_VOXELS, None) is source.dataobj


def voxel_sizes(image: SpatialImage) -> tuple[float, float, float]:
    """Spatial voxel sizes in mm along the three array axes (column norms of the affine, so obliques are right)."""
    return tuple(float(size) for size in nib.affines.voxel_sizes(image.affine)[:3])


def to_ras(image: SpatialImage) -> SpatialImage:
    """Reorder and flip the array axes to the closest RAS+ orientation (no interpolation)."""
    return nib.as_closest_canonical(image)


def as_3d(image: SpatialImage, name: str = "The image") -> SpatialImage:
    """Return a 3D image: a 4D image with a single volume is squeezed, one with several volumes is refused."""
    if image.ndim == 3:
        return image
    num_volumes = image.shape[3]
    if num_volumes != 1:
        raise NiftiInputError(
            f"{name} is 4D with {num_volumes} volumes {tuple(image.shape)}, but a single 3D volume is expected. "
            f"Pick one volume first, e.g. `nibabel.funcs.four_to_three(img)[0]` or "
            f"`nilearn.image.index_img(img, 0)`."
        )
    return image.slicer[..., 0]


def require_4d(image: SpatialImage, name: str = "The image") -> SpatialImage:
    """Return the image if it is a 4D series `(x, y, z, t)`, else raise naming its shape."""
    if image.ndim != 4:
        raise NiftiInputError(
            f"{name} has shape {tuple(image.shape)}, but a 4D time series (x, y, z, time) is expected. "
            f"Pass the functional run, not an anatomical or a single volume."
        )
    return image


def repetition_time(image: SpatialImage) -> float | None:
    """The repetition time in seconds from a 4D header, or `None` when the header does not give one.

    Reads `header.get_zooms()[3]` in the header's time unit (`xyzt_units`; ms and µs are converted to s, an unset
    unit is read as s; FreeSurfer MGH headers are in ms). Returns `None` for 3D images, a zero or non-finite TR, or a
    fourth axis that is not time.
    """
    if image.ndim < 4:
        return None
    zooms = image.header.get_zooms()
    if len(zooms) < 4:
        return None
    if isinstance(image.header, MGHHeader):  # FreeSurfer .mgh/.mgz (surface series too) store the TR in ms
        seconds_per_unit = 1e-3
    else:
        seconds_per_unit = _SECONDS_PER_TIME_UNIT.get(image.header.get_xyzt_units()[1])
    tr = float(zooms[3])
    if seconds_per_unit is None or not np.isfinite(tr) or tr <= 0:
        return None
    return tr * seconds_per_unit


def check_labels_on_grid(labels: SpatialImage, image: SpatialImage, atol: float = 1e-3) -> SpatialImage:
    """Check that a label (parcellation) image can index the voxels of `image`, and return it as 3D.

    The labels must be a single 3D volume on the same voxel grid (shape of the first three axes and affine within
    `atol` mm) with integer values.
    """
    labels = as_3d(labels, name="The label image")
    if labels.shape[:3] != image.shape[:3] or not np.allclose(labels.affine, image.affine, atol=atol):
        raise NiftiInputError(
            f"The label image (shape {tuple(labels.shape)}) is not on the grid of the image (shape "
            f"{tuple(image.shape[:3])}); affines\n{labels.affine}\nand\n{image.affine}. Resample the labels onto it "
            f"with `nilearn.image.resample_to_img(labels, image, interpolation='nearest')`."
        )
    values = np.asanyarray(labels.dataobj)
    if not np.array_equal(values, np.round(values)):
        raise NiftiInputError(
            "The label image has non-integer values, so it is not a parcellation (or it was resampled with "
            "interpolation). Resample labels with interpolation='nearest'."
        )
    return labels


def _refuse_affine(affine: np.ndarray | None, kind: str) -> None:
    if affine is not None:
        raise NiftiInputError(
            f"`affine=` applies to arrays only; {kind} carries its own affine. Drop `affine=`, or to override it "
            f"load the data and pass the array with the affine you want."
        )


def load_header(path: str | os.PathLike) -> nib.Nifti1Image:
    """The NIfTI image at `path` with its voxels left in the file: header, shape and affine, for what a header states
    (the TR, the number of frames) without decompressing and checking every voxel as `load_image` does.

    Raises:
        FileNotFoundError: the path does not exist.
        NiftiFileError: not a NIfTI file, or a missing or damaged header.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No NIfTI file at {path}. Check the path (relative paths start at {Path.cwd()}).")
    if not path.name.lower().endswith(NIFTI_SUFFIXES):
        raise NiftiFileError(
            f"{path} is not a NIfTI file (expected a name ending in {' or '.join(NIFTI_SUFFIXES)}). Convert it to "
            f"NIfTI, or load it with nibabel and pass the image object."
        )
    try:
        image = nib.load(path)
    except ImageFileError as error:
        raise NiftiFileError(
            f"{path} is not a readable NIfTI file ({error}): its header is missing or damaged. Re-export the image "
            f"as NIfTI, and check that the extension matches the content (.nii.gz must be gzip-compressed)."
        ) from error
    if not isinstance(image, nib.Nifti1Image):
        raise NiftiFileError(
            f"{path} loads as {type(image).__name__}, not NIfTI. Convert it to NIfTI (.nii or .nii.gz)."
        )
    return image


def _read_file(path: Path, max_voxels: int) -> nib.Nifti1Image:
    return _in_memory(load_header(path), name=str(path), max_voxels=max_voxels)


def _in_memory(image: SpatialImage, name: str, max_voxels: int) -> nib.Nifti1Image:
    """Check the claimed size, then read every voxel now (so damaged files fail here); an in-memory NIfTI image."""
    if image.affine is None:
        raise NiftiInputError(f"{name} has no affine. Build it with an affine, e.g. `nib.Nifti1Image(data, affine)`.")
    if isinstance(image.dataobj, ArrayProxy):
        _check_claimed_size(image.dataobj, name, max_voxels)
    _warn_if_sform_and_qform_disagree(image, name)
    try:
        data = np.asanyarray(image.dataobj)
    except (EOFError, zlib.error, gzip.BadGzipFile, OSError, ValueError) as error:
        raise NiftiFileError(
            f"Could not read the voxels of {name}: the file is truncated or corrupt ({type(error).__name__}: "
            f"{error}). Copy or download it again, or re-export it from the source."
        ) from error
    header = image.header if isinstance(image, nib.Nifti1Image) else None
    return nib.Nifti1Image(_voxel_array(data), image.affine, header=header, dtype="compat")


def _check_claimed_size(proxy: ArrayProxy, name: str, max_voxels: int) -> None:
    """Refuse, from the header alone, a file-backed image claiming more voxels than allowed or than its file holds."""
    shape = tuple(int(size) for size in proxy.shape)
    num_voxels = math.prod(shape)
    if num_voxels > max_voxels:
        raise NiftiFileError(
            f"{name}: its header claims a shape of {shape}, {num_voxels:,} voxels, more than the limit of "
            f"{max_voxels:,} voxels. The header is probably damaged or this is not the intended image; if it really "
            f"is that large, pass a larger `max_voxels=` to `load_image` or crop it first."
        )
    if not isinstance(proxy.file_like, (str, os.PathLike)):
        return
    path = Path(proxy.file_like)
    dtype = np.dtype(proxy.dtype)
    needed = int(proxy.offset) + num_voxels * dtype.itemsize
    with path.open("rb") as file:
        compressed = file.read(2) == _GZIP_MAGIC
    held = _gzip_holds_at_least(path, needed) if compressed else path.stat().st_size
    if held < needed:
        raise NiftiFileError(
            f"{name}: its header claims a shape of {shape} ({dtype.name}, {num_voxels:,} voxels), which "
            f"needs {needed:,} bytes{' uncompressed' if compressed else ''}, but the file holds at most {held:,}: "
            f"the file is truncated or its header is damaged; copy or download it again, or re-export it."
        )


def _gzip_holds_at_least(path: Path, needed: int) -> int:
    """Uncompressed bytes of a gzip file, or `needed` when its trailer already shows there are enough.

    Deflate's largest compression ratio bounds it first. The trailer stores the length modulo 2**32, which settles a
    well-formed single-member file at once. Otherwise the content is counted by streaming it through the decompressor
    in 1 MiB pieces (no larger allocation; fast for a file that holds little).
    """
    compressed_size = path.stat().st_size
    if needed > _DEFLATE_MAX_RATIO * compressed_size:
        return _DEFLATE_MAX_RATIO * compressed_size
    with path.open("rb") as file:
        file.seek(-4, os.SEEK_END)
        trailer_length = int.from_bytes(file.read(4), "little")
    if (trailer_length - needed) % 2**32 <= _GZIP_TRAILING_SLACK:
        return needed
    held = 0
    decompressor = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
    with path.open("rb") as file:
        pending = b""
        while held < needed:
            pending = pending or file.read(2**20)
            if not pending:
                break
            try:
                held += len(decompressor.decompress(pending, 2**20))
            except zlib.error:
                break  # a damaged stream holds what was read before the damage
            pending = decompressor.unconsumed_tail
            if decompressor.eof:  # another gzip member may follow
                pending = decompressor.unused_data + pending
                decompressor = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
    return held


def _warn_if_sform_and_qform_disagree(image: SpatialImage, name: str) -> None:
    header = image.header
    if not isinstance(header, nib.Nifti1Header):
        return
    sform, sform_code = header.get_sform(coded=True)
    qform, qform_code = header.get_qform(coded=True)
    if not (sform_code and qform_code):
        return
    corners = np.array(np.meshgrid(*[[0, max(size - 1, 0)] for size in image.shape[:3]])).reshape(3, -1).T
    moved = nib.affines.apply_affine(sform, corners) - nib.affines.apply_affine(qform, corners)
    distance = np.linalg.norm(moved, axis=1)
    if distance.max() <= _AFFINE_AGREEMENT_MM:
        return
    uses_sform = np.allclose(image.affine, sform) or not np.allclose(image.affine, qform)
    used, other = _SFORM_QFORM_NAMES[uses_sform], _SFORM_QFORM_NAMES[not uses_sform]
    codes = {"sform": int(sform_code), "qform": int(qform_code)}
    warn_at_caller(
        f"{name}: the header's sform (code {codes['sform']}) and qform (code {codes['qform']}) disagree: they place "
        f"the image's corners up to {distance.max():.2f} mm apart. Using the {used} (code {codes[used]}), as nibabel "
        f"does. If the {other} is the right one, fix the header first, e.g. `img.set_{used}(img.get_{other}(), "
        f"code={codes[other]})`, then save."
    )


def _voxel_array(data: np.ndarray) -> np.ndarray:
    """Map array dtypes NIfTI cannot store (bool, float16) to ones it can; refuse non-real data."""
    if data.dtype == np.bool_:
        return data.astype(np.uint8)
    if data.dtype == np.float16:
        return data.astype(np.float32)
    if not (np.issubdtype(data.dtype, np.integer) or np.issubdtype(data.dtype, np.floating)):
        raise NiftiInputError(f"Voxel data of dtype {data.dtype} is not real-valued. Pass integer or float voxels.")
    return data


def _checked_affine(affine: np.ndarray | None) -> np.ndarray:
    if affine is None:
        raise NiftiInputError(
            "An array has no voxel-to-world information: pass its `affine=` (a 4x4 matrix, e.g. `img.affine` of the "
            "image it came from; for a T1 on the 1 mm MNI152 template grid, "
            "`nilearn.datasets.load_mni152_template(resolution=1).affine`)."
        )
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4) or not np.all(np.isfinite(affine)) or np.linalg.det(affine[:3, :3]) == 0:
        raise NiftiInputError(
            f"`affine=` must be a finite, invertible 4x4 voxel-to-world matrix; got shape {affine.shape}:\n{affine}"
        )
    return affine


def _check_dimensions(image: SpatialImage, name: str) -> None:
    if image.ndim not in (3, 4):
        raise NiftiInputError(
            f"{name} has shape {tuple(image.shape)} ({image.ndim}D), but a 3D volume (x, y, z) or a 4D series "
            f"(x, y, z, time) is expected."
        )


def _check_finite(data: np.ndarray, name: str) -> None:
    if not np.issubdtype(data.dtype, np.floating):
        return
    num_bad = int(np.count_nonzero(~np.isfinite(data)))
    if num_bad:
        raise NiftiInputError(
            f"{name} has {num_bad} NaN/Inf voxels out of {data.size}. Replace them before processing, e.g. "
            f"`nib.Nifti1Image(np.nan_to_num(img.get_fdata()), img.affine, img.header)`, or fix the step that "
            f"produced them."
        )
