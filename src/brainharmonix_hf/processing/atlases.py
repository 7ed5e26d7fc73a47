# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Atlas identity and ROI order: which parcels the rows of a series are, checked against the model's, never assumed.

A model states its atlas (`config.atlas`) and ROI labels. Two atlases are known by name: `schaefer400_7networks` and
`schaefer400_17networks`, the same 400 Schaefer-2018 parcels in their 7-network and 17-network orders, whose labels
are the CBIG parcel names (`7Networks_LH_Vis_1`, `17Networks_LH_VisCent_ExStr_1`, ...). Series in either order are
permuted into the model's order with an exact permutation (`data/schaefer400_7networks_17networks_permutation.json`,
built by `scripts/build_schaefer_permutation.py` from the two fsaverage annotations). Any other atlas is a user atlas:
its ROI labels are the list stored in the config (`roi_labels`), or the integers `1..num_rois` when none is stored.
Every other mismatch is refused with a message naming both atlases.
"""

import json
from functools import lru_cache
from importlib import resources

import numpy as np

SCHAEFER400_7NETWORKS = "schaefer400_7networks"
SCHAEFER400_17NETWORKS = "schaefer400_17networks"
SCHAEFER400_ATLASES = (SCHAEFER400_7NETWORKS, SCHAEFER400_17NETWORKS)
SCHAEFER400_NUM_ROIS = 400
PERMUTATION_FILE = "schaefer400_7networks_17networks_permutation.json"


@lru_cache(maxsize=1)
def _schaefer400_table() -> dict:
    with resources.files("brainharmonix_hf").joinpath("data", PERMUTATION_FILE).open() as handle:
        return json.load(handle)


def schaefer400_roi_names(atlas: str) -> list[str]:
    """The 400 CBIG parcel names of a Schaefer-400 order, in that order (label k + 1 is entry k)."""
    key = {SCHAEFER400_7NETWORKS: "seven_network_names", SCHAEFER400_17NETWORKS: "seventeen_network_names"}[atlas]
    return list(_schaefer400_table()[key])


def schaefer400_permutation(source: str, target: str) -> np.ndarray:
    """`(400,)` row indices: `series_in_source_order[indices]` is the same series in `target` order."""
    if source == target:
        return np.arange(SCHAEFER400_NUM_ROIS)
    seventeen_of_seven = np.asarray(_schaefer400_table()["seventeen_index_of_seven_network_roi"])
    if (source, target) == (SCHAEFER400_17NETWORKS, SCHAEFER400_7NETWORKS):
        return seventeen_of_seven
    return np.argsort(seventeen_of_seven)


def atlas_roi_labels(atlas: str, num_rois: int, roi_labels=None) -> list[str]:
    """The ROI labels, in model order, of `atlas` with `num_rois` ROIs.

    Schaefer-400 atlases have their parcel names; a user atlas has `roi_labels` (when stored) or `"1".."num_rois"`.
    """
    if atlas in SCHAEFER400_ATLASES:
        if num_rois != SCHAEFER400_NUM_ROIS:
            raise ValueError(
                f"Atlas {atlas!r} has {SCHAEFER400_NUM_ROIS} ROIs but num_rois={num_rois}. Use num_rois=400, or give "
                "your atlas its own name (and its ROI labels with `roi_labels=`)."
            )
        names = schaefer400_roi_names(atlas)
        if roi_labels is not None and [normalize_label(label) for label in roi_labels] != names:
            raise ValueError(
                f"roi_labels do not match the parcel names of {atlas!r}; leave roi_labels unset for a known atlas, or "
                "give your atlas another name."
            )
        return names
    if roi_labels is None:
        return numbered_labels(num_rois)
    labels = [normalize_label(label) for label in roi_labels]
    if len(labels) != num_rois or len(set(labels)) != num_rois:
        raise ValueError(
            f"roi_labels must list {num_rois} distinct labels (one per ROI, in model order) for atlas {atlas!r}; got "
            f"{len(labels)} labels, {len(set(labels))} distinct."
        )
    return labels


def normalize_label(label) -> str:
    """A label as text: surrounding spaces dropped, integral numbers written as integers (`"3.0"` -> `"3"`)."""
    text = str(label).strip()
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else text


def identify_schaefer400(labels: list[str]) -> str | None:
    """The Schaefer-400 order whose parcel names `labels` are (in any order), or `None`."""
    for atlas in SCHAEFER400_ATLASES:
        if set(labels) <= set(schaefer400_roi_names(atlas)):
            return atlas
    return None


def rows_in_model_order(
    labels,
    model_atlas: str,
    model_labels: list[str],
    declared_atlas: str | None = None,
    source: str = "The series",
) -> np.ndarray | None:
    """Row indices that put a series with ROI `labels` into the model's ROI order, `None` when already in it.

    Args:
        labels: the series' ROI labels in row order (a CSV's first column, `roi_labels=`, the labels parcellated), or
            `None` when the series has none (then `declared_atlas` must say its atlas).
        model_atlas: the model's atlas name.
        model_labels: the model's ROI labels in model order (`atlas_roi_labels`).
        declared_atlas: the atlas the caller says the series follow (`atlas=`), if any.
        source: how to name the series in messages.

    Raises:
        ValueError: the series are not the model's ROIs in the model's order or the other Schaefer-400 order.
    """
    if labels is None:
        if declared_atlas is None or declared_atlas == model_atlas:
            return None
        if {declared_atlas, model_atlas} == set(SCHAEFER400_ATLASES):
            return schaefer400_permutation(declared_atlas, model_atlas)
        raise _mismatch(source, repr(declared_atlas), model_atlas)
    labels = [normalize_label(label) for label in labels]
    named = identify_schaefer400(labels)
    if declared_atlas is not None and named is not None and named != declared_atlas:
        raise ValueError(
            f"{source}: declared atlas={declared_atlas!r}, but the ROI labels are {named!r} parcel names; drop "
            "`atlas=` or fix it."
        )
    if labels == model_labels and (declared_atlas is None or declared_atlas == model_atlas or named == model_atlas):
        return None
    atlas = named or declared_atlas
    if atlas is None and model_atlas in SCHAEFER400_ATLASES and labels == numbered_labels(len(labels)):
        raise ValueError(
            f"{source}: numeric ROI labels 1..{len(labels)} do not say which Schaefer-400 order (7- or 17-network) "
            f"the rows follow; the model expects {model_atlas!r}. Declare it with atlas='schaefer400_7networks'"
            " or atlas='schaefer400_17networks', or label the rows with the CBIG parcel names."
        )
    if atlas in SCHAEFER400_ATLASES and model_atlas in SCHAEFER400_ATLASES:
        expected = schaefer400_roi_names(atlas)
        if labels != expected and labels != numbered_labels(SCHAEFER400_NUM_ROIS):
            raise ValueError(
                f"{source}: {atlas!r} ROIs, but not in that atlas's order ({_first_difference(labels, expected)}). "
                f"Write the rows in {atlas!r} label order; the model ({model_atlas!r}) does not guess a reordering."
            )
        return schaefer400_permutation(atlas, model_atlas)
    if atlas in (None, model_atlas) and sorted(labels) == sorted(model_labels):
        raise ValueError(
            f"{source}: the ROIs of the model's atlas {model_atlas!r}, but in another order "
            f"({_first_difference(labels, model_labels)}). Write the rows in the model's ROI order."
        )
    raise _mismatch(source, repr(atlas) if atlas else _describe(labels), model_atlas, labels, model_labels)


def numbered_labels(count: int) -> list[str]:
    """The labels `"1".."count"` of an atlas numbered in ROI order."""
    return [str(label) for label in range(1, count + 1)]


def _first_difference(labels: list[str], expected: list[str]) -> str:
    if len(labels) != len(expected):
        return f"{len(labels)} rows, {len(expected)} expected"
    row = next(index for index, (got, want) in enumerate(zip(labels, expected, strict=True)) if got != want)
    return f"row {row} is {labels[row]!r}, expected {expected[row]!r}"


def _describe(labels: list[str]) -> str:
    shown = ", ".join(repr(label) for label in labels[:3])
    return f"an atlas with {len(labels)} ROIs labelled {shown}{' ...' if len(labels) > 3 else ''}"


def _mismatch(source, atlas, model_atlas, labels=None, model_labels=None) -> ValueError:
    detail = f" ({_first_difference(labels, model_labels)})" if labels is not None else ""
    return ValueError(
        f"{source}: ROIs of {atlas}, but the model expects atlas {model_atlas!r}{detail}. Only the two Schaefer-400 "
        f"orders {SCHAEFER400_ATLASES} are converted into each other; parcellate with the model's atlas."
    )
