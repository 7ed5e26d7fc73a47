# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Latent caching: run the frozen encoders once over a cohort and keep their latents in an Arrow dataset.

Harmonizer pretraining and fine-tuning read the frozen encoders' outputs every epoch; computing them once saves the
encoders' forward pass and all file loading and preprocessing. A cache is a `datasets.Dataset` saved with
`save_to_disk`, one row per manifest row:

| column | type | meaning |
|---|---|---|
| `subject`, `session` | string (session may be null) | from the manifest |
| `fmri_latents` | large_binary or null | `(num_fmri_tokens, latent_size)` latents, see below; null without fMRI |
| `fmri_token_mask` | binary or null | `(num_fmri_tokens,)` int8, 1 for valid tokens; null without fMRI |
| `t1_latents` | large_binary or null | `(num_t1_tokens, latent_size)` latents; null without T1 |
| `has_t1`, `has_fmri` | bool | which modalities the subject has |
| `label`, `site`, `split` | as in the manifest | targets and grouping |

Latents are stored losslessly in the cache's `latent_dtype` (bfloat16 or float16): the raw 16-bit patterns as
little-endian uint16, row-major (tokens, then features), one binary value per subject. Binary values (rather than
nested lists) let a reader turn a row into a tensor without a Python-level copy. The dataset info's `description`
is a JSON object (`LatentCacheInfo`) with the format name and version, the latent dtype, the token counts, the
latent width and the model it came from; `load_latent_cache` checks it.

`with_model_inputs` gives the dataset a transform that yields the keyword arguments of `HarmonizerModel` /
`HarmonizerForSequenceClassification` as torch tensors (latents in the cache's dtype; the model casts them).

Caching is resumable: subjects are encoded in shards written under `<output>.partial/`; a rerun with the same model,
manifest and dtype skips finished shards, and the final dataset replaces the partial folder when all are done.
"""

import dataclasses
import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import datasets
import numpy as np
import torch

from ..dtype_names import canonical_dtype_name
from ..modeling.modeling_brainharmonix import BrainHarmonixModel
from ..processing.atlases import rows_in_model_order
from ..processing.feature_extraction_fmri import FMRIFeatureExtractor
from ..processing.processing_brainharmonix import BrainHarmonixProcessor
from .manifest import ManifestSource, load_manifest

LATENT_CACHE_FORMAT = "brainharmonix_latent_cache"
LATENT_CACHE_VERSION = 1
LATENT_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}
PROGRESS_FILE = "progress.json"


class LatentCacheError(ValueError):
    """A latent cache that cannot be used as asked: the message says why and what to do."""


@dataclasses.dataclass(frozen=True)
class LatentCacheInfo:
    """What a latent cache holds, stored as JSON in its dataset info.

    Attributes:
        latent_dtype: `"bfloat16"` or `"float16"`, the dtype whose bit patterns the latent columns hold.
        num_fmri_tokens, num_t1_tokens, latent_size: the latent shapes.
        model: the model folder (or name) the latents came from.
        format, version: `LATENT_CACHE_FORMAT` and `LATENT_CACHE_VERSION`.
    """

    latent_dtype: str
    num_fmri_tokens: int
    num_t1_tokens: int
    latent_size: int
    model: str
    format: str = LATENT_CACHE_FORMAT
    version: int = LATENT_CACHE_VERSION

    @property
    def torch_dtype(self) -> torch.dtype:
        return getattr(torch, self.latent_dtype)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_dataset(cls, dataset: datasets.Dataset) -> "LatentCacheInfo":
        try:
            fields = json.loads(dataset.info.description or "")
            info = cls(**fields)
        except (json.JSONDecodeError, TypeError) as error:
            raise LatentCacheError(
                "This dataset is not a BrainHarmonix latent cache (its info has no cache description); build one with "
                "`brainharmonix cache-latents` or `cache_latents`."
            ) from error
        if info.format != LATENT_CACHE_FORMAT or info.version != LATENT_CACHE_VERSION:
            raise LatentCacheError(
                f"Latent cache format {info.format!r} version {info.version} is not readable by this package (it reads "
                f"{LATENT_CACHE_FORMAT!r} version {LATENT_CACHE_VERSION}); rebuild the cache with this version."
            )
        return info

    def check_fits(self, config) -> None:
        """Raise unless a `HarmonizerConfig` reads latents of this cache's shapes."""
        expected = (self.num_fmri_tokens, self.num_t1_tokens, self.latent_size)
        got = (config.num_fmri_tokens, config.num_t1_tokens, config.latent_size)
        if expected != got:
            raise LatentCacheError(
                f"The cache holds (num_fmri_tokens, num_t1_tokens, latent_size) = {expected} but the Harmonizer reads "
                f"{got}: use a Harmonizer built for the encoders that made the cache, or rebuild the cache."
            )


def cache_features(manifest: datasets.Dataset) -> datasets.Features:
    """Arrow types of a cache built from `manifest` (its `label`, `site` and `split` types are kept)."""
    return datasets.Features(
        {
            "subject": datasets.Value("string"),
            "session": datasets.Value("string"),
            "fmri_latents": datasets.Value("large_binary"),
            "fmri_token_mask": datasets.Value("binary"),
            "t1_latents": datasets.Value("large_binary"),
            "has_t1": datasets.Value("bool"),
            "has_fmri": datasets.Value("bool"),
            "label": manifest.features["label"],
            "site": manifest.features["site"],
            "split": manifest.features["split"],
        }
    )


def latents_to_bytes(latents: torch.Tensor, dtype: torch.dtype) -> bytes:
    """`(num_tokens, latent_size)` latents -> the little-endian 16-bit patterns of their `dtype` values."""
    return latents.detach().to("cpu", dtype).contiguous().view(torch.int16).numpy().astype("<i2", copy=False).tobytes()


def latents_from_bytes(data: bytes, shape: tuple[int, int], dtype: torch.dtype) -> torch.Tensor:
    """Inverse of `latents_to_bytes`: a `shape` tensor of `dtype`."""
    values = np.frombuffer(data, dtype="<i2")
    if values.size != shape[0] * shape[1]:
        raise LatentCacheError(f"A cached latent holds {values.size} values, expected {shape[0]} × {shape[1]}.")
    return torch.from_numpy(values.astype(np.int16).reshape(shape)).view(dtype)


def cache_latents(
    model: BrainHarmonixModel,
    processor: BrainHarmonixProcessor,
    manifest: ManifestSource,
    output_dir: str | Path,
    *,
    dtype: str = "bfloat16",
    batch_size: int = 4,
    shard_size: int = 64,
    device: str | torch.device = "cpu",
    model_name: str | None = None,
    progress: Callable[[str], None] | None = None,
    fmri_label_image=None,
) -> datasets.Dataset:
    """Encode every manifest row with the frozen encoders and save the latents as a dataset at `output_dir`.

    Args:
        model: the composite model; only its encoders run (`encode_modalities`).
        processor: prepares each row's T1 (NIfTI path) and fMRI (ROI table, `.npy` array or 4D NIfTI) inputs.
        manifest: a cohort manifest (see `load_manifest`).
        output_dir: where the dataset is saved (`datasets.load_from_disk` / `load_latent_cache` read it).
        dtype: `"bfloat16"` (`"bf16"`) or `"float16"` (`"fp16"`), the stored latent dtype.
        batch_size: subjects per encoder forward pass.
        shard_size: subjects per resumable shard.
        device: where the encoders run.
        model_name: recorded in the cache info (defaults to the model's `name_or_path`).
        progress: called with a line after each shard.
        fmri_label_image: the atlas label image on the grid of 4D NIfTI fMRI runs, if the manifest lists any.

    Returns:
        The saved cache, loaded back from `output_dir`.
    """
    dtype = canonical_dtype_name(dtype)
    if dtype not in LATENT_DTYPES:
        raise ValueError(f"dtype must be one of {sorted(LATENT_DTYPES)} (or bf16 / fp16), got {dtype!r}.")
    output_dir = Path(output_dir)
    if (output_dir / "state.json").exists():
        raise LatentCacheError(f"{output_dir} already holds a dataset; remove it or choose another --output.")
    rows = load_manifest(manifest)
    _check_atlases(rows, processor.fmri_feature_extractor)
    harmonizer = model.config.harmonizer_config
    info = LatentCacheInfo(
        latent_dtype=str(LATENT_DTYPES[dtype]).removeprefix("torch."),
        num_fmri_tokens=harmonizer.num_fmri_tokens,
        num_t1_tokens=harmonizer.num_t1_tokens,
        latent_size=harmonizer.latent_size,
        model=model_name or model.config.name_or_path or "unnamed",
    )
    partial = output_dir.with_name(output_dir.name + ".partial")
    _start_or_resume(partial, _fingerprint(model, rows, info, shard_size))
    model = model.to(device).eval()
    features = cache_features(rows)
    num_shards = -(-len(rows) // shard_size)
    for shard in range(num_shards):
        shard_dir = partial / f"shard-{shard:05d}"
        if shard_dir.exists():
            continue
        indices = range(shard * shard_size, min((shard + 1) * shard_size, len(rows)))
        columns = _encode_rows(
            model, processor, rows.select(indices), LATENT_DTYPES[dtype], batch_size, device, fmri_label_image
        )
        temporary = partial / f"writing-{shard:05d}"
        shutil.rmtree(temporary, ignore_errors=True)
        datasets.Dataset.from_dict(columns, features=features).save_to_disk(str(temporary))
        temporary.rename(shard_dir)
        if progress is not None:
            progress(f"shard {shard + 1}/{num_shards}: {indices.stop} of {len(rows)} subjects encoded")
    shards = [datasets.load_from_disk(str(partial / f"shard-{shard:05d}")) for shard in range(num_shards)]
    cache = datasets.concatenate_datasets(shards)
    cache.info.description = info.to_json()
    cache.save_to_disk(str(output_dir))
    shutil.rmtree(partial)
    return load_latent_cache(output_dir)


def load_latent_cache(path: str | Path) -> datasets.Dataset:
    """Load a cache saved by `cache_latents` (its info is checked; see `LatentCacheInfo.from_dataset`)."""
    dataset = datasets.load_from_disk(str(path))
    LatentCacheInfo.from_dataset(dataset)
    return dataset


def with_model_inputs(
    cache: datasets.Dataset, label2id: dict | None = None, regression: bool = False
) -> datasets.Dataset:
    """The cache with a transform that yields Harmonizer inputs as torch tensors.

    Each item (or batch) holds `fmri_latents` `(num_fmri_tokens, latent_size)` and `t1_latents`
    `(num_t1_tokens, latent_size)` in the cache's dtype (zeros for a missing modality), `fmri_token_mask` and
    `t1_token_mask` (long, 0 for a missing modality) and, when `label2id` or `regression` is given, `labels`: class
    indices through `label2id` (long), or float targets. `default_data_collator` stacks items into batches.
    """
    info = LatentCacheInfo.from_dataset(cache)

    def transform(batch: dict) -> dict:
        return _model_inputs(batch, info, label2id, regression)

    return cache.with_transform(transform)


def embed_latent_cache(cache: datasets.Dataset, harmonizer, batch_size: int = 8, device="cpu") -> np.ndarray:
    """Subject embeddings `(num_subjects, hidden_size)`: the pooled hub tokens of a `HarmonizerModel` (or a model
    with one at `.harmonizer`) over every row of the cache, in row order."""
    base = getattr(harmonizer, "harmonizer", harmonizer)
    LatentCacheInfo.from_dataset(cache).check_fits(base.config)
    base = base.to(device).eval()
    inputs = with_model_inputs(cache)
    embeddings = []
    with torch.inference_mode():
        for start in range(0, len(cache), batch_size):
            batch = inputs[start : start + batch_size]
            embeddings.append(base(**{name: value.to(device) for name, value in batch.items()}).pooler_output.float())
    return torch.cat(embeddings).cpu().numpy()


def _model_inputs(batch: dict, info: LatentCacheInfo, label2id: dict | None, regression: bool) -> dict:
    dtype = info.torch_dtype
    fmri_shape, t1_shape = (info.num_fmri_tokens, info.latent_size), (info.num_t1_tokens, info.latent_size)
    inputs = {
        "fmri_latents": torch.stack([_latents_or_zeros(data, fmri_shape, dtype) for data in batch["fmri_latents"]]),
        "fmri_token_mask": torch.stack(
            [
                torch.zeros(info.num_fmri_tokens, dtype=torch.long)
                if data is None
                else torch.from_numpy(np.frombuffer(data, dtype=np.int8).astype(np.int64))
                for data in batch["fmri_token_mask"]
            ]
        ),
        "t1_latents": torch.stack([_latents_or_zeros(data, t1_shape, dtype) for data in batch["t1_latents"]]),
        "t1_token_mask": torch.tensor(batch["has_t1"], dtype=torch.long).unsqueeze(1).expand(-1, info.num_t1_tokens),
    }
    if regression:
        inputs["labels"] = torch.tensor([float(label) for label in batch["label"]], dtype=torch.float32)
    elif label2id is not None:
        try:
            inputs["labels"] = torch.tensor([label2id[label] for label in batch["label"]], dtype=torch.long)
        except KeyError as error:
            raise LatentCacheError(f"Label {error.args[0]!r} is not in label2id {label2id}.") from error
    return inputs


def _latents_or_zeros(data: bytes | None, shape: tuple[int, int], dtype: torch.dtype) -> torch.Tensor:
    return torch.zeros(shape, dtype=dtype) if data is None else latents_from_bytes(data, shape, dtype)


def _encode_rows(
    model: BrainHarmonixModel,
    processor: BrainHarmonixProcessor,
    rows: datasets.Dataset,
    dtype: torch.dtype,
    batch_size: int,
    device,
    label_image=None,
) -> dict[str, list]:
    columns = {name: [] for name in ("fmri_latents", "fmri_token_mask", "t1_latents", "has_t1", "has_fmri")}
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        inputs = processor_inputs(processor, batch, label_image)
        inputs = {name: value.to(device) for name, value in inputs.items()}
        with torch.inference_mode():
            latents = model.encode_modalities(**inputs)
        for index in range(len(batch["subject"])):
            has_fmri = batch["fmri"][index] is not None
            has_t1 = batch["t1"][index] is not None
            columns["has_fmri"].append(has_fmri)
            columns["has_t1"].append(has_t1)
            columns["fmri_latents"].append(latents_to_bytes(latents.fmri_latents[index], dtype) if has_fmri else None)
            columns["fmri_token_mask"].append(
                latents.fmri_token_mask[index].to("cpu", torch.int8).numpy().tobytes() if has_fmri else None
            )
            columns["t1_latents"].append(latents_to_bytes(latents.t1_latents[index], dtype) if has_t1 else None)
    for name in ("subject", "session", "label", "site", "split"):
        columns[name] = rows[name]
    return columns


def processor_inputs(processor: BrainHarmonixProcessor, batch: dict, label_image=None) -> dict[str, torch.Tensor]:
    """One batch of manifest rows -> model inputs (only the modalities some subject has).

    fMRI files of any kind (ROI tables, `.npy` arrays, 4D NIfTI runs parcellated with `label_image`) are read by
    `FMRIFeatureExtractor.read_fmri_file`, each row's `atlas` honoured; a batch may mix kinds.
    """
    arguments = {}
    if any(path is not None for path in batch["t1"]):
        arguments["t1"] = list(batch["t1"])
    if any(path is not None for path in batch["fmri"]):
        arguments["fmri"] = list(batch["fmri"])
        arguments["repetition_time"] = list(batch["repetition_time"])
        arguments["atlas"] = list(batch["atlas"])
        arguments["fmri_atlas_image"] = label_image
    return dict(processor(**arguments, return_tensors="pt"))


def _check_atlases(rows: datasets.Dataset, extractor: FMRIFeatureExtractor) -> None:
    """Refuse, before any encoding, rows that declare an atlas the model cannot take (the other Schaefer-400 order is
    permuted by the reader, anything else is refused)."""
    declared = {atlas for atlas, fmri in zip(rows["atlas"], rows["fmri"], strict=True) if fmri and atlas}
    refused = set()
    for atlas in declared:
        try:
            rows_in_model_order(None, extractor.atlas, extractor.model_roi_labels(), declared_atlas=atlas)
        except ValueError:
            refused.add(atlas)
    wrong = [
        f"{subject} ({row_atlas})"
        for subject, row_atlas, fmri in zip(rows["subject"], rows["atlas"], rows["fmri"], strict=True)
        if fmri is not None and row_atlas in refused
    ]
    if wrong:
        raise LatentCacheError(
            f"The model reads fMRI in the {extractor.atlas!r} ROI order, but these subjects' series are in another "
            f"atlas: {', '.join(wrong[:10])}{' ...' if len(wrong) > 10 else ''}. Convert their series to "
            f"{extractor.atlas!r} first."
        )


def _fingerprint(model: BrainHarmonixModel, rows: datasets.Dataset, info: LatentCacheInfo, shard_size: int) -> str:
    """Changes when the model config, its encoders' weights, the manifest, the dtype or the shard size change."""
    digest = hashlib.sha256()
    digest.update(model.config.to_json_string().encode())
    for encoder in (model.structure, model.function):
        for name, parameter in encoder.state_dict().items():
            digest.update(name.encode())
            digest.update(parameter.detach().float().cpu().numpy().tobytes())
    digest.update(json.dumps(rows.to_list(), sort_keys=True, default=str).encode())
    digest.update(f"{info.to_json()}|{shard_size}".encode())
    return digest.hexdigest()


def _start_or_resume(partial: Path, fingerprint: str) -> None:
    progress_file = partial / PROGRESS_FILE
    if progress_file.exists():
        if json.loads(progress_file.read_text()).get("fingerprint") == fingerprint:
            return
        raise LatentCacheError(
            f"{partial} holds an unfinished cache of another model, manifest, dtype or shard size; delete it to start "
            "over, or rerun with the same settings to resume."
        )
    partial.mkdir(parents=True, exist_ok=True)
    progress_file.write_text(json.dumps({"fingerprint": fingerprint}))


__all__ = [
    "LATENT_CACHE_FORMAT",
    "LATENT_CACHE_VERSION",
    "LatentCacheError",
    "LatentCacheInfo",
    "cache_features",
    "cache_latents",
    "embed_latent_cache",
    "latents_from_bytes",
    "latents_to_bytes",
    "load_latent_cache",
    "processor_inputs",
    "with_model_inputs",
]
