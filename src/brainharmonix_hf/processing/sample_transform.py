# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""A per-sample fMRI transform for evaluation harnesses whose datasets yield dicts.

A harness sample holds a time-first series (e.g. `bold`, `(num_timepoints, num_rois)`), its TR (`tr`) and, when the
series was z-scored, the per-ROI `mean` and `std` it was z-scored with. `FMRISampleTransform` turns one sample into the
model's inputs, padded to the extractor's fixed `max_length`, so a batch of samples of any lengths and TRs collates
with `torch.utils.data.default_collate`; the sample's other entries (targets, ids) pass through.
"""

from collections.abc import Mapping

import numpy as np
from transformers.utils import to_numpy

from .feature_extraction_fmri import FMRIFeatureExtractor


class FMRISampleTransform:
    r"""Dict sample -> FunctionJEPA inputs for one series, ready for `default_collate`.

    The series is prepared by `feature_extractor` exactly as in `__call__` (ROI order, checks, crop, normalisation)
    with `padding="max_length"` and `unbatched=True`. Its declared `atlas` puts its columns in the model's ROI order
    (the other Schaefer-400 order is permuted; anything else is refused). When the extractor normalises with cohort
    statistics (`normalization="robust"`, which works on the original signal scale), a z-scored series is first
    restored with the sample's `mean` and `std` (`series * std + mean`); otherwise the series is used as given (a
    z-score of a z-scored series changes nothing, and `normalization="none"` expects normalised input).

    Args:
        feature_extractor (`FMRIFeatureExtractor`): the processor saved with the model.
        atlas (`str`): the atlas and ROI order of the samples' columns, e.g. `"schaefer400_17networks"`.
        series_key (`str`, *optional*, defaults to `"bold"`): the sample entry holding the time-first series.
        repetition_time_key (`str`, *optional*, defaults to `"tr"`): the entry holding the TR in seconds.
        mean_key (`str`, *optional*, defaults to `"mean"`): the entry holding the per-ROI (or global) means the series
            was z-scored with, if any.
        std_key (`str`, *optional*, defaults to `"std"`): the entry holding the matching standard deviations.

    Returns (of a call):
        `dict`: the sample's other entries, plus `fmri_values` `(num_rois, max_length)`, `repetition_time` `()`,
        `patch_size` `()` and `attention_mask` `(max_length,)` torch tensors (`model_input_names`).
    """

    def __init__(
        self,
        feature_extractor: FMRIFeatureExtractor,
        *,
        atlas: str,
        series_key: str = "bold",
        repetition_time_key: str = "tr",
        mean_key: str = "mean",
        std_key: str = "std",
    ):
        self.feature_extractor = feature_extractor
        self.atlas = atlas
        self.series_key, self.repetition_time_key = series_key, repetition_time_key
        self.mean_key, self.std_key = mean_key, std_key
        self.model_input_names = list(feature_extractor.model_input_names)

    def __call__(self, sample: Mapping) -> dict:
        for key in (self.series_key, self.repetition_time_key):
            if key not in sample:
                raise KeyError(
                    f"The sample has no {key!r} entry (entries: {', '.join(map(str, sample))}). Name the entries of "
                    "the series and its TR with series_key= and repetition_time_key=."
                )
        series = np.asarray(to_numpy(sample[self.series_key]), dtype=np.float64)
        if self.feature_extractor.normalization == "robust":
            series = self._original_scale(sample, series)
        inputs = self.feature_extractor(
            series,
            repetition_time=float(to_numpy(sample[self.repetition_time_key])),
            layout="time_first",
            atlas=self.atlas,
            padding="max_length",
            unbatched=True,
            return_tensors="pt",
        )
        used = (self.series_key, self.repetition_time_key, self.mean_key, self.std_key)
        return {key: value for key, value in sample.items() if key not in used} | dict(inputs)

    def _original_scale(self, sample: Mapping, series: np.ndarray) -> np.ndarray:
        if self.mean_key not in sample or self.std_key not in sample:
            raise ValueError(
                "The extractor robust-scales with cohort statistics of the original signal, so a z-scored series needs "
                f"the {self.mean_key!r} and {self.std_key!r} it was z-scored with (entries: "
                f"{', '.join(map(str, sample))}). Give mean_key= and std_key=, or use normalization='zscore'."
            )
        mean = np.asarray(to_numpy(sample[self.mean_key]), dtype=np.float64).reshape(-1)
        std = np.asarray(to_numpy(sample[self.std_key]), dtype=np.float64).reshape(-1)
        return series * std + mean
