# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Pretraining data: manifest rows loaded lazily (in DataLoader workers), augmented, and batched by token count.

- `T1PretrainingDataset`: the `t1` NIfTI of each manifest row through a `T1VolumeFeatureExtractor`, then
  `T1Augmentation` (left-right flip, intensity scale and offset, integer shift).
- `FMRIPretrainingDataset`: the `fmri` series of each row (ROI CSV/TSV, `.npy`, or a 4D NIfTI with a label image),
  downsampled by a random rate `r` with a random offset (TR' = r · TR), and cropped to a random window of
  the model's `num_time_patches` patches. The feature extractor runs in the collator, on the whole batch.
- `LengthGroupedBatchSampler`: batches of similar token count and TR, so mixed-length, mixed-TR cohorts waste little
  padding and few patch kernels per batch.
- `HarmonizerLatentDataset`: the rows of a latent cache (`training.latent_cache`) for Harmonizer pretraining.

Randomness: every item draws from its own generator seeded by `(seed, epoch, index)`, so an item is the same whatever
the number of workers or processes, and a resumed run sees the same data as an uninterrupted one. A dataset whose
`set_epoch` is never called (a held-out set) gives the same items every time. Each item carries a `mask_seed` from
which the collator draws the batch's masks.
"""

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import datasets
import numpy as np
from torch.utils.data import Dataset, Sampler

from ..modeling.repetition_time import check_repetition_time, patch_length_for_tr
from ..processing.atlases import SCHAEFER400_NUM_ROIS
from ..processing.feature_extraction_fmri import FMRIFeatureExtractor
from ..processing.feature_extraction_t1 import T1VolumeFeatureExtractor
from ..processing.fmri_files import count_frames, fmri_file_kind
from ..processing.nifti_io import load_header, load_image
from ..processing.nifti_io import repetition_time as header_repetition_time
from .latent_cache import LatentCacheInfo, with_model_inputs


def item_generator(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator of item `index` in `epoch` (independent of workers and processes)."""
    return np.random.default_rng([seed, epoch, index])


def load_fmri_series(
    path: str, feature_extractor: FMRIFeatureExtractor, atlas: str | None = None, label_image=None
) -> tuple[np.ndarray, float | None]:
    """Read one fMRI input as a `(num_rois, num_timepoints)` float32 array, ROI-first in the model's ROI order, and
    its header TR (NIfTI only), with `FMRIFeatureExtractor.read_fmri_file` (the reader of every caller).

    Args:
        path: an ROI table (`.csv` ROI-first, `.tsv` time-first, optionally `.gz`), a `.npy` array `(num_rois, T)`,
            or a 4D NIfTI (then `label_image` is required).
        feature_extractor: the model's extractor: its atlas and ROI order are the ones files are checked against and
            put in.
        atlas: the atlas the file declares (a manifest's `atlas` column), for unlabelled or numbered files.
        label_image: the atlas NIfTI on the runs' grid, labels `1..num_rois` numbering the ROIs of `atlas`.
    """
    read = feature_extractor.read_fmri_file(path, atlas=atlas, label_image=label_image)
    return read.series.T.astype(np.float32), read.header_repetition_time


def default_fmri_extractor(num_rois: int) -> FMRIFeatureExtractor:
    """The extractor of the default atlas (Schaefer-400, 7-network order) for callers that pass none."""
    if num_rois != SCHAEFER400_NUM_ROIS:
        raise ValueError(
            f"Series of {num_rois} ROIs need the model's feature extractor (`feature_extractor=`): it states the atlas "
            "and ROI order files are read in; the default is Schaefer-400."
        )
    return FMRIFeatureExtractor(num_rois=num_rois)


@dataclass
class T1Augmentation:
    """Random transforms of a processed T1 volume `(1, d0, d1, d2)` (z-scored, RAS axes), drawn per item:

    - with probability `flip_probability`, a left-right flip (axis 0, RAS x);
    - intensities `x · s + o` with `s ~ U(scale_range)` and `o ~ U(offset_range)` (z-score units);
    - an integer translation of up to `max_shift` voxels per axis; uncovered voxels take the volume's minimum (the
      background).
    """

    flip_probability: float = 0.5
    scale_range: tuple[float, float] = (0.9, 1.1)
    offset_range: tuple[float, float] = (-0.1, 0.1)
    max_shift: int = 4

    def __call__(self, volume: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if rng.random() < self.flip_probability:
            volume = volume[:, ::-1]
        volume = volume * rng.uniform(*self.scale_range) + rng.uniform(*self.offset_range)
        shifts = rng.integers(-self.max_shift, self.max_shift + 1, size=3)
        shifted = np.full_like(volume, volume.min())
        source, target = [slice(None)], [slice(None)]
        for shift, size in zip(shifts.tolist(), volume.shape[1:], strict=True):
            source.append(slice(max(0, -shift), size - max(0, shift)))
            target.append(slice(max(0, shift), size - max(0, -shift)))
        shifted[tuple(target)] = volume[tuple(source)]
        return np.ascontiguousarray(shifted, dtype=np.float32)


class _ManifestDataset(Dataset):
    """Rows of a manifest that have `column`, with epoch-aware per-item generators.

    With `samples_per_epoch` an epoch has that many items, item `i` reading row `i % num_rows`: every row gives
    several samples per epoch (random crops and augmentations, each from its own generator), with no made-up sessions
    in the manifest. Without it, one item per row.
    """

    def __init__(self, manifest: datasets.Dataset, column: str, seed: int, samples_per_epoch: int | None = None):
        self.rows = [row for row in manifest if row[column] is not None]
        if not self.rows:
            raise ValueError(f"The manifest has no row with a `{column}` input for this stage.")
        if samples_per_epoch is not None and samples_per_epoch < 1:
            raise ValueError(f"samples_per_epoch must be a positive number of items, got {samples_per_epoch}.")
        self.seed = seed
        self.epoch = 0
        self.samples_per_epoch = samples_per_epoch

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.samples_per_epoch or len(self.rows)

    def row_index(self, index: int) -> int:
        """The manifest row item `index` reads."""
        return index % len(self.rows)

    def subject(self, index: int) -> str:
        row = self.rows[self.row_index(index)]
        return row["subject"] if row["session"] is None else f"{row['subject']}/{row['session']}"

    def _generator(self, index: int) -> np.random.Generator:
        return item_generator(self.seed, self.epoch, index)


class T1PretrainingDataset(_ManifestDataset):
    """T1 volumes of a manifest's rows, processed and augmented per item.

    Items: `pixel_values` `(1, *volume_size)` float32, `index`, `mask_seed`.
    """

    def __init__(
        self,
        manifest: datasets.Dataset,
        feature_extractor: T1VolumeFeatureExtractor,
        augmentation: T1Augmentation | None = None,
        seed: int = 0,
        samples_per_epoch: int | None = None,
    ):
        super().__init__(manifest, "t1", seed, samples_per_epoch)
        self.feature_extractor = feature_extractor
        self.augmentation = augmentation

    def batch_keys(self) -> list[tuple]:
        """Every volume has the same token count: one group."""
        return [(0,)] * len(self)

    def __getitem__(self, index: int) -> dict:
        rng = self._generator(index)
        volume = self.feature_extractor(self.rows[self.row_index(index)]["t1"])["pixel_values"][0]
        if self.augmentation is not None:
            volume = self.augmentation(volume, rng)
        return {"pixel_values": volume, "index": index, "mask_seed": int(rng.integers(2**31))}


class FMRIPretrainingDataset(_ManifestDataset):
    """fMRI series of a manifest's rows, downsampled by a random rate and cropped to a random model window.

    For each item: a rate `r` from `downsample_rates` and an offset in `[0, r)` are drawn, every `r`-th frame from the
    offset is kept (TR' = r · TR, so the patch length becomes `round(window_seconds / TR')`), then a window of
    `num_time_patches` patches starts at a random frame (series that fit are kept whole).

    Files are read by `feature_extractor` (`FMRIFeatureExtractor.read_fmri_file`: labels checked, rows in the
    model's order, a row's `atlas` honoured); without one, by the default Schaefer-400 extractor.

    Items: `fmri` `(num_rois, T)` float32 ROI-first, `repetition_time` (seconds, after downsampling), `index`,
    `mask_seed`.
    """

    def __init__(
        self,
        manifest: datasets.Dataset,
        num_time_patches: int,
        window_seconds: float,
        downsample_rates: Sequence[int] = (1,),
        num_rois: int = 400,
        label_image=None,
        seed: int = 0,
        feature_extractor: FMRIFeatureExtractor | None = None,
        samples_per_epoch: int | None = None,
    ):
        super().__init__(manifest, "fmri", seed, samples_per_epoch)
        if not downsample_rates or any(int(rate) < 1 for rate in downsample_rates):
            raise ValueError(f"downsample_rates must be positive integers, got {list(downsample_rates)}.")
        self.num_time_patches = num_time_patches
        self.window_seconds = window_seconds
        self.downsample_rates = [int(rate) for rate in downsample_rates]
        # Loaded and checked here, once (an image `load_image` returned, as the stage passes, is taken as it is).
        self.label_image = None if label_image is None else load_image(label_image)
        self.feature_extractor = (
            feature_extractor if feature_extractor is not None else default_fmri_extractor(num_rois)
        )
        self._keys = None

    def _repetition_time(self, index: int, header_tr: float | None) -> float:
        row = self.rows[self.row_index(index)]
        explicit = row["repetition_time"] if row["repetition_time"] is not None else header_tr
        return check_repetition_time(explicit, f"repetition_time of subject {self.subject(index)}")

    def batch_keys(self) -> list[tuple]:
        """`(valid time patches, TR)` per item at rate 1, from file headers (read once): a time patch spans the same
        seconds at every rate, so downsampling barely changes the count."""
        if self._keys is None:
            keys = []
            for index, row in enumerate(self.rows):
                is_nifti = fmri_file_kind(row["fmri"]) == "nifti"
                tr = self._repetition_time(
                    index, header_repetition_time(load_header(row["fmri"])) if is_nifti else None
                )
                patch = patch_length_for_tr(tr, self.window_seconds)
                keys.append((min(self.num_time_patches, math.ceil(count_frames(row["fmri"]) / patch)), tr))
            self._keys = keys
        return [self._keys[self.row_index(index)] for index in range(len(self))]

    def __getitem__(self, index: int) -> dict:
        rng = self._generator(index)
        row = self.rows[self.row_index(index)]
        series, header_tr = load_fmri_series(row["fmri"], self.feature_extractor, row.get("atlas"), self.label_image)
        repetition_time = self._repetition_time(index, header_tr)
        rate = int(rng.choice(self.downsample_rates))
        offset = int(rng.integers(rate))
        series = series[:, offset::rate]
        repetition_time = check_repetition_time(
            rate * repetition_time, f"repetition_time of subject {self.subject(index)} downsampled x{rate}"
        )
        window = self.num_time_patches * patch_length_for_tr(repetition_time, self.window_seconds)
        if series.shape[1] > window:
            start = int(rng.integers(series.shape[1] - window + 1))
            series = series[:, start : start + window]
        return {
            "fmri": np.ascontiguousarray(series),
            "repetition_time": repetition_time,
            "index": index,
            "mask_seed": int(rng.integers(2**31)),
        }


class LengthGroupedBatchSampler(Sampler[list[int]]):
    """Batches of items with similar keys (token count, TR).

    Training (`shuffle=True`): the items are shuffled, cut into mega-batches of `mega_batch_factor` batches, each
    mega-batch is sorted by key and cut into batches, and the batch order is shuffled, so batches are random but
    nearly uniform in length and TR. Evaluation (`shuffle=False`): all items sorted by key, then cut. The order depends
    only on `(seed, epoch, batch_size)`.

    Resuming inside an epoch (`resume_epoch`): the epoch's items in the order its batches of `order_batch_size` gave
    them, without the first `skip_samples`, cut into batches of `batch_size`. A run resumed with another batch size or
    number of processes thus continues at the first item not yet seen, and sees every other item of the epoch once.
    """

    def __init__(
        self,
        keys: Sequence[tuple],
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        mega_batch_factor: int = 16,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}.")
        self.keys = list(keys)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.mega_batch_factor = mega_batch_factor
        self.epoch = 0
        self.skip_samples, self.order_batch_size = 0, batch_size

    def set_epoch(self, epoch: int) -> None:
        """Use the order of epoch `epoch`, from its first batch when `epoch` is a new epoch (Accelerate sets the
        current epoch again when iteration starts: that keeps a resumed epoch's position)."""
        if epoch != self.epoch:
            self.skip_samples, self.order_batch_size = 0, self.batch_size
        self.epoch = epoch

    def resume_epoch(self, skip_samples: int, order_batch_size: int) -> None:
        """Continue the current epoch after its first `skip_samples` items in the order of batches of
        `order_batch_size` (the global batch size the epoch started with)."""
        self.skip_samples, self.order_batch_size = skip_samples, order_batch_size

    def __len__(self) -> int:
        if self.skip_samples:
            return sum(1 for _ in self)
        whole, rest = divmod(len(self.keys), self.batch_size)
        return whole + (rest > 0 and not self.drop_last)

    def __iter__(self) -> Iterator[list[int]]:
        if not self.skip_samples:
            yield from self._batches(self.batch_size)
            return
        remaining = [index for batch in self._batches(self.order_batch_size) for index in batch][self.skip_samples :]
        yield from self._cut(remaining, self.batch_size)

    def _batches(self, batch_size: int) -> Iterator[list[int]]:
        if not self.shuffle:
            order = sorted(range(len(self.keys)), key=lambda index: (self.keys[index], index))
            yield from self._cut(order, batch_size)
            return
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(len(self.keys)).tolist()
        mega = batch_size * self.mega_batch_factor
        grouped = []
        for start in range(0, len(order), mega):
            grouped += sorted(order[start : start + mega], key=lambda index: self.keys[index])
        batches = list(self._cut(grouped, batch_size))
        for position in rng.permutation(len(batches)).tolist():
            yield batches[position]

    def _cut(self, order: list[int], batch_size: int) -> Iterator[list[int]]:
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            if len(batch) == batch_size or not self.drop_last:
                yield batch


class HarmonizerLatentDataset(Dataset):
    """Rows of a latent cache (written by `training.latent_cache.cache_latents`) as Harmonizer inputs.

    Items: `fmri_latents` `(num_fmri_tokens, latent_size)` and `t1_latents` `(num_t1_tokens, latent_size)` in the
    cache's dtype (zeros for a missing modality), `fmri_token_mask` and `t1_token_mask` (long), see
    `with_model_inputs`; and `index`.
    """

    def __init__(self, cache: datasets.Dataset, config):
        LatentCacheInfo.from_dataset(cache).check_fits(config)
        self.inputs = with_model_inputs(cache)
        self.subjects = [
            subject if session is None else f"{subject}/{session}"
            for subject, session in zip(cache["subject"], cache["session"], strict=True)
        ]

    def __len__(self) -> int:
        return len(self.subjects)

    def set_epoch(self, epoch: int) -> None:
        """Rows are fixed; modality dropout inside the model is the stage's randomness."""

    def subject(self, index: int) -> str:
        return self.subjects[index]

    def batch_keys(self) -> list[tuple]:
        return [(0,)] * len(self)

    def __getitem__(self, index: int) -> dict:
        return self.inputs[index] | {"index": index}


__all__ = [
    "FMRIPretrainingDataset",
    "HarmonizerLatentDataset",
    "LengthGroupedBatchSampler",
    "T1Augmentation",
    "T1PretrainingDataset",
    "load_fmri_series",
]
