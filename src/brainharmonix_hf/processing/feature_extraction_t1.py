# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""T1 volume processor: NIfTI (or array + affine) -> StructureMAE `pixel_values (batch, 1, 160, 192, 160)`.

Steps for each volume, in order:

1. Load and validate (`nifti_io.load_image`: header size, readable voxels, finite values, affine); a 4D image with one
   volume is squeezed, more volumes are refused.
2. Check that the image is in MNI152 space (`reference_grid.check_mni_space`: its brain's centroid and extent in world
   coordinates near the template's), unless `check_mni_space=False`.
3. Map it by its affine onto the reference grid (`reference_grid`): the MNI152 template grid, voxel centres from
   `reference_field_of_view[axis][0]` to `[axis][1]` mm every `target_spacing` mm (197 x 233 x 189 at 1 mm). An image
   already on that grid in any axis order, flips or field of view (e.g. nilearn's MNI152 template, an LPS copy of it,
   FSL's or fMRIPrep's 1 mm MNI grids) is copied voxel for voxel; any other (other voxel size, oblique axes,
   sub-voxel shifts) is resampled trilinearly with `resample=True` and refused otherwise.
4. Constant zero padding `reference_padding` (the widths the pretrained weights saw).
5. Intensity statistics on the padded volume, according to `normalization`:
   - `"whole_volume"`: mean and std over every voxel, background and padding included (as in pretraining);
   - `"brain"`: mean and std over the nonzero (brain) voxels only, for skull-stripped T1s whose field of view
     varies. Every voxel, background included, goes through the same `(x - mean) / (std + 1e-9)`, so the
     background sits at the z-score of 0 (negative) and stays distinct from tissue;
   - `"none"`: intensities unchanged.
6. Centre pad-or-crop each axis to `volume_size` (start of the kept window = floor of half the excess; padding
   splits the deficit the same way), filling with raw 0, i.e. background: the box `input_box()` on the reference grid
   (`reference_grid.input_box`), whose voxels are at the MNI coordinates `input_affine()`. The z-score is applied
   after this step with the statistics of step 5, which equals z-scoring before cropping. The pretraining code
   computed one axis's crop margin from another axis's size, which only works for some input shapes; this per-axis
   pad-or-crop gives the same window whenever that code works and a centred one otherwise.

Steps 4-6 act on the reference grid, so the output box sits at fixed MNI coordinates: at 1 mm, output voxel (0, 0, 0)
is at (-78, -113, -47) mm and the box spans 160 x 192 x 160 mm from there. For the template itself step 3 is the
identity, so its output is exactly that of padding, z-scoring and cropping its own voxels.
"""

import inspect
import os
from typing import ClassVar

import numpy as np
from transformers.feature_extraction_utils import BatchFeature, FeatureExtractionMixin
from transformers.utils import TensorType

from ..modeling.hub_mixin import BrainHarmonixHubMixin
from .nifti_io import ImageSource, NiftiInputError, as_3d, load_image
from .reference_grid import (
    MNI152_FIELD_OF_VIEW,
    check_mni_space,
    crop_to_box,
    input_affine,
    input_box,
    map_onto_grid,
    reference_grid,
)

NORMALIZATIONS = ("whole_volume", "brain", "none")
ZSCORE_EPS = 1e-9
# A volume with this few distinct values is a mask or a segmentation, not a T1.
MAX_LABEL_IMAGE_VALUES = 16


class T1VolumeFeatureExtractor(BrainHarmonixHubMixin, FeatureExtractionMixin):
    r"""Turns T1-weighted MRI volumes into StructureMAE inputs.

    Args:
        volume_size (`list[int]`, *optional*, defaults to `[160, 192, 160]`):
            Output size of each volume, after centre pad-or-crop.
        target_spacing (`float`, *optional*, defaults to 1.0):
            Isotropic voxel size in mm of the reference grid.
        resample (`bool`, *optional*, defaults to `False`):
            Resample volumes that are not on the reference grid (other voxel size, oblique axes, sub-voxel shifts)
            trilinearly onto it. When `False`, such volumes are refused.
        reference_field_of_view (`list[list[float]]`, *optional*, defaults to `[[-98, 98], [-134, 98], [-72, 116]]`):
            MNI152 world coordinates in mm of the first and last voxel centres of the reference grid along x, y, z
            (the 1 mm MNI152 2009 template's grid).
        check_mni_space (`bool`, *optional*, defaults to `True`):
            Refuse volumes whose brain's centroid or extent is far from the MNI152 template's, i.e. that are not
            registered to MNI152. `False` skips the check.
        reference_padding (`list[list[int]]`, *optional*, defaults to `[[6, 9], [2, 4], [0, 22]]`):
            Zero padding (before, after) per axis applied before normalisation and cropping.
        normalization (`str`, *optional*, defaults to `"whole_volume"`):
            `"whole_volume"`, `"brain"` or `"none"`; see the module docstring.
    """

    model_input_names: ClassVar[list[str]] = ["pixel_values"]

    def __init__(
        self,
        volume_size: list[int] = (160, 192, 160),
        target_spacing: float = 1.0,
        resample: bool = False,
        reference_field_of_view: list[list[float]] = MNI152_FIELD_OF_VIEW,
        check_mni_space: bool = True,
        reference_padding: list[list[int]] = ((6, 9), (2, 4), (0, 22)),
        normalization: str = "whole_volume",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.volume_size = [int(size) for size in volume_size]
        self.target_spacing = float(target_spacing)
        self.resample = bool(resample)
        self.reference_field_of_view = [[float(low), float(high)] for low, high in reference_field_of_view]
        self.check_mni_space = bool(check_mni_space)
        self.reference_padding = [[int(before), int(after)] for before, after in reference_padding]
        self.normalization = normalization
        self._validate()

    @classmethod
    def from_dict(cls, feature_extractor_dict: dict, **kwargs):
        """Build from saved settings; options given (e.g. `from_pretrained(path, resample=True)`) override them and are
        validated like constructor arguments, even ones the saved settings lack. Unknown options are refused."""
        return_unused_kwargs = kwargs.pop("return_unused_kwargs", False)
        accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "kwargs"}
        unknown = sorted(set(kwargs) - accepted)
        if unknown:
            raise ValueError(f"{unknown} are not options of {cls.__name__}; its options are {sorted(accepted)}.")
        extractor = cls(**{**feature_extractor_dict, **kwargs})
        return (extractor, {}) if return_unused_kwargs else extractor

    def __call__(
        self,
        volumes: ImageSource | list[ImageSource],
        affine: np.ndarray | list[np.ndarray | None] | None = None,
        return_tensors: str | TensorType | None = None,
    ) -> BatchFeature:
        """Process one volume or a list of them.

        Args:
            volumes: one volume or a list; each a `.nii`/`.nii.gz` path, a nibabel image, or an array `(x, y, z)`.
            affine: for array volumes, their `(4, 4)` affine: one matrix for every volume, or a list with one entry
                per volume (`None` for paths and images).
            return_tensors: `"pt"` for torch tensors, `"np"` or `None` for numpy arrays.

        Returns:
            `BatchFeature` with `pixel_values` of shape `(batch, 1, *volume_size)`, float32.
        """
        is_batched = isinstance(volumes, (list, tuple))
        sources = list(volumes) if is_batched else [volumes]
        if not sources:
            raise ValueError("Got an empty list of volumes. Pass one volume, or a list with at least one.")
        affines = _affines_for_batch(affine, len(sources))
        processed = []
        for index, (source, source_affine) in enumerate(zip(sources, affines, strict=True)):
            try:
                processed.append(self._process_volume(source, source_affine))
            except NiftiInputError as error:
                if not is_batched:
                    raise
                raise NiftiInputError(f"Volume {index} of the batch: {error}") from error
        pixel_values = np.stack(processed)[:, None]
        return BatchFeature(data={"pixel_values": pixel_values}, tensor_type=return_tensors)

    def grid(self) -> tuple[np.ndarray, tuple[int, ...]]:
        """The `(4, 4)` affine and the shape of the reference grid volumes are mapped onto (steps 3-4)."""
        return reference_grid(self.reference_field_of_view, self.target_spacing)

    def input_box(self) -> np.ndarray:
        """`(3, 2)` voxel bounds `[start, stop)` on the reference grid of the `volume_size` box the model receives
        (bounds outside the grid are zero padding)."""
        return input_box(self.grid()[1], self.reference_padding, self.volume_size)

    def input_affine(self) -> np.ndarray:
        """The `(4, 4)` affine of `pixel_values` voxels in MNI152 world coordinates (mm)."""
        return input_affine(self.grid()[0], self.input_box())

    def on_reference_grid(self, source: ImageSource, affine: np.ndarray | None = None) -> np.ndarray:
        """Steps 1-3 for one volume: loaded, checked and mapped onto the reference grid, float32, raw intensities."""
        name = str(source) if isinstance(source, (str, os.PathLike)) else "The volume"
        image = as_3d(load_image(source, affine), name=name)
        voxels = np.asanyarray(image.dataobj)
        _check_contrast(voxels, "The volume")
        _check_not_a_label_image(voxels, name)
        if self.check_mni_space:
            check_mni_space(image, name)
        grid_affine, grid_shape = self.grid()
        volume = map_onto_grid(image, grid_affine, grid_shape, resample=self.resample, name=name)
        _check_contrast(volume, "The part of the volume inside the reference grid")
        return volume

    def _process_volume(self, source: ImageSource, affine: np.ndarray | None) -> np.ndarray:
        volume = self.on_reference_grid(source, affine)
        mean, scale = self._intensity_statistics(np.pad(volume, self.reference_padding))
        return ((crop_to_box(volume, self.input_box()) - mean) / scale).astype(np.float32)

    def _intensity_statistics(self, padded: np.ndarray) -> tuple[float, float]:
        """`(mean, std + eps)` to z-score with, from the reference-padded volume; `(0, 1)` for no normalisation."""
        if self.normalization == "none":
            return 0.0, 1.0
        voxels = padded if self.normalization == "whole_volume" else padded[padded != 0]
        if self.normalization == "brain":
            _check_contrast(voxels, "The nonzero (brain) part of the volume")
        return float(voxels.mean(dtype=np.float64)), float(voxels.std(dtype=np.float64)) + ZSCORE_EPS

    def _validate(self) -> None:
        if len(self.volume_size) != 3 or min(self.volume_size) < 1:
            raise ValueError(
                f"`volume_size` must be three positive sizes, e.g. [160, 192, 160]; got {self.volume_size}."
            )
        if self.target_spacing <= 0:
            raise ValueError(f"`target_spacing` must be positive; got {self.target_spacing}.")
        if len(self.reference_field_of_view) != 3 or any(low >= high for low, high in self.reference_field_of_view):
            raise ValueError(
                f"`reference_field_of_view` must be three (first, last) voxel-centre coordinates in mm with first < "
                f"last, e.g. [[-98, 98], [-134, 98], [-72, 116]]; got {self.reference_field_of_view}."
            )
        if len(self.reference_padding) != 3 or min(min(pair) for pair in self.reference_padding) < 0:
            raise ValueError(
                f"`reference_padding` must be three non-negative (before, after) pairs, e.g. "
                f"[[6, 9], [2, 4], [0, 22]]; got {self.reference_padding}."
            )
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(f"`normalization` must be one of {NORMALIZATIONS}; got {self.normalization!r}.")


def _check_contrast(voxels: np.ndarray, what: str) -> None:
    if voxels.size == 0 or voxels.min() == voxels.max():
        value = voxels.flat[0] if voxels.size else "none"
        raise NiftiInputError(
            f"{what} has a single value ({value}), so there is no image to normalise. Check that this is the "
            f"intended T1 file (not an empty mask or a blank export)."
        )


def _check_not_a_label_image(voxels: np.ndarray, name: str) -> None:
    """Refuse a volume with at most `MAX_LABEL_IMAGE_VALUES` distinct values: a brain mask or a segmentation, not a
    T1 (whose intensities take hundreds of values even as uint8)."""
    # A strided sample answers for almost every T1 without sorting all voxels; only few-valued samples are confirmed.
    if len(np.unique(voxels[::3, ::3, ::3])) > MAX_LABEL_IMAGE_VALUES:
        return
    values = np.unique(voxels)
    if len(values) <= MAX_LABEL_IMAGE_VALUES:
        shown = ", ".join(f"{value:g}" for value in values[:8]) + (" ..." if len(values) > 8 else "")
        raise NiftiInputError(
            f"{name} holds only {len(values)} distinct values ({shown}): it looks like a mask or label image "
            "(e.g. a brain mask or a tissue segmentation), not a T1-weighted image. Pass the T1w image itself "
            "(fMRIPrep: `*_desc-preproc_T1w.nii.gz`, not `*_desc-brain_mask` or `*_dseg`)."
        )


def _affines_for_batch(affine: np.ndarray | list | None, batch_size: int) -> list[np.ndarray | None]:
    """One affine per volume: a list with an entry per volume is used as is, anything else is shared."""
    is_per_volume = isinstance(affine, (list, tuple)) and any(item is None or np.ndim(item) == 2 for item in affine)
    if not is_per_volume:
        return [affine] * batch_size
    if len(affine) != batch_size:
        raise ValueError(
            f"Got {len(affine)} affines for {batch_size} volumes. Pass one affine per volume (None for paths and "
            f"images), or a single 4x4 affine shared by every array."
        )
    return list(affine)
