# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""What the structure encoder sees of a T1: the volume on the model's reference grid (RAS+, MNI152 axes) with the box
the processor keeps, both as the processor computes them (`processing.reference_grid`)."""

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

from ..processing.feature_extraction_t1 import T1VolumeFeatureExtractor
from ..processing.nifti_io import ImageSource

AXIS_NAMES = ("x", "y", "z")
AXIS_DIRECTIONS = ("left → right", "posterior → anterior", "inferior → superior")


def model_input_box(extractor: T1VolumeFeatureExtractor, t1: ImageSource) -> tuple[np.ndarray, np.ndarray]:
    """The volume as the processor places it and the part of it the model receives.

    Args:
        extractor: the T1 processor (its reference grid, padding and `volume_size` decide the box).
        t1: a T1 path or image, in MNI152 space (the processor's checks apply).

    Returns:
        `(volume, box)`: the volume mapped by its affine onto the processor's reference grid `(X, Y, Z)` (raw
        intensities), and the `(3, 2)` voxel bounds `[start, stop)` on that grid of the `volume_size` box the model
        sees (`extractor.input_box()`; bounds outside the grid are zero padding).
    """
    return extractor.on_reference_grid(t1), extractor.input_box()


def plot_t1_input(
    t1: ImageSource,
    extractor: T1VolumeFeatureExtractor | None = None,
    output: str | os.PathLike | None = None,
    dpi: int = 100,
):
    """Three orthogonal slices through the centre of the model's box, with the box drawn on each.

    Returns:
        the matplotlib Figure; each axis has the slice as its image and the box as its one `Rectangle` patch, all in
        MNI152 world coordinates (mm), as are the axis labels and the titles (axes: sagittal, coronal, axial; a title
        gives the slice's coordinate).
    """
    extractor = extractor or T1VolumeFeatureExtractor()
    volume, box = model_input_box(extractor, t1)
    grid_affine = extractor.grid()[0]  # RAS+, axis-aligned: world = origin + spacing * voxel index
    origin, spacing = grid_affine[:3, 3], np.diag(grid_affine)[:3]
    centre = np.clip(box.mean(1).astype(int), 0, np.array(volume.shape) - 1)
    world = origin + spacing * centre

    def lower_edge(axis: int, index):
        """mm of the lower edge of voxel `index` along `axis` (voxel i spans spacing * (i - 0.5 .. i + 0.5))."""
        return origin[axis] + spacing[axis] * (np.asarray(index) - 0.5)

    figure, axes = plt.subplots(1, 3, figsize=(10, 3.8))
    for axis, fixed in zip(axes, range(3), strict=True):
        a, b = [other for other in range(3) if other != fixed]
        plane = np.take(volume, centre[fixed], axis=fixed)
        extent = (lower_edge(a, 0), lower_edge(a, plane.shape[0]), lower_edge(b, 0), lower_edge(b, plane.shape[1]))
        axis.imshow(plane.T, origin="lower", cmap="gray", extent=extent)
        (x0, x1), (y0, y1) = lower_edge(a, box[a]), lower_edge(b, box[b])
        axis.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor="red", linewidth=1.5))
        margin = 2 * spacing.max()
        axis.set_xlim(min(x0, extent[0]) - margin, max(x1, extent[1]) + margin)
        axis.set_ylim(min(y0, extent[2]) - margin, max(y1, extent[3]) + margin)
        axis.set_xlabel(f"{AXIS_NAMES[a]} (mm, {AXIS_DIRECTIONS[a]})", fontsize=8)
        axis.set_ylabel(f"{AXIS_NAMES[b]} (mm, {AXIS_DIRECTIONS[b]})", fontsize=8)
        axis.set_title(f"{AXIS_NAMES[fixed]} = {world[fixed]:g} mm", fontsize=9)
        axis.tick_params(labelsize=7)
    size = " x ".join(str(stop - start) for start, stop in box)
    figure.suptitle(
        f"T1 on the {' x '.join(map(str, volume.shape))} MNI152 grid and the {size} box the model sees (red); MNI mm"
    )
    figure.tight_layout()
    if output is not None:
        figure.savefig(Path(output), dpi=dpi)
    return figure
