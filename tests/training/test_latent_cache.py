"""Latent caching on real files: the cache holds exactly what the encoders give (to the stored dtype), resumes, and
reads back as model inputs."""

import json

import datasets
import pytest
import torch
from transformers import default_data_collator

from brainharmonix_hf import BrainHarmonixModel, BrainHarmonixProcessor, HarmonizerModel
from brainharmonix_hf.cli import main
from brainharmonix_hf.training.latent_cache import (
    LatentCacheError,
    LatentCacheInfo,
    cache_latents,
    load_latent_cache,
    processor_inputs,
    with_model_inputs,
)
from brainharmonix_hf.training.manifest import load_manifest


@pytest.fixture(scope="module")
def encoded(cohort, tiny_model_dir):
    """The model, and `encode_modalities` of the whole cohort in one batch (float32)."""
    model = BrainHarmonixModel.from_pretrained(tiny_model_dir).eval()
    processor = BrainHarmonixProcessor.from_pretrained(tiny_model_dir)
    with torch.inference_mode():
        latents = model.encode_modalities(**processor_inputs(processor, load_manifest(cohort)[:]))
    return model, processor, latents


@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_cache_round_trip_equals_the_encoders(encoded, cohort, tmp_path, dtype):
    model, processor, latents = encoded
    torch_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
    # Batches of 5 over shards of 4: batch and shard edges fall inside the cohort.
    cache = cache_latents(model, processor, cohort, tmp_path / "cache", dtype=dtype, batch_size=5, shard_size=4)
    info = LatentCacheInfo.from_dataset(cache)
    assert (info.latent_dtype, info.num_fmri_tokens, info.num_t1_tokens, info.latent_size) == (
        str(torch_dtype).removeprefix("torch."),
        800,
        8,
        24,
    )
    assert cache["subject"] == [row["subject"] for row in cohort]
    assert cache["label"] == [row["label"] for row in cohort] and cache["site"][:3] == ["A", "B", "C"]
    assert cache["has_t1"] == [row["t1"] is not None for row in cohort] and all(cache["has_fmri"])
    assert cache["t1_latents"][3] is None and cache["t1_latents"][7] is None

    inputs = with_model_inputs(cache, label2id={0: 0, 1: 1})[:]
    # Stored in the cache dtype without loss: equal to the encoders' float32 latents rounded once to it.
    assert inputs["fmri_latents"].dtype == torch_dtype
    assert torch.equal(inputs["fmri_latents"], latents.fmri_latents.to(torch_dtype))
    has_t1 = torch.tensor(cache["has_t1"])
    assert torch.equal(inputs["t1_latents"][has_t1], latents.t1_latents[has_t1].to(torch_dtype))
    assert not inputs["t1_latents"][~has_t1].any()
    # Within half a unit in the last place (fp16 subnormals: half their spacing, 2^-25).
    rtol, atol = (2**-8, 0.0) if dtype == "bf16" else (2**-11, 2**-25)
    torch.testing.assert_close(inputs["fmri_latents"].float(), latents.fmri_latents, rtol=rtol, atol=atol)
    # Masks exact: 2 valid patches of 400 ROIs for 50-frame windows, 1 for 25-frame ones.
    assert torch.equal(inputs["fmri_token_mask"], latents.fmri_token_mask.long())
    assert inputs["fmri_token_mask"].sum(1).tolist() == [400 if index % 3 == 2 else 800 for index in range(12)]
    assert torch.equal(inputs["t1_token_mask"], has_t1.long().unsqueeze(1).expand(-1, 8))
    assert inputs["labels"].tolist() == [index % 2 for index in range(12)]

    # Items collate into batches that the Harmonizer reads as they are.
    dataset = with_model_inputs(cache, label2id={0: 0, 1: 1})
    batch = default_data_collator([dataset[index] for index in range(3)])
    harmonizer = HarmonizerModel(model.config.harmonizer_config).eval()
    with torch.no_grad():
        pooled = harmonizer(**{k: v for k, v in batch.items() if k != "labels"}).pooler_output
    assert pooled.shape == (3, 24) and torch.isfinite(pooled).all()


def test_cache_resumes_and_refuses_other_settings(encoded, cohort, tmp_path):
    model, processor, _ = encoded
    output = tmp_path / "cache"
    reference = cache_latents(model, processor, cohort, tmp_path / "reference", shard_size=4)
    # A first run stopped after its second shard (simulated by failing on the third).
    calls = []

    def stop_after_two_shards(line):
        calls.append(line)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cache_latents(model, processor, cohort, output, shard_size=4, progress=stop_after_two_shards)
    partial = tmp_path / "cache.partial"
    assert sorted(path.name for path in partial.glob("shard-*")) == ["shard-00000", "shard-00001"]
    with pytest.raises(LatentCacheError, match="another model, manifest, dtype or shard size"):
        cache_latents(model, processor, cohort, output, shard_size=4, dtype="fp16")
    resumed_lines = []
    cache = cache_latents(model, processor, cohort, output, shard_size=4, progress=resumed_lines.append)
    assert resumed_lines == ["shard 3/3: 12 of 12 subjects encoded"]  # only the missing shard was encoded
    assert not partial.exists()
    assert cache["fmri_latents"] == reference["fmri_latents"] and cache["t1_latents"] == reference["t1_latents"]
    with pytest.raises(LatentCacheError, match="already holds a dataset"):
        cache_latents(model, processor, cohort, output)


def test_reader_refuses_other_datasets_and_mismatched_models(encoded, cohort, tmp_path):
    model, processor, _ = encoded
    datasets.Dataset.from_dict({"subject": ["01"]}).save_to_disk(str(tmp_path / "plain"))
    with pytest.raises(LatentCacheError, match="not a BrainHarmonix latent cache"):
        load_latent_cache(tmp_path / "plain")
    cache = cache_latents(model, processor, cohort[:2], tmp_path / "cache")
    other = model.config.harmonizer_config.to_dict() | {"num_t1_tokens": 9}
    with pytest.raises(LatentCacheError, match=r"\(800, 8, 24\) but the Harmonizer reads \(800, 9, 24\)"):
        LatentCacheInfo.from_dataset(cache).check_fits(type(model.config.harmonizer_config)(**other))
    # The other Schaefer-400 order is permuted by the reader; an atlas the model cannot take is refused up front.
    wrong_atlas = [dict(cohort[0], atlas="gordon333")]
    with pytest.raises(LatentCacheError, match=r"these subjects' series are in another atlas: 00 \(gordon333\)"):
        cache_latents(model, processor, wrong_atlas, tmp_path / "other")


def test_cache_latents_command(cohort, tiny_model_dir, tmp_path):
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps(cohort[:3]))
    main(
        [
            "cache-latents",
            "--model",
            tiny_model_dir,
            "--manifest",
            str(manifest),
            "--output",
            str(tmp_path / "c"),
            "--dtype",
            "fp16",
            "--batch-size",
            "2",
        ]
    )
    cache = load_latent_cache(tmp_path / "c")
    assert LatentCacheInfo.from_dataset(cache).latent_dtype == "float16"
    assert cache["subject"] == ["00", "01", "02"]
    assert LatentCacheInfo.from_dataset(cache).model == tiny_model_dir


def test_roi_tables_in_the_other_schaefer_order_are_cached_in_the_model_order(encoded, lemon_series, tmp_path):
    """A table labelled in 17-network order is permuted like every other reader does, never cached row for row."""
    from brainharmonix_hf.processing.atlases import schaefer400_permutation, schaefer400_roi_names

    model, processor, _ = encoded
    series = lemon_series[:, :50]
    rows = []
    for name, labels, values in (
        ("7n", schaefer400_roi_names("schaefer400_7networks"), series),
        (
            "17n",
            schaefer400_roi_names("schaefer400_17networks"),
            series[schaefer400_permutation("schaefer400_7networks", "schaefer400_17networks")],
        ),
    ):
        path = tmp_path / f"{name}.csv"
        lines = ["roi," + ",".join(f"t{t}" for t in range(values.shape[1]))]
        lines += [f"{label}," + ",".join(f"{v:.9g}" for v in row) for label, row in zip(labels, values, strict=True)]
        path.write_text("\n".join(lines) + "\n")
        rows.append({"subject": name, "fmri": str(path), "repetition_time": 1.4})
    cache = cache_latents(model, processor, rows, tmp_path / "cache")
    assert cache[0]["fmri_latents"] == cache[1]["fmri_latents"]
