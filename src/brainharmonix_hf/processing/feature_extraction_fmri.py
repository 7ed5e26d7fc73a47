# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Feature extractor that turns parcellated fMRI (ROI time series of any TR) into FunctionJEPA inputs."""

import math
import os
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
from transformers import BatchFeature, SequenceFeatureExtractor
from transformers.utils import TensorType, to_numpy

from ..modeling.hub_mixin import BrainHarmonixHubMixin
from ..modeling.repetition_time import check_repetition_time, patch_length_for_tr, resolve_repetition_time
from ..modeling.user_warnings import warn_at_caller
from .atlases import SCHAEFER400_ATLASES, atlas_roi_labels, rows_in_model_order
from .fmri_files import FMRIFileSeries, default_layout, fmri_file_kind, load_npy_series
from .fmri_normalization import (
    NORMALIZATIONS,
    ZSCORE_SCOPES,
    check_normalized_scale,
    fit_robust_statistics,
    robust_scale,
    zscore,
)
from .nifti_io import load_image
from .nifti_io import repetition_time as header_repetition_time
from .parcellation import parcellate_surface, parcellate_volume
from .roi_csv import read_roi_table

LAYOUTS = ("rois_first", "time_first")
PADDINGS = ("longest", "max_length")
# The shortest TR `padding="max_length"` holds by default: HCP's 0.72 s (UK Biobank's is 0.735 s).
DEFAULT_SHORTEST_REPETITION_TIME = 0.72


class FMRIFeatureExtractor(BrainHarmonixHubMixin, SequenceFeatureExtractor):
    r"""Prepares ROI time series for FunctionJEPA: orientation, checks, normalisation, cropping, padding, masks.

    Each series is cropped to `num_time_patches` patches of `window_seconds` (the patch length in frames is
    `p = round(window_seconds / TR)`, so a token always spans the same time), normalised, right-padded with
    `padding_value` to the longest series of the batch rounded up to whole patches, and returned ROI-first.

    Args:
        num_rois (`int`, *optional*, defaults to 400): ROIs per series; must match the model.
        atlas (`str`, *optional*, defaults to `"schaefer400_7networks"`): the atlas and ROI order the model expects
            (see `processing.atlases`); inputs whose labels say another order are permuted (Schaefer-400 7- <->
            17-network) or refused.
        roi_labels (`list[str]`, *optional*): the ROI labels of a user atlas in model order (default `"1".."num_rois"`);
            unset for the Schaefer-400 atlases, whose labels are their parcel names.
        num_time_patches (`int`, *optional*, defaults to 18): time patches the model holds; longer series are cropped.
        window_seconds (`float`, *optional*, defaults to 35.28): seconds per time patch.
        normalization (`str`, *optional*, defaults to `"none"`): the normalisation the model expects, applied here:
            `"none"` (series already normalised), `"zscore"` (per sample) or `"robust"` (`(x - median) / iqr` with
            cohort statistics, see `fit_robust_statistics`).
        raw_scale_threshold (`float`, *optional*, defaults to 50.0): with `normalization="none"`, a series whose median
            absolute ROI mean exceeds this is raw-scale BOLD and is refused (`None` turns the check off).
        zscore_scope (`str`, *optional*, defaults to `"roi"`): z-score each ROI over time (`"roi"`) or the whole
            series at once (`"global"`).
        robust_median (`list[float]`, *optional*): per-ROI cohort medians for `normalization="robust"`.
        robust_iqr (`list[float]`, *optional*): per-ROI cohort interquartile ranges for `normalization="robust"`.
        shortest_repetition_time (`float`, *optional*, defaults to 0.72): the shortest TR `padding="max_length"`
            supports (0.72 s: HCP, the fastest common TR); the fixed length is
            `num_time_patches * round(window_seconds / shortest_repetition_time)` (882 frames by default). Saved
            processors keep the value they were saved with.
        padding_value (`float`, *optional*, defaults to 0.0): value of padded frames.
        return_attention_mask (`bool`, *optional*, defaults to `True`): return the frame mask (1 = real frame).
    """

    model_input_names: ClassVar[list[str]] = ["fmri_values", "repetition_time", "patch_size", "attention_mask"]

    def __init__(
        self,
        num_rois: int = 400,
        atlas: str = "schaefer400_7networks",
        roi_labels: list[str] | None = None,
        num_time_patches: int = 18,
        window_seconds: float = 35.28,
        normalization: str = "none",
        raw_scale_threshold: float | None = 50.0,
        zscore_scope: str = "roi",
        robust_median: list[float] | None = None,
        robust_iqr: list[float] | None = None,
        shortest_repetition_time: float = DEFAULT_SHORTEST_REPETITION_TIME,
        padding_value: float = 0.0,
        return_attention_mask: bool = True,
        **kwargs,
    ):
        # The base class's `feature_size` is `num_rois` and its `sampling_rate` has no single value (the TR is per
        # series); both come back from a saved config, so drop them rather than pass them twice.
        kwargs.pop("feature_size", None)
        kwargs.pop("sampling_rate", None)
        super().__init__(
            feature_size=num_rois,
            sampling_rate=None,
            padding_value=padding_value,
            return_attention_mask=return_attention_mask,
            **kwargs,
        )
        if self.padding_side != "right":
            raise ValueError(
                f"padding_side={self.padding_side!r} is not supported: the model reads real frames from the start of "
                "each series. Use padding_side='right'."
            )
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}.")
        if zscore_scope not in ZSCORE_SCOPES:
            raise ValueError(f"zscore_scope must be one of {ZSCORE_SCOPES}, got {zscore_scope!r}.")
        if num_rois < 1 or num_time_patches < 1 or not window_seconds > 0:
            raise ValueError("num_rois and num_time_patches must be positive integers and window_seconds positive.")
        self.num_rois = num_rois
        self.atlas = atlas
        self.roi_labels = None if roi_labels is None else list(roi_labels)
        atlas_roi_labels(atlas, num_rois, self.roi_labels)
        self.num_time_patches = num_time_patches
        self.window_seconds = window_seconds
        self.normalization = normalization
        self.raw_scale_threshold = raw_scale_threshold
        self.shortest_repetition_time = check_repetition_time(shortest_repetition_time, "shortest_repetition_time")
        self.zscore_scope = zscore_scope
        self.robust_median = None
        self.robust_iqr = None
        if robust_median is not None or robust_iqr is not None:
            self._set_robust_statistics(robust_median, robust_iqr)

    def _set_robust_statistics(self, median, iqr) -> None:
        if median is None or iqr is None:
            raise ValueError("Pass both robust_median and robust_iqr (or neither).")
        median, iqr = np.asarray(median, dtype=np.float64), np.asarray(iqr, dtype=np.float64)
        if median.shape != (self.num_rois,) or iqr.shape != (self.num_rois,):
            raise ValueError(
                f"robust_median and robust_iqr must each hold num_rois={self.num_rois} values, got shapes "
                f"{median.shape} and {iqr.shape}."
            )
        if not (np.all(np.isfinite(median)) and np.all(np.isfinite(iqr)) and np.all(iqr > 0)):
            raise ValueError("robust_median must be finite and robust_iqr finite and positive for every ROI.")
        # Lists, so the statistics are saved in the JSON config.
        self.robust_median, self.robust_iqr = median.tolist(), iqr.tolist()

    def patch_length(self, repetition_time: float) -> int:
        """Frames per time patch at this TR, `round(window_seconds / repetition_time)` (the rule of
        `brainharmonix_hf.modeling.repetition_time`, shared with the model)."""
        return patch_length_for_tr(repetition_time, self.window_seconds)

    @property
    def max_length(self) -> int:
        """Frames of `padding="max_length"`: `num_time_patches` patches at `shortest_repetition_time`."""
        return self.num_time_patches * self.patch_length(self.shortest_repetition_time)

    def model_roi_labels(self) -> list[str]:
        """The model's ROI labels in model order (parcel names for Schaefer-400, `roi_labels` or `"1".."N"`)."""
        return atlas_roi_labels(self.atlas, self.num_rois, self.roi_labels)

    def fit_robust_statistics(
        self, fmri, layout: str | None = None, atlas: str | None = None
    ) -> "FMRIFeatureExtractor":
        """Fit per-ROI robust statistics (median and IQR over subjects of their temporal mean) on a cohort and store
        them, so that `normalization="robust"` uses them and `save_pretrained` saves them.

        Args:
            fmri: the cohort's series, not cropped: any iterable of 2D arrays (see `__call__`) or of fMRI file paths
                (ROI tables or `.npy`, read by `read_fmri_file`: table labels put them in the model's order); a
                generator that loads one subject at a time keeps only one series in memory.
            layout (`str`): `"rois_first"` or `"time_first"`, as in `__call__`; required for arrays, for paths the
                file's layout (default: `processing.fmri_files.default_layout`, e.g. time-first `.tsv`).
            atlas (`str`, *optional*): the atlas and ROI order of the series, as in `__call__` (the other Schaefer-400
                order is permuted into the model's).
        """
        means, array_order, undecided = [], None, True
        for index, series in enumerate(fmri):
            if isinstance(series, (str, os.PathLike)):  # read into model order by the one file reader
                means.append(self.read_fmri_file(series, layout=layout, atlas=atlas).series.mean(axis=0))
                continue
            self._check_layout(layout)
            if undecided:  # once, at the first array
                array_order, undecided = self._declared_order(atlas, "The series"), False
            subject_means = self._checked_series(series, layout, index).mean(axis=0)
            means.append(subject_means if array_order is None else subject_means[array_order])
        return self.fit_robust_statistics_from_means(means, atlas=self.atlas)

    def fit_robust_statistics_from_means(self, roi_means, atlas: str | None = None) -> "FMRIFeatureExtractor":
        """Fit the robust statistics from per-subject ROI means (an iterable of `(num_rois,)` temporal means, or a
        `(num_subjects, num_rois)` array), e.g. computed one subject at a time or kept by a dataset beside z-scored
        series.

        Args:
            roi_means: the means, in the order of `atlas`.
            atlas (`str`, *optional*): the atlas and ROI order of the means (default: the model's, with a warning
                for Schaefer-400, whose two orders look alike); the other Schaefer-400 order is permuted.
        """
        order = self._declared_order(atlas, "The ROI means")
        means = [np.asarray(means, dtype=np.float64) for means in roi_means]
        median, iqr = fit_robust_statistics([row if order is None else row[order] for row in means])
        self._set_robust_statistics(median, iqr)
        return self

    def _declared_order(self, atlas: str | None, source: str) -> np.ndarray | None:
        """Row indices into model order for unlabelled rows declared to follow `atlas`; without a declaration, the
        model's order, with a warning when the model's atlas is Schaefer-400 (a 7- and a 17-network series look
        alike)."""
        self._warn_if_undeclared(atlas, source)
        return rows_in_model_order(None, self.atlas, self.model_roi_labels(), declared_atlas=atlas, source=source)

    def _warn_if_undeclared(self, atlas: str | None, source: str) -> None:
        """Warn, at the caller's line, that unlabelled `source` without a declared `atlas` is taken in the model's
        Schaefer-400 order (nothing to say for other atlases, whose orders cannot be confused)."""
        if atlas is None and self.atlas in SCHAEFER400_ATLASES:
            warn_at_caller(
                f"{source} have no declared ROI order, so they are taken in the model's ({self.atlas}). Schaefer-400 "
                "series in the 7- and 17-network orders look alike and give wrong embeddings silently in the wrong "
                f"one: pass atlas='schaefer400_7networks' or atlas='schaefer400_17networks' (or roi_labels=; in a "
                "manifest, its `atlas` column)."
            )

    def __call__(
        self,
        fmri,
        *,
        repetition_time: float | Sequence[float] | None = None,
        layout: str | None = None,
        atlas: str | None = None,
        roi_labels: Sequence[str] | None = None,
        padding: str = "longest",
        unbatched: bool = False,
        return_tensors: str | TensorType | None = None,
        return_attention_mask: bool | None = None,
    ) -> BatchFeature:
        """Prepare one series or a batch.

        Args:
            fmri: one series as a 2D array (numpy, torch or nested lists), a list of them, or a 3D batch array.
            repetition_time (`float` or `Sequence[float]`): TR in seconds, one for all series or one per series.
            layout (`str`): the declared axis order of every series: `"rois_first"` (`(num_rois, num_timepoints)`,
                the layout of ROI CSV files) or `"time_first"` (`(num_timepoints, num_rois)`). Required: an axis
                order is never guessed.
            atlas (`str`, *optional*): the atlas the rows follow; a Schaefer-400 order other than the model's is
                permuted into it, any other atlas is refused. Default: the model's atlas (an array has no labels),
                with a warning when that is a Schaefer-400 order, since the two look alike.
            roi_labels (`Sequence[str]`, *optional*): the ROI label of each row (checked like a CSV's label column).
            padding (`str`, *optional*, defaults to `"longest"`): `"longest"` pads to the longest series of the call
                (rounded up to whole patches); `"max_length"` pads every call to the same `max_length` frames, so
                samples prepared one at a time collate with `torch.utils.data.default_collate`.
            unbatched (`bool`, *optional*, defaults to `False`): for one series, drop the batch axis (a per-sample
                transform: `fmri_values` `(num_rois, max_length)`, `repetition_time` `()`, `attention_mask`
                `(max_length,)`); needs `padding="max_length"`.
            return_tensors (`str` or `TensorType`, *optional*): `"pt"` or `"np"`; lists of arrays when unset.
            return_attention_mask (`bool`, *optional*): defaults to the extractor's `return_attention_mask`.

        Returns:
            `BatchFeature` with `fmri_values` `(batch, num_rois, num_timepoints)` float32, `repetition_time`
            `(batch,)` float32 seconds, `patch_size` `(batch,)` int64 frames per time patch (the model uses it as
            given) and `attention_mask` `(batch, num_timepoints)` int, the frame mask (1 = real frame).
        """
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}.")
        series_list = self._time_first_series(fmri, layout)
        if unbatched and (len(series_list) != 1 or padding != "max_length"):
            raise ValueError(
                "unbatched=True prepares one series with padding='max_length' (so samples collate); got "
                f"{len(series_list)} series and padding={padding!r}."
            )
        if roi_labels is None:
            order = self._declared_order(atlas, "The fMRI series")
        else:
            order = rows_in_model_order(
                roi_labels, self.atlas, self.model_roi_labels(), declared_atlas=atlas, source="The fMRI series"
            )
        if order is not None:
            series_list = [series[:, order] for series in series_list]
        return self._prepare(series_list, repetition_time, padding, unbatched, return_tensors, return_attention_mask)

    def _prepare(self, series_list, repetition_time, padding, unbatched, return_tensors, return_attention_mask):
        """Crop, check the scale, normalise, pad and stack time-first series already in model ROI order."""
        repetition_times = self._per_series_repetition_times(repetition_time, len(series_list))
        patch_sizes = [self.patch_length(tr) for tr in repetition_times]
        prepared, padded_length = [], 0
        for index, (series, tr, patch) in enumerate(zip(series_list, repetition_times, patch_sizes, strict=True)):
            series = self._crop_to_window(series, tr, patch, index)
            if self.normalization == "none":
                check_normalized_scale(series, self.raw_scale_threshold, f"Series {index}")
            series = self._normalize(series)
            prepared.append(series)
            padded_length = max(padded_length, math.ceil(len(series) / patch) * patch)
        if padding == "max_length":
            if padded_length > self.max_length:
                raise ValueError(
                    f"A series needs {padded_length} frames, more than max_length={self.max_length} (TR "
                    f"{min(repetition_times):g} s is below shortest_repetition_time={self.shortest_repetition_time:g}"
                    " s). Lower shortest_repetition_time on the processor."
                )
            padded_length = self.max_length
        padded = self.pad(
            BatchFeature({"fmri_values": prepared}),
            padding="max_length",
            max_length=padded_length,
            return_attention_mask=return_attention_mask,
            return_tensors="np",
        )
        outputs = {
            "fmri_values": np.ascontiguousarray(padded["fmri_values"].transpose(0, 2, 1)),
            "repetition_time": np.asarray(repetition_times, dtype=np.float32),
            "patch_size": np.asarray(patch_sizes, dtype=np.int64),
        }
        if "attention_mask" in padded:
            outputs["attention_mask"] = padded["attention_mask"]
        if unbatched:
            outputs = {key: value[0] for key, value in outputs.items()}
        return BatchFeature(outputs, tensor_type=return_tensors)

    def process_roi_csv(
        self, paths, *, repetition_time, layout: str = "rois_first", atlas: str | None = None, **call_kwargs
    ) -> BatchFeature:
        """Prepare ROI tables: `.csv`/`.tsv` files, optionally gzipped (see `processing.roi_csv`), ROI-first unless
        `layout` says otherwise; `process_files` with that default.

        A header row and a label column are detected, never assumed; the labels are compared with the model's and
        the rows permuted (Schaefer-400 7- <-> 17-network) or refused. The files are only read.

        Args:
            paths: one path or a list of paths.
            repetition_time: TR in seconds, one for all files or one per file.
            layout (`str`, *optional*, defaults to `"rois_first"`): `"rois_first"` (rows = ROIs, first column =
                labels) or `"time_first"` (columns = ROIs with a header of labels, rows = frames, e.g. XCP-D TSV).
            atlas (`str`, *optional*): the atlas the files follow, needed when their labels are numbers 1..400.
            call_kwargs: `padding`, `unbatched`, `return_tensors`, `return_attention_mask` (see `__call__`).
        """
        return self.process_files(paths, repetition_time=repetition_time, layout=layout, atlas=atlas, **call_kwargs)

    def process_files(
        self,
        sources,
        *,
        repetition_time=None,
        layout: str | None = None,
        atlas=None,
        label_image=None,
        **call_kwargs,
    ) -> BatchFeature:
        """Read fMRI files of any kind (`read_fmri_file`: ROI tables, `.npy` arrays, 4D NIfTI runs with a label
        image), then prepare them as a batch.

        Args:
            sources: one path (or nibabel image) or a list of them; kinds may be mixed.
            repetition_time: TR in seconds, one for all files or one per file (`None` where a NIfTI header gives it);
                an explicit TR wins over a header's (a disagreement warns).
            layout (`str`, *optional*): the axis order of every table and array; by default `.tsv` tables are
                time-first and `.csv` tables and `.npy` arrays ROI-first (`processing.fmri_files.default_layout`).
            atlas (`str` or `Sequence[str | None]`, *optional*): the atlas the files follow (one for all, or one per
                file, `None` where not declared); see `read_fmri_file`.
            label_image: the atlas label image (path or nibabel image) on the grid of NIfTI runs.
            call_kwargs: `padding`, `unbatched`, `return_tensors`, `return_attention_mask` (see `__call__`).
        """
        single = isinstance(sources, (str, bytes, os.PathLike)) or hasattr(sources, "affine")
        sources = [sources] if single else list(sources)
        atlases = _per_file(atlas, len(sources), "atlas")
        label_image = None if label_image is None else load_image(label_image)
        files = [
            self.read_fmri_file(source, layout=layout, atlas=file_atlas, label_image=label_image)
            for source, file_atlas in zip(sources, atlases, strict=True)
        ]
        repetition_times = [
            _file_repetition_time(explicit, file.header_repetition_time, source)
            for source, explicit, file in zip(sources, self._broadcast(repetition_time, len(files)), files, strict=True)
        ]
        return self._prepare_with([file.series for file in files], repetition_times, call_kwargs)

    def read_fmri_file(
        self, source, *, layout: str | None = None, atlas: str | None = None, label_image=None
    ) -> FMRIFileSeries:
        """One fMRI file as a checked time-first series in the model's ROI order: the one reader of every caller
        (this extractor and the combined processor, cohort embedding, pretraining data, latent caching, fine-tuning).

        - ROI tables (`.csv`/`.tsv`, optionally `.gz`): `read_roi_series`; their labels say their atlas, `atlas`
          declares it for unlabelled or numbered tables.
        - `.npy` arrays: one 2D series; `atlas` declares its ROI order (default: the model's, with the warning of
          undeclared arrays for a Schaefer-400 model).
        - 4D NIfTI runs (path or nibabel image): parcellated with `label_image`, whose labels `1..num_rois` number
          the ROIs of `atlas` (default: the model's); the header's TR is returned.

        A Schaefer-400 order other than the model's is permuted into it; any other atlas is refused. Files are only
        read.

        Args:
            source: the file path, or a nibabel image for a NIfTI run.
            layout (`str`, *optional*): axis order of a table or array; default `processing.fmri_files.default_layout`.
            atlas (`str`, *optional*): the atlas the file follows, as declared by its source (a manifest's `atlas`
                column, a BIDS `atlas-` entity, an argument).
            label_image: the label NIfTI (path or image) on a run's grid; required for NIfTI runs.
        """
        kind = fmri_file_kind(source)
        if kind == "roi_table":
            return FMRIFileSeries(self.read_roi_series(source, layout=layout or default_layout(source), atlas=atlas))
        if kind == "npy":
            layout = layout or "rois_first"
            self._check_layout(layout)
            series = self._checked_series(load_npy_series(source), layout, str(source))
            # One warning for a cohort of files (the message does not name the file).
            self._warn_if_undeclared(atlas, "Series of .npy files (they hold no ROI labels)")
            order = rows_in_model_order(
                None, self.atlas, self.model_roi_labels(), declared_atlas=atlas, source=str(source)
            )
            return FMRIFileSeries(series if order is None else series[:, order])
        if label_image is None:
            raise ValueError(
                f"{source} is a 4D NIfTI run: give the atlas label image on its grid (`fmri_atlas_image=`; "
                "`--atlas-image` of embed, `--fmri-label-image` of cache-latents and finetune, `--fmri_label_image` "
                "of pretrain) to parcellate it, or list parcellated ROI tables instead."
            )
        return self._parcellated_run(source, load_image(label_image), self._atlas_labels(None, atlas), str(source))

    def _parcellated_run(self, source, label_image, labels: np.ndarray, name) -> FMRIFileSeries:
        """A 4D NIfTI run averaged inside `labels` of `label_image`, checked, time-first, with its header TR."""
        image = load_image(source)
        series = self._checked_series(parcellate_volume(image, label_image, labels)[0], "rois_first", name)
        return FMRIFileSeries(series, header_repetition_time(image))

    def read_roi_series(self, path, layout: str = "rois_first", atlas: str | None = None) -> np.ndarray:
        """One ROI table file as a checked time-first `(num_timepoints, num_rois)` series in the model's ROI order:
        its labels are compared with the model's and the rows permuted (Schaefer-400 7- <-> 17-network) or refused."""
        table = read_roi_table(path, layout=layout)
        rois, frames = table.series.shape
        if layout == "rois_first" and rois != self.num_rois and frames == self.num_rois:
            raise ValueError(
                f"{path} has {rois} rows and {frames} value columns: it looks time-first (rows = frames) while the "
                f"model expects {self.num_rois} ROI rows. Pass layout='time_first' if columns are ROIs."
            )
        order = rows_in_model_order(
            table.labels, self.atlas, self.model_roi_labels(), declared_atlas=atlas, source=str(path)
        )
        series = self._checked_series(table.series, "rois_first", str(path))
        return series if order is None else series[:, order]

    def _prepare_with(self, series_list, repetition_time, call_kwargs) -> BatchFeature:
        return self._prepare(
            series_list,
            repetition_time,
            call_kwargs.pop("padding", "longest"),
            call_kwargs.pop("unbatched", False),
            call_kwargs.pop("return_tensors", None),
            call_kwargs.pop("return_attention_mask", None),
        )

    def process_surface(
        self,
        vertex_data,
        vertex_labels: np.ndarray,
        *,
        repetition_time=None,
        header_repetition_time=None,
        labels: Sequence[int] | None = None,
        atlas: str | None = None,
        **call_kwargs,
    ) -> BatchFeature:
        """Parcellate vertex-wise series with a surface atlas, then prepare them.

        Args:
            vertex_data: one `(num_vertices, num_timepoints)` array or a list of them (hemispheres concatenated in
                the order of `vertex_labels`).
            vertex_labels (`np.ndarray` of shape `(num_vertices,)`): atlas label per vertex, 0 = unlabelled.
            repetition_time: TR in seconds, one for all series or one per series; wins over the header's.
            header_repetition_time: the TR recorded in the files the data came from (seconds), if any; used when
                `repetition_time` is not given, and a disagreement with it warns.
            labels (`Sequence[int]`, *optional*): label values in model ROI order; default `1..num_rois` of `atlas`.
            atlas (`str`, *optional*): the atlas `vertex_labels` numbers (default the model's); a Schaefer-400 order
                other than the model's is permuted into it.
            call_kwargs: `padding`, `unbatched`, `return_tensors`, `return_attention_mask` (see `__call__`).
        """
        vertex_data = list(vertex_data) if isinstance(vertex_data, (list, tuple)) else [vertex_data]
        labels = self._atlas_labels(labels, atlas)
        series = [parcellate_surface(data, vertex_labels, labels)[0].T for data in vertex_data]
        repetition_times = [
            resolve_repetition_time(explicit, header_repetition_time, name=f"surface series {index}")
            for index, explicit in enumerate(self._broadcast(repetition_time, len(series)))
        ]
        return self._prepare_with(
            [self._checked_series(s, "time_first", index) for index, s in enumerate(series)],
            repetition_times,
            call_kwargs,
        )

    def process_nifti(
        self,
        images,
        label_image,
        *,
        repetition_time=None,
        labels: Sequence[int] | None = None,
        atlas: str | None = None,
        **call_kwargs,
    ) -> BatchFeature:
        """Parcellate 4D NIfTI runs with a label NIfTI on the same grid, then prepare them.

        The TR comes from each header unless `repetition_time` is given, which wins (a disagreement warns).

        Args:
            images: one 4D NIfTI (path or nibabel image) or a list of them.
            label_image: the 3D atlas (path or nibabel image) on the runs' voxel grid.
            repetition_time: TR in seconds, one for all runs or one per run; optional when the headers give it.
            labels (`Sequence[int]`, *optional*): label values in model ROI order; default `1..num_rois` of `atlas`.
            atlas (`str`, *optional*): the atlas `label_image` numbers (default the model's); a Schaefer-400 order
                other than the model's is permuted into it.
            call_kwargs: `padding`, `unbatched`, `return_tensors`, `return_attention_mask` (see `__call__`).
        """
        images = list(images) if isinstance(images, (list, tuple)) else [images]
        labels = self._atlas_labels(labels, atlas)
        label_image = load_image(label_image)
        series, repetition_times = [], []
        explicit_trs = self._broadcast(repetition_time, len(images))
        for index, (source, explicit) in enumerate(zip(images, explicit_trs, strict=True)):
            run = self._parcellated_run(source, label_image, labels, index)
            series.append(run.series)
            name = f"image {index}" + (f" ({source})" if isinstance(source, (str, os.PathLike)) else "")
            repetition_times.append(resolve_repetition_time(explicit, run.header_repetition_time, name=name))
        return self._prepare_with(series, repetition_times, call_kwargs)

    def _atlas_labels(self, labels: Sequence[int] | None, atlas: str | None) -> np.ndarray:
        """Label values to parcellate, in model ROI order: `labels` as given, else `1..num_rois` of `atlas`."""
        if labels is None:
            labels = np.arange(1, self.num_rois + 1)
            order = rows_in_model_order(
                None, self.atlas, self.model_roi_labels(), declared_atlas=atlas, source="The label image"
            )
            return labels if order is None else labels[order]
        labels = np.asarray(labels)
        if labels.shape != (self.num_rois,):
            raise ValueError(
                f"`labels` must list num_rois={self.num_rois} atlas labels in model ROI order, got shape "
                f"{labels.shape}."
            )
        return labels

    @staticmethod
    def _broadcast(value, batch_size: int) -> list:
        """One value per series: a scalar (or `None`) repeated, or a sequence of exactly `batch_size` values."""
        if value is None or np.ndim(value) == 0:
            return [value] * batch_size
        values = list(np.asarray(value).reshape(-1))
        if len(values) != batch_size:
            raise ValueError(
                f"repetition_time has {len(values)} values for {batch_size} series; pass one per series or a "
                "single value for all."
            )
        return values

    def _per_series_repetition_times(self, repetition_time, batch_size: int) -> list[float]:
        values = self._broadcast(repetition_time, batch_size)
        if np.ndim(repetition_time) == 0:
            return [check_repetition_time(value) for value in values]
        return [check_repetition_time(value, f"repetition_time[{index}]") for index, value in enumerate(values)]

    @staticmethod
    def _check_layout(layout: str | None) -> None:
        if layout not in LAYOUTS:
            raise ValueError(
                f"layout must be declared as one of {LAYOUTS}, got {layout!r}: the axis order of an fMRI array is "
                "never guessed. ROI CSV files and parcellation outputs are 'rois_first'."
            )

    def _time_first_series(self, fmri, layout: str | None) -> list[np.ndarray]:
        """Split the input into series and return each as a checked float `(num_timepoints, num_rois)` array."""
        self._check_layout(layout)
        if isinstance(fmri, (list, tuple)) and len(fmri) and np.ndim(fmri[0]) == 2:
            series_list = [to_numpy(series) for series in fmri]
        else:
            batch = np.asarray(to_numpy(fmri))
            series_list = [batch] if batch.ndim == 2 else list(batch) if batch.ndim == 3 else None
            if series_list is None or not series_list:
                raise ValueError(
                    f"Expected one 2D series, a list of 2D series or a 3D batch, got an input of shape {batch.shape}."
                )
        return [self._checked_series(series, layout, index) for index, series in enumerate(series_list)]

    def _checked_series(self, series, layout: str, index: int) -> np.ndarray:
        series = np.asarray(series)
        if series.ndim != 2:
            raise ValueError(f"Series {index} has shape {series.shape}; each series must be 2D (ROIs and time).")
        if not (np.issubdtype(series.dtype, np.floating) or np.issubdtype(series.dtype, np.integer)):
            raise ValueError(f"Series {index} has dtype {series.dtype}; pass real-valued numbers.")
        given_shape = series.shape
        series = series.T if layout == "rois_first" else series
        num_timepoints, num_rois = series.shape
        if num_rois != self.num_rois:
            if num_timepoints == self.num_rois:
                time_first = layout == "rois_first"
                other, axes = ("time_first", "frames × ROIs") if time_first else ("rois_first", "ROIs × frames")
                raise ValueError(
                    f"Series {index} (shape {given_shape}) looks {other.replace('_', '-')} ({axes}): read with "
                    f"layout={layout!r} it has {num_rois} ROIs, but its other axis has the model's {self.num_rois}. "
                    f"Pass layout={other!r}, or transpose it to (num_rois, num_timepoints) for layout='rois_first'."
                )
            raise ValueError(
                f"Series {index} (shape {given_shape}, layout {layout!r}) has {num_rois} ROIs but the model expects "
                f"num_rois={self.num_rois} ({self.atlas}). Parcellate with that atlas."
            )
        if num_timepoints == 0:
            raise ValueError(f"Series {index} is empty (0 time points); drop it or pass the full run.")
        bad = ~np.isfinite(series)
        if np.any(bad):
            frames, rois = np.nonzero(bad)
            raise ValueError(
                f"Series {index} has {bad.sum()} NaN/Inf values (first at frame {frames[0]}, ROI {rois[0]}). "
                "Interpolate or remove those frames, or drop the ROI from the atlas, before processing."
            )
        return series.astype(np.float64)

    def _crop_to_window(self, series: np.ndarray, tr: float, patch: int, index: int) -> np.ndarray:
        """Keep at most `num_time_patches` patches of `patch` frames; warn when a series is cropped or under one
        patch."""
        max_frames = self.num_time_patches * patch
        if len(series) > max_frames:
            dropped = len(series) - max_frames
            warn_at_caller(
                f"Series {index} has {len(series)} frames at TR {tr:g} s; the model holds {self.num_time_patches} "
                f"patches of {patch} frames, so the last {dropped} frames ({dropped * tr:.1f} s) are dropped. Split "
                "the run into windows yourself to keep them."
            )
            return series[:max_frames]
        if len(series) < patch:
            warn_at_caller(
                f"Series {index} has {len(series)} frames at TR {tr:g} s, shorter than one {patch}-frame patch "
                f"({self.window_seconds:g} s); it is zero-padded to one patch, so the model sees mostly padding."
            )
        return series

    def _normalize(self, series: np.ndarray) -> np.ndarray:
        if self.normalization == "zscore":
            return zscore(series, scope=self.zscore_scope)
        if self.normalization == "robust":
            if self.robust_median is None:
                raise ValueError(
                    "normalization='robust' needs cohort statistics (per ROI, the median and IQR of the subjects' "
                    "temporal means), and this processor holds none (converted reference weights come without them: "
                    "their authors never released them). Fit them on your cohort: `fit_robust_statistics(series or "
                    "ROI table paths, layout=..., atlas=...)` or `fit_robust_statistics_from_means(means, atlas=...)` "
                    "on the fMRI feature extractor, then save it; or pass robust_median= and robust_iqr=."
                )
            return robust_scale(series, np.asarray(self.robust_median), np.asarray(self.robust_iqr))
        return series.astype(np.float32)


def _per_file(value, count: int, name: str) -> list:
    """One value per file: a single value (or `None`) repeated, or a list of exactly `count` values."""
    if value is None or isinstance(value, str):
        return [value] * count
    values = list(value)
    if len(values) != count:
        raise ValueError(f"{name} has {len(values)} values for {count} files; pass one per file or one for all.")
    return values


def _file_repetition_time(explicit, header, source) -> float:
    """The TR of one file: the explicit one (a header's that disagrees warns), else the header's; a table or array
    without one is refused, naming the file."""
    if explicit is None and header is None:
        raise ValueError(
            f"No repetition time for {source}: pass `repetition_time=` in seconds (tables and arrays carry none)."
        )
    return resolve_repetition_time(explicit, header, name=str(source))
