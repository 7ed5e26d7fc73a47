# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Parcel values drawn on fsaverage5 inflated hemispheres (Schaefer-400 labels carried from brainspace's conte69 table,
see `sample_data.schaefer400_fsaverage5_labels`): lateral and medial views of each hemisphere, one row per map.

Each face takes the value of its first vertex's parcel (medial wall grey), drawn with matplotlib's `tripcolor` in
painter's order, so the values in the figure are exactly the parcel values (`collection.get_array()`).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import Normalize, TwoSlopeNorm

from ..sample_data import schaefer400_fsaverage5_labels

VIEWS = (("left", "lateral"), ("left", "medial"), ("right", "lateral"), ("right", "medial"))
VERTICES_PER_HEMISPHERE = 10242


@dataclass(frozen=True)
class HemisphereMesh:
    """An fsaverage5 inflated hemisphere: `(V, 3)` coordinates, `(F, 3)` faces, `(V,)` Schaefer-400 labels (0: wall)."""

    coordinates: np.ndarray
    faces: np.ndarray
    labels: np.ndarray


@cache
def fsaverage5_schaefer400() -> dict[str, HemisphereMesh]:
    """Both inflated fsaverage5 hemispheres (nilearn) with their Schaefer-400 labels (1-200 left, 201-400 right)."""
    from nilearn.datasets import load_fsaverage

    inflated = load_fsaverage("fsaverage5")["inflated"]
    labels = schaefer400_fsaverage5_labels()
    return {
        part: HemisphereMesh(
            np.asarray(inflated.parts[part].coordinates),
            np.asarray(inflated.parts[part].faces),
            labels[index * VERTICES_PER_HEMISPHERE : (index + 1) * VERTICES_PER_HEMISPHERE],
        )
        for index, part in enumerate(("left", "right"))
    }


def face_values(roi_values: np.ndarray, mesh: HemisphereMesh) -> np.ma.MaskedArray:
    """`(F,)` value of each face's first-vertex parcel, `roi_values[label - 1]`; medial-wall faces masked."""
    labels = mesh.labels[mesh.faces[:, 0]]
    values = np.where(labels > 0, np.asarray(roi_values, dtype=np.float64)[np.maximum(labels, 1) - 1], np.nan)
    return np.ma.masked_invalid(values)


def draw_parcel_maps(
    maps: np.ndarray,
    titles: Sequence[str],
    colorbar_label: str,
    reference: float | None = None,
    reference_label: str = "",
):
    """One row per map of `(num_maps, 400)` parcel values, four views per row, ONE colour scale for all rows.

    Args:
        maps: `(num_maps, 400)` parcel values in Schaefer-400 7-network order.
        titles: one per map, written left of its row.
        colorbar_label: what the values are.
        reference: a value the maps are read against (e.g. uniform attention): a diverging scale white there, blue
            below, red above, marked on the colour bar. Without it, a sequential scale.
        reference_label: the mark's text on the colour bar.

    Returns:
        the matplotlib Figure; `figure.axes[4 * row + view]` holds the `tripcolor` collection of that view (all share
        one norm), the last axis is the colour bar.
    """
    meshes = fsaverage5_schaefer400()
    low, high = float(np.min(maps)), float(np.max(maps))
    if reference is None:
        norm, colormap = Normalize(low, high), plt.get_cmap("viridis")
    else:  # a scale whose centre is the reference, even when every value lies on one side of it
        spread = max(high - reference, reference - low, 1e-12 * abs(reference))
        norm, colormap = TwoSlopeNorm(reference, reference - spread, reference + spread), plt.get_cmap("RdBu_r")
    colormap = colormap.with_extremes(bad="0.8")
    figure, axes = plt.subplots(
        len(maps), len(VIEWS), figsize=(9, 1.75 * len(maps) + 0.6), squeeze=False, layout="constrained"
    )
    collection = None
    for row, (values, title) in enumerate(zip(maps, titles, strict=True)):
        for column, (hemisphere, view) in enumerate(VIEWS):
            axis = axes[row, column]
            collection = _draw_view(axis, meshes[hemisphere], values, hemisphere, view, colormap)
            collection.set_norm(norm)
            axis.set_axis_off()
            axis.set_aspect("equal")
            if row == 0:
                axis.set_title(f"{hemisphere} {view}", fontsize=8)
        axes[row, 0].text(-0.05, 0.5, title, transform=axes[row, 0].transAxes, rotation=90, va="center", ha="right")
    colorbar = figure.colorbar(collection, ax=axes, fraction=0.025, pad=0.01, aspect=40)
    colorbar.set_label(colorbar_label, fontsize=8)
    colorbar.ax.tick_params(labelsize=7)
    if reference is not None:
        colorbar.ax.axhline(reference, color="black", linewidth=1.0)
        colorbar.ax.text(-0.6, reference, reference_label, transform=colorbar.ax.get_yaxis_transform(), ha="right",
                         va="center", fontsize=7)  # fmt: skip
    return figure


def _draw_view(axis, mesh: HemisphereMesh, roi_values, hemisphere: str, view: str, colormap):
    """Project onto the sagittal plane seen from outside (lateral) or inside (medial), farthest faces drawn first."""
    x, y, z = mesh.coordinates.T
    toward_viewer = -1.0 if (hemisphere == "left") == (view == "lateral") else 1.0
    depth = (toward_viewer * x)[mesh.faces].mean(axis=1)
    order = np.argsort(depth)
    horizontal = y if (hemisphere == "left") != (view == "lateral") else -y
    return axis.tripcolor(
        horizontal, z, mesh.faces[order], facecolors=face_values(roi_values, mesh)[order], cmap=colormap
    )
