# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""One processor for both modalities: T1 volumes and fMRI series of a batch of subjects, either may be missing."""

import inspect
import os
import warnings
from collections.abc import Sequence

import numpy as np
from transformers import BatchFeature, ProcessorMixin
from transformers.utils import PROCESSOR_NAME as PROCESSOR_CONFIG_NAME
from transformers.utils import cached_file

from ..modeling.hub_mixin import BrainHarmonixHubMixin
from .feature_extraction_fmri import FMRIFeatureExtractor
from .feature_extraction_t1 import T1VolumeFeatureExtractor

# `from_pretrained` keywords that say where and how to read the files (passed on to transformers as they are).
LOADING_KWARGS = frozenset(
    {
        "cache_dir", "force_download", "local_files_only", "token", "revision", "subfolder", "proxies", "repo_type",
        "user_agent", "trust_remote_code", "code_revision", "return_unused_kwargs", "_from_auto", "_from_pipeline",
        "t1_feature_extractor", "fmri_feature_extractor",
    }
)  # fmt: skip


class BrainHarmonixProcessor(BrainHarmonixHubMixin, ProcessorMixin):
    r"""Joins a `T1VolumeFeatureExtractor` and an `FMRIFeatureExtractor` into the inputs of `BrainHarmonixModel`.

    A batch may mix complete and incomplete subjects: put `None` in place of a subject's missing T1 or fMRI. The
    missing entries are zero-filled and flagged in `has_t1` / `has_fmri`, which the model uses to mask that modality.

    Args:
        t1_feature_extractor (`T1VolumeFeatureExtractor`): prepares T1 volumes.
        fmri_feature_extractor (`FMRIFeatureExtractor`): prepares ROI time series.
    """

    def __init__(self, t1_feature_extractor: T1VolumeFeatureExtractor, fmri_feature_extractor: FMRIFeatureExtractor):
        super().__init__(t1_feature_extractor, fmri_feature_extractor)

    @classmethod
    def for_config(cls, config) -> "BrainHarmonixProcessor":
        """A processor whose defaults fit a `BrainHarmonixConfig`: T1 volumes cropped to the structure encoder's
        `image_size`, fMRI series checked against the function encoder's ROIs and cut into its time window."""
        structure, function = config.structure_config, config.function_config
        return cls(
            T1VolumeFeatureExtractor(volume_size=list(structure.image_size)),
            FMRIFeatureExtractor(
                num_rois=function.num_rois,
                atlas=function.atlas,
                roi_labels=function.roi_labels,
                num_time_patches=function.num_time_patches,
                window_seconds=function.window_seconds,
            ),
        )

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs):
        """Load a saved processor; options of its feature extractors given here override the saved ones.

        `AutoProcessor.from_pretrained(path, **kwargs)` comes here too. A keyword that only one feature extractor takes
        goes to it (`resample=True` and `check_mni_space=False` to the T1 one, `window_seconds=` to the fMRI one); one
        both take (`normalization`) needs the prefix `t1_` or `fmri_` (`t1_normalization="brain"`). File-loading
        keywords (`cache_dir`, `revision`, `local_files_only`, ...) go to transformers. Any other keyword is refused,
        never dropped.
        """
        loading = {key: value for key, value in kwargs.items() if key in LOADING_KWARGS}
        overrides = _route_options({key: value for key, value in kwargs.items() if key not in LOADING_KWARGS})
        loaded = super().from_pretrained(pretrained_model_name_or_path, **loading)
        processor = loaded[0] if isinstance(loaded, tuple) else loaded
        for attribute, options in overrides.items():
            if options:
                extractor = getattr(processor, attribute)
                setattr(processor, attribute, type(extractor)(**{**extractor.to_dict(), **options}))
        return loaded

    @classmethod
    def for_model(cls, model_name_or_path: str | os.PathLike, config, revision: str | None = None):
        """The processor saved with a model (a folder or a Hub repo, at `revision`), else `for_config(config)` with a
        warning that the defaults are used."""
        saved = cached_file(
            model_name_or_path, PROCESSOR_CONFIG_NAME, revision=revision, _raise_exceptions_for_missing_entries=False
        )
        if saved is not None:
            return cls.from_pretrained(model_name_or_path, revision=revision)
        warnings.warn(
            f"{model_name_or_path} has no saved processor: using the defaults that fit its config "
            "(`BrainHarmonixProcessor.for_config`). Save the processor the model was trained with beside it.",
            UserWarning,
            stacklevel=2,
        )
        return cls.for_config(config)

    @staticmethod
    def get_possibly_dynamic_module(module_name: str):
        # Our sub-processors live in this package, not in transformers: resolve them before transformers' own lookup
        # (which also fails without the optional vision/video backends).
        own = {cls.__name__: cls for cls in (T1VolumeFeatureExtractor, FMRIFeatureExtractor)}
        if module_name in own:
            return own[module_name]
        return ProcessorMixin.get_possibly_dynamic_module(module_name)

    def __call__(
        self,
        t1=None,
        fmri=None,
        *,
        repetition_time: float | Sequence[float | None] | None = None,
        layout: str | None = None,
        atlas: str | None = None,
        roi_labels: Sequence[str] | None = None,
        affine: np.ndarray | None = None,
        fmri_atlas_image=None,
        return_tensors: str | None = None,
    ) -> BatchFeature:
        """Prepare one subject or a batch.

        Args:
            t1: a T1 volume (`.nii`/`.nii.gz` path, nibabel image, or array with `affine`), or a list with one entry
                per subject, `None` for a subject without T1.
            fmri: a series per subject: a 2D array (axis order given by `layout`), or an fMRI file (an ROI table
                `.csv`/`.tsv`, optionally `.gz`; a `.npy` array; a 4D NIfTI path or image, which needs
                `fmri_atlas_image`) read by `FMRIFeatureExtractor.read_fmri_file`; a list with one entry per subject,
                `None` for a subject without fMRI. Files of different kinds may share a batch, arrays and files not.
            repetition_time: TR in seconds, one for all subjects or one per subject (`None` where fMRI is missing);
                optional for NIfTI runs whose header has it.
            layout (`str`): axis order of array series, `"rois_first"` `(num_rois, num_timepoints)` or
                `"time_first"`; required for arrays (never guessed). Files default to their kind's layout (`.tsv`
                time-first, `.csv` and `.npy` ROI-first; `processing.fmri_files.default_layout`).
            atlas (`str` or `Sequence[str | None]`, *optional*): the atlas the series follow (arrays, unlabelled or
                numbered tables, `.npy` arrays, the label image), one for all or, for files, one per subject;
                another Schaefer-400 order is permuted into the model's, any other atlas refused.
            roi_labels (`Sequence[str]`, *optional*): the ROI label of each row of array series.
            affine (`np.ndarray`, *optional*): `(4, 4)` affine of array T1 volumes.
            fmri_atlas_image: the label NIfTI on the grid of 4D NIfTI runs.
            return_tensors (`str`, *optional*): `"pt"` or `"np"`.

        Returns:
            `BatchFeature` with, for each modality given, its model inputs (`pixel_values`; `fmri_values`,
            `repetition_time`, `patch_size` (0 where fMRI is missing), `attention_mask`) and a `(batch,)` boolean
            `has_t1` / `has_fmri`.
        """
        if t1 is None and fmri is None:
            raise ValueError("Pass at least one modality: `t1=` (T1 volumes) and/or `fmri=` (fMRI series).")
        batched = isinstance(t1, (list, tuple)) or isinstance(fmri, (list, tuple))
        t1_list = _as_subject_list(t1, "t1") if t1 is not None else None
        fmri_list = _as_subject_list(fmri, "fmri") if fmri is not None else None
        if t1_list is not None and fmri_list is not None and len(t1_list) != len(fmri_list):
            raise ValueError(
                f"Got {len(t1_list)} T1 entries and {len(fmri_list)} fMRI entries; pass one entry per subject in "
                "both lists, with None where a subject lacks that modality."
            )
        if not batched and fmri is not None and np.ndim(repetition_time) > 0:
            raise ValueError("One fMRI series was given with several repetition times; pass one TR for it.")
        data = {}
        if t1_list is not None:
            data.update(self._t1_features(t1_list, affine))
        if fmri_list is not None:
            identity = {"atlas": atlas, "roi_labels": roi_labels}
            data.update(self._fmri_features(fmri_list, repetition_time, layout, identity, fmri_atlas_image))
        return BatchFeature(data, tensor_type=return_tensors)

    def _t1_features(self, volumes: list, affine: np.ndarray | None) -> dict:
        present = np.array([volume is not None for volume in volumes])
        pixel_values = np.zeros((len(volumes), 1, *self.t1_feature_extractor.volume_size), dtype=np.float32)
        if present.any():
            given = [volume for volume in volumes if volume is not None]
            pixel_values[present] = self.t1_feature_extractor(given, affine=affine, return_tensors="np")["pixel_values"]
        return {"pixel_values": pixel_values, "has_t1": present}

    def _fmri_features(self, series: list, repetition_time, layout: str | None, identity: dict, atlas_image) -> dict:
        present = np.array([entry is not None for entry in series])
        if np.ndim(repetition_time) == 0:
            repetition_times = [repetition_time] * len(series)
        elif len(repetition_time) != len(series):
            raise ValueError(
                f"repetition_time has {len(repetition_time)} values for {len(series)} subjects; pass one per subject "
                "(None where fMRI is missing) or a single value for all."
            )
        else:
            repetition_times = list(repetition_time)
        given = [index for index, entry in enumerate(series) if entry is not None]
        if not given:
            raise ValueError("Every fMRI entry is None; leave out `fmri=` when no subject has fMRI.")
        atlas = identity["atlas"]
        if atlas is not None and not isinstance(atlas, str):
            if len(atlas) != len(series):
                raise ValueError(
                    f"atlas has {len(atlas)} values for {len(series)} subjects; pass one per subject or one for all."
                )
            identity = identity | {"atlas": [atlas[index] for index in given]}
        features = self._prepare_fmri(
            [series[index] for index in given], [repetition_times[index] for index in given], layout, identity,
            atlas_image,
        )  # fmt: skip
        num_timepoints = features["fmri_values"].shape[-1]
        fmri_values = np.zeros((len(series), self.fmri_feature_extractor.num_rois, num_timepoints), dtype=np.float32)
        attention_mask = np.zeros((len(series), num_timepoints), dtype=features["attention_mask"].dtype)
        repetition_times = np.full(len(series), np.nan, dtype=np.float32)
        patch_sizes = np.zeros(len(series), dtype=np.int64)
        fmri_values[present] = features["fmri_values"]
        attention_mask[present] = features["attention_mask"]
        repetition_times[present] = features["repetition_time"]
        patch_sizes[present] = features["patch_size"]
        return {
            "fmri_values": fmri_values,
            "repetition_time": repetition_times,
            "patch_size": patch_sizes,
            "attention_mask": attention_mask,
            "has_fmri": present,
        }

    def _prepare_fmri(
        self, entries: list, repetition_times: list, layout: str | None, identity: dict, atlas_image
    ) -> BatchFeature:
        extractor = self.fmri_feature_extractor
        kinds = {_fmri_kind(entry) for entry in entries}
        if len(kinds) > 1:
            raise ValueError(
                f"fMRI entries of one batch must be of one kind, got {sorted(kinds)}; process each kind separately."
            )
        if kinds.pop() == "file":
            if identity["roi_labels"] is not None:
                raise ValueError("roi_labels= is for array series; fMRI files carry or declare their own ROI order.")
            return extractor.process_files(
                entries,
                repetition_time=repetition_times,
                layout=layout,
                atlas=identity["atlas"],
                label_image=atlas_image,
                return_tensors="np",
            )
        if identity["atlas"] is not None and not isinstance(identity["atlas"], str):
            raise ValueError("Array series take one atlas= for the whole batch; one per subject is for fMRI files.")
        return extractor(entries, repetition_time=repetition_times, layout=layout, return_tensors="np", **identity)


def _route_options(options: dict) -> dict[str, dict]:
    """Sort feature-extractor options by the extractor whose `__init__` takes them (a `t1_`/`fmri_` prefix decides
    for a name both take); refuse names neither takes."""
    accepted = {
        attribute: set(inspect.signature(extractor_class.__init__).parameters) - {"self", "kwargs"}
        for attribute, extractor_class in (
            ("t1_feature_extractor", T1VolumeFeatureExtractor),
            ("fmri_feature_extractor", FMRIFeatureExtractor),
        )
    }
    prefixes = {"t1_feature_extractor": "t1_", "fmri_feature_extractor": "fmri_"}
    routed = {attribute: {} for attribute in accepted}
    for key, value in options.items():
        prefixed = [
            attribute
            for attribute, prefix in prefixes.items()
            if key.startswith(prefix) and key.removeprefix(prefix) in accepted[attribute]
        ]
        if prefixed:
            routed[prefixed[0]][key.removeprefix(prefixes[prefixed[0]])] = value
            continue
        owners = [attribute for attribute, names in accepted.items() if key in names]
        if len(owners) == 1:
            routed[owners[0]][key] = value
        elif owners:
            raise ValueError(
                f"`{key}` is an option of both the T1 and the fMRI feature extractor; say which one with "
                f"`t1_{key}=` or `fmri_{key}=`."
            )
        else:
            raise ValueError(
                f"`{key}` is not an option of BrainHarmonixProcessor.from_pretrained. T1 options: "
                f"{sorted(accepted['t1_feature_extractor'])}; fMRI options: "
                f"{sorted(accepted['fmri_feature_extractor'])} (prefix `t1_`/`fmri_` for a name both have); loading "
                f"options: {sorted(key for key in LOADING_KWARGS if not key.startswith('_'))}."
            )
    return routed


def _as_subject_list(value, name: str) -> list:
    """One entry per subject: a list as given, or a single subject wrapped in a list."""
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError(f"`{name}` is an empty list; pass one entry per subject.")
        return list(value)
    return [value]


def _fmri_kind(entry) -> str:
    """`"file"` for paths and NIfTI images (`FMRIFeatureExtractor.read_fmri_file` tells their kinds apart),
    `"array"` for anything else."""
    if isinstance(entry, (str, os.PathLike)) or (hasattr(entry, "affine") and hasattr(entry, "header")):
        return "file"
    return "array"
