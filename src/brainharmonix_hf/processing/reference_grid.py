# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""The T1's place in space: the model's reference grid in MNI152 world coordinates, a check that an image is in MNI
space at all, and the mapping of an image onto the grid by its affine.

The reference grid is the grid of the MNI152 (2009) template that nilearn ships at 1 mm: voxel centres from
(-98, -134, -72) to (98, 98, 116) mm along x, y, z (197 x 233 x 189 voxels), RAS+ axes. An image whose voxel centres
fall on this grid (any axis order or flips, any field of view, up to `GRID_TOLERANCE_VOXELS`) is copied onto it
voxel for voxel, without interpolation; any other (other voxel size, oblique axes, half-voxel shifts) is resampled
trilinearly (`scipy.ndimage.affine_transform`, `order=1`, zero outside the image), or refused when resampling is not
allowed.

Registration is not done here. An image whose brain is far from the template's (centroid more than
`MAX_CENTROID_DISTANCE_MM` away, or extent outside `EXTENT_RATIO_RANGE` of the template's) is not in MNI space and is
refused; the check catches origins and fields of view that are plainly not MNI (scanner space, a cropped or shifted
image), not a registration that is merely imprecise.
"""

import math

import nibabel as nib
import numpy as np
from nibabel.spatialimages import SpatialImage
from scipy import ndimage

from .nifti_io import NiftiInputError, to_ras, voxel_sizes

# World coordinates (mm) of the first and last voxel centres of the MNI152 template grid, per axis (x, y, z).
MNI152_FIELD_OF_VIEW = ((-98.0, 98.0), (-134.0, 98.0), (-72.0, 116.0))
# The brain of nilearn's 1 mm MNI152 template as `brain_geometry` measures it: centroid and extent (mm).
MNI152_BRAIN_CENTROID_MM = (0.0, -22.1, 9.5)
MNI152_BRAIN_EXTENT_MM = (128.0, 159.0, 128.0)
# An image is taken to be in MNI space when its brain's centroid is this close to the template's and its extent per
# axis is within this ratio range of the template's (wide enough for unstripped heads on a template-sized grid).
MAX_CENTROID_DISTANCE_MM = 20.0
EXTENT_RATIO_RANGE = (0.6, 1.6)
# Voxel centres this close (in voxels, at the image's far corner) to reference voxel centres count as on the grid.
GRID_TOLERANCE_VOXELS = 0.01
# Foreground: voxels above this fraction of the way from the lowest intensity to the 99th percentile.
_FOREGROUND_FRACTION = 0.1
# Statistics of large images are taken on a regular subsample of about this many voxels.
_MAX_SAMPLES = 2**20

REGISTRATION_HINT = (
    "The model expects a T1 registered to MNI152 space first, e.g. fMRIPrep's `space-MNI152NLin2009cAsym` output, "
    "ANTs `antsRegistration` (or `antsRegistrationSyN.sh`), FSL FLIRT/FNIRT, or SPM Normalise."
)


def reference_grid(field_of_view=MNI152_FIELD_OF_VIEW, spacing: float = 1.0) -> tuple[np.ndarray, tuple[int, ...]]:
    """The `(4, 4)` affine and shape of the RAS+ grid with voxels of `spacing` mm starting at the field of view's
    lower corner and covering it (the MNI152 template grid, `(197, 233, 189)` at 1 mm)."""
    lower = np.array([low for low, _ in field_of_view], dtype=np.float64)
    upper = np.array([high for _, high in field_of_view], dtype=np.float64)
    shape = tuple(int(size) for size in np.floor((upper - lower) / spacing + 1e-6).astype(int) + 1)
    affine = np.diag([spacing, spacing, spacing, 1.0])
    affine[:3, 3] = lower
    return affine, shape


def brain_geometry(image: SpatialImage) -> tuple[np.ndarray, np.ndarray]:
    """Centroid `(3,)` and extent `(3,)` in world mm of the image's foreground (brain or head).

    Foreground voxels are those above 10% of the way from the lowest intensity to the 99th percentile; the extent
    per world axis is the range between the 1st and 99th percentiles of their coordinates.
    """
    data = np.asanyarray(image.dataobj)
    # Every `stride`-th voxel along each axis (about `_MAX_SAMPLES` of them): a regular lattice whose geometry is the
    # image's to within a stride, at a fraction of the cost of thresholding and locating every voxel.
    stride = max(1, round((data.size / _MAX_SAMPLES) ** (1 / 3)))
    lattice = data[::stride, ::stride, ::stride]
    lattice_affine = image.affine @ np.diag([stride, stride, stride, 1.0])
    sample = lattice.reshape(-1).astype(np.float64)
    lowest, high = sample.min(), np.percentile(sample, 99)
    if high <= lowest:
        high = sample.max()
    foreground = np.argwhere(lattice > lowest + _FOREGROUND_FRACTION * (high - lowest))
    if len(foreground) == 0:
        return np.full(3, np.nan), np.zeros(3)
    points = nib.affines.apply_affine(lattice_affine, foreground)
    low, high = np.percentile(points, [1, 99], axis=0)
    return points.mean(axis=0), high - low


def check_mni_space(image: SpatialImage, name: str) -> None:
    """Refuse an image whose brain's centroid or extent is far from the MNI152 template's (see module docstring)."""
    centroid, extent = brain_geometry(image)
    distance = float(np.linalg.norm(centroid - np.array(MNI152_BRAIN_CENTROID_MM)))
    ratios = extent / np.array(MNI152_BRAIN_EXTENT_MM)
    low, high = EXTENT_RATIO_RANGE
    if distance <= MAX_CENTROID_DISTANCE_MM and np.all((ratios >= low) & (ratios <= high)):
        return
    raise NiftiInputError(
        f"{name} does not look like an MNI152-space T1: its brain's centroid is at "
        f"{tuple(np.round(centroid, 1).tolist())} mm, {distance:.0f} mm from the template's "
        f"{MNI152_BRAIN_CENTROID_MM} (at most {MAX_CENTROID_DISTANCE_MM:.0f} mm accepted), and its extent is "
        f"{tuple(np.round(extent).tolist())} mm against the template's {MNI152_BRAIN_EXTENT_MM} (ratios "
        f"{tuple(np.round(ratios, 2).tolist())}, {low}-{high} accepted). {REGISTRATION_HINT} If the image is in "
        f"MNI space after all, pass `check_mni_space=False`."
    )


def map_onto_grid(
    image: SpatialImage, grid_affine: np.ndarray, grid_shape: tuple[int, ...], resample: bool, name: str
) -> np.ndarray:
    """The image's voxels on the grid `(grid_shape)`, float32, zero where the image has no data.

    Images on the grid (see module docstring) are copied exactly; others are resampled trilinearly when `resample`
    is true and refused otherwise.
    """
    canonical = to_ras(image)
    data = canonical.get_fdata(dtype=np.float32)
    to_grid = np.linalg.inv(grid_affine) @ canonical.affine  # image voxel -> grid voxel
    shift = np.round(to_grid[:3, 3])
    far_corner = np.array(canonical.shape[:3], dtype=np.float64) - 1
    deviation = np.abs(to_grid[:3, :3] - np.eye(3)) @ far_corner + np.abs(to_grid[:3, 3] - shift)
    if np.all(deviation <= GRID_TOLERANCE_VOXELS):
        return _paste(data, shift.astype(int), grid_shape)
    if not resample:
        raise NiftiInputError(
            f"{name} is not on the model's reference grid ({grid_affine[0, 0]:g} mm voxels on MNI152 axes, voxel "
            f"centres at {_grid_description(grid_affine)}): its voxels are "
            f"{tuple(round(size, 3) for size in voxel_sizes(image))} mm, {_obliquity(image.affine)}, and its voxel "
            f"centres are up to {deviation.max():.2f} voxels off the grid. Pass `resample=True` "
            f"(`T1VolumeFeatureExtractor(resample=True)` or `from_pretrained(path, resample=True)`) to resample it "
            f"trilinearly onto the grid, or resample it to the MNI152 1 mm grid beforehand."
        )
    from_grid = np.linalg.inv(canonical.affine) @ grid_affine  # grid voxel -> image voxel
    return ndimage.affine_transform(
        data, from_grid[:3, :3], offset=from_grid[:3, 3], output_shape=grid_shape, order=1, mode="constant", cval=0.0
    )


def input_box(grid_shape: tuple[int, ...], padding, volume_size) -> np.ndarray:
    """`(3, 2)` integer bounds `[start, stop)`, in voxels of the reference grid, of the box the model receives.

    The grid is zero-padded by `padding` (`(before, after)` per axis), then each axis is centre cropped or zero-padded
    to `volume_size`: the kept window starts at the floor of half the excess, a deficit is padded floor-first before.
    Bounds outside `[0, grid_shape)` are zero padding. The box's world coordinates follow from the grid's affine
    (`input_affine`).
    """
    box = []
    for length, (before, after), size in zip(grid_shape, padding, volume_size, strict=True):
        excess = length + before + after - size
        start = max(excess, 0) // 2 - max(-excess, 0) // 2 - before
        box.append((start, start + size))
    return np.array(box, dtype=np.int64)


def input_affine(grid_affine: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The `(4, 4)` affine of the model's input voxels: input voxel `v` is grid voxel `v + box[:, 0]`."""
    shift = np.eye(4)
    shift[:3, 3] = box[:, 0]
    return grid_affine @ shift


def crop_to_box(volume: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The part of `volume` inside `box` (`(3, 2)` voxel bounds, see `input_box`), zero where the box leaves it."""
    return _paste(volume, -box[:, 0], tuple(int(size) for size in box[:, 1] - box[:, 0]))


def _paste(data: np.ndarray, shift: np.ndarray, grid_shape: tuple[int, ...]) -> np.ndarray:
    """Place `data` on a zero grid so that its voxel `v` lands on grid voxel `v + shift` (parts outside are cut)."""
    if data.shape == tuple(grid_shape) and not shift.any():
        return data
    grid = np.zeros(grid_shape, dtype=np.float32)
    source, target = [], []
    for length, size, offset in zip(data.shape, grid_shape, shift, strict=True):
        start, stop = max(0, -offset), min(length, size - offset)
        if start >= stop:
            return grid
        source.append(slice(start, stop))
        target.append(slice(start + offset, stop + offset))
    grid[tuple(target)] = data[tuple(source)]
    return grid


def _grid_description(grid_affine: np.ndarray) -> str:
    origin = tuple(float(value) for value in grid_affine[:3, 3])
    return f"{origin} mm + whole multiples of {grid_affine[0, 0]:g} mm"


def _obliquity(affine: np.ndarray) -> str:
    """'axis-aligned' or 'oblique (axes rotated by up to N degrees)' for an affine's voxel axes."""
    directions = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
    cosine = float(np.clip(np.abs(directions).max(axis=0).min(), -1.0, 1.0))
    angle = math.degrees(math.acos(cosine))
    return "axis-aligned" if angle < 0.01 else f"oblique (axes rotated by up to {angle:.1f} degrees)"
