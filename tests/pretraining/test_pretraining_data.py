"""Pretraining data pieces on real files: multi-TR downsampling and windows, length- and TR-grouped batches, T1
augmentation, the JEPA collator's masks, the Harmonizer stage on the latent cache, and options from YAML and flags."""

import nibabel as nib
import numpy as np
import pytest
import torch
from file_opens import count_opens
from pretraining_runs import stage_flags

from brainharmonix_hf import FMRIFeatureExtractor, FunctionJEPAConfig, SpatiotemporalMaskSampler
from brainharmonix_hf.modeling.repetition_time import patch_length_for_tr
from brainharmonix_hf.processing.nifti_io import load_image
from brainharmonix_hf.training.collators import FunctionJEPACollator
from brainharmonix_hf.training.data import FMRIPretrainingDataset, LengthGroupedBatchSampler, T1Augmentation
from brainharmonix_hf.training.latent_cache import LatentCacheError, load_latent_cache
from brainharmonix_hf.training.manifest import load_manifest
from brainharmonix_hf.training.pretrain import parse_arguments
from brainharmonix_hf.training.stages import FunctionStage, HarmonizerStage


@pytest.fixture(scope="module")
def series() -> np.ndarray:
    """A real-valued ROI series of 300 frames (a smooth signal per ROI plus a ramp, so frames are distinguishable)."""
    rng = np.random.default_rng(0)
    return (rng.standard_normal((400, 1)) + np.arange(300)[None] * 0.01).astype(np.float32)


def test_downsampling_keeps_every_rth_frame_from_an_offset_and_scales_the_tr(tmp_path, series):
    np.save(tmp_path / "run.npy", series)
    manifest = load_manifest([{"subject": "s", "fmri": str(tmp_path / "run.npy"), "repetition_time": 0.8}])
    dataset = FMRIPretrainingDataset(manifest, num_time_patches=4, window_seconds=35.28, downsample_rates=[3])
    seen_offsets = set()
    for epoch in range(6):
        dataset.set_epoch(epoch)
        item = dataset[0]
        assert item["repetition_time"] == pytest.approx(2.4)
        window = 4 * patch_length_for_tr(2.4, 35.28)
        assert item["fmri"].shape == (400, window)
        # The item is a stride-3 run of consecutive original frames.
        start = int(np.argmin(np.abs(series[0] - item["fmri"][0, 0])))
        np.testing.assert_array_equal(item["fmri"], series[:, start : start + 3 * window : 3])
        seen_offsets.add(start % 3)
    assert len(seen_offsets) > 1
    dataset.set_epoch(2)
    np.testing.assert_array_equal(dataset[0]["fmri"], dataset[0]["fmri"])


def test_batches_group_similar_lengths_and_trs_and_cover_every_item_once():
    rng = np.random.default_rng(1)
    keys = [
        (int(length), float(tr)) for length, tr in zip(rng.integers(1, 19, 96), rng.choice([0.8, 2.0], 96), strict=True)
    ]
    sampler = LengthGroupedBatchSampler(keys, batch_size=8, shuffle=True, seed=0, mega_batch_factor=12)
    batches = list(sampler)
    assert sorted(i for batch in batches for i in batch) == list(range(96))
    spread = np.mean([max(keys[i][0] for i in b) - min(keys[i][0] for i in b) for b in batches])
    random_spread = np.mean([np.ptp([keys[i][0] for i in b]) for b in np.split(rng.permutation(96), 12)])
    assert spread < random_spread / 3
    assert list(sampler) == batches
    sampler.set_epoch(1)
    assert list(sampler) != batches


def test_t1_augmentation_is_reproducible_and_keeps_the_volume(tmp_path):
    volume = np.random.default_rng(0).standard_normal((1, 32, 40, 32)).astype(np.float32)
    augmentation = T1Augmentation(flip_probability=1.0, scale_range=(2.0, 2.0), offset_range=(0.0, 0.0), max_shift=0)
    np.testing.assert_allclose(augmentation(volume, np.random.default_rng(0)), 2 * volume[:, ::-1])
    random = T1Augmentation()
    first, again = (random(volume, np.random.default_rng(5)) for _ in range(2))
    np.testing.assert_array_equal(first, again)
    assert first.shape == volume.shape and first.dtype == np.float32


def test_jepa_collator_masks_avoid_padding_in_a_mixed_tr_batch(series):
    config = FunctionJEPAConfig(num_time_patches=6, hidden_size=24, num_attention_heads=2)
    collator = FunctionJEPACollator(
        FMRIFeatureExtractor(num_time_patches=6, normalization="zscore"), SpatiotemporalMaskSampler.from_config(config)
    )
    items = [
        {"fmri": series[:, :40], "repetition_time": 2.0, "index": 0, "mask_seed": 1},  # 3 of 6 patches
        {"fmri": series[:, :200], "repetition_time": 0.8, "index": 1, "mask_seed": 2},  # 5 of 6 patches
    ]
    batch = collator(items)
    valid = torch.tensor([3, 5])
    for name in ("context_indices", "target_indices"):
        time_patch = batch[name] % 6
        assert bool((time_patch < valid[:, None]).all()), name
    assert not set(batch["context_indices"][0].tolist()) & set(batch["target_indices"][0].tolist())
    again = collator(items)
    assert torch.equal(again["context_indices"], batch["context_indices"]) and batch["fmri_values"].is_contiguous()


def test_harmonizer_stage_reads_the_latent_cache_and_its_splits(cohort, tmp_path):
    stage = HarmonizerStage(
        parse_arguments(["harmonizer", "--output_dir", str(tmp_path), *stage_flags(cohort, "harmonizer")])
    )
    config, data = stage.config, stage.build_data()
    train, held_out, collator = data.train, data.held_out, data.collator
    cache = load_latent_cache(cohort / "latents")
    assert (len(train), len(held_out)) == (cache["split"].count("train"), cache["split"].count("validation")) == (13, 5)
    assert held_out.subject(0) == "validation0" and train.subject(1) == "train1"
    batch = collator([train[0], train[1]])
    assert batch["fmri_latents"].shape == (2, config.num_fmri_tokens, config.latent_size)
    assert batch["t1_latents"].shape == (2, config.num_t1_tokens, config.latent_size)
    assert batch["fmri_latents"].dtype == batch["t1_latents"].dtype == torch.float32
    # Subject train0 has no T1 (mask and latents zero), train1 has one; both have fMRI with padded tokens masked.
    assert batch["t1_token_mask"].sum(dim=1).tolist() == [0, config.num_t1_tokens]
    assert not batch["t1_latents"][0].any() and batch["t1_latents"][1].std() > 0
    assert 0 < int(batch["fmri_token_mask"][0].sum()) <= config.num_fmri_tokens
    assert batch["sample_index"].tolist() == [0, 1]


def test_harmonizer_stage_refuses_other_datasets_and_caches_of_other_encoders(cohort, tmp_path):
    import datasets

    plain = tmp_path / "plain"
    datasets.Dataset.from_dict({"subject": ["a"], "fmri_latents": [[0.0]]}).save_to_disk(str(plain))
    flags = ["--model_config", str(cohort / "harmonizer_config")]
    stage = HarmonizerStage(
        parse_arguments(["harmonizer", "--output_dir", str(tmp_path), "--latents", str(plain), *flags])
    )
    with pytest.raises(LatentCacheError, match="not a BrainHarmonix latent cache"):
        stage.build_data()
    stage = HarmonizerStage(
        parse_arguments(["harmonizer", "--output_dir", str(tmp_path), *stage_flags(cohort, "harmonizer")])
    )
    stage.config.latent_size = 32
    with pytest.raises(LatentCacheError, match=r"latent_size\) = \(1600, 80, 24\) but the Harmonizer reads"):
        stage.build_data()


def test_options_come_from_yaml_and_flags_win(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("output_dir: runs/x\nlearning_rate: 0.01\nfmri_downsample_rates: [1, 2]\n")
    args = parse_arguments(["function", "--config", str(config), "--learning_rate", "0.02"])
    assert (args.stage, args.output_dir, args.learning_rate, args.fmri_downsample_rates) == (
        "function",
        "runs/x",
        0.02,
        [1, 2],
    )
    assert (args.weight_decay, args.weight_decay_end) == (0.04, 0.4)
    config.write_text("output_dir: runs/x\nlearning_rat: 0.01\n")
    with pytest.raises(ValueError, match=r"unknown options \['learning_rat'\]"):
        parse_arguments(["function", "--config", str(config)])


def test_t1_dataset_reads_nifti_lazily(tmp_path):
    from brainharmonix_hf import T1VolumeFeatureExtractor
    from brainharmonix_hf.training.data import T1PretrainingDataset

    volume = np.random.default_rng(0).random((40, 48, 40)).astype(np.float32)
    nib.save(nib.Nifti1Image(volume, np.eye(4)), tmp_path / "t1.nii.gz")
    manifest = load_manifest([{"subject": "s", "t1": str(tmp_path / "t1.nii.gz")}])
    extractor = T1VolumeFeatureExtractor(volume_size=[32, 48, 32], check_mni_space=False)  # random voxels
    dataset = T1PretrainingDataset(manifest, extractor, augmentation=None)
    np.testing.assert_array_equal(dataset[0]["pixel_values"], extractor(str(tmp_path / "t1.nii.gz"))["pixel_values"][0])


def test_batches_do_not_depend_on_the_number_of_workers(tmp_path, series):
    from torch.utils.data import DataLoader

    np.save(tmp_path / "run.npy", series)
    rows = [{"subject": f"s{i}", "fmri": str(tmp_path / "run.npy"), "repetition_time": 0.8} for i in range(6)]
    dataset = FMRIPretrainingDataset(
        load_manifest(rows), num_time_patches=4, window_seconds=35.28, downsample_rates=[1, 2]
    )
    config = FunctionJEPAConfig(num_time_patches=4, hidden_size=24, num_attention_heads=2)
    collator = FunctionJEPACollator(
        FMRIFeatureExtractor(num_time_patches=4, normalization="zscore"), SpatiotemporalMaskSampler.from_config(config)
    )
    dataset.set_epoch(3)
    loaders = [
        DataLoader(dataset, batch_sampler=LengthGroupedBatchSampler([(0,)] * 6, 2, seed=1), collate_fn=collator,
                   num_workers=workers)
        for workers in (0, 2)
    ]  # fmt: skip
    for serial, parallel in zip(*loaders, strict=True):
        for name in serial:
            assert torch.equal(serial[name], parallel[name]), name


def test_4d_nifti_runs_share_one_read_of_the_label_image(tmp_path):
    """The atlas label image of 4D NIfTI runs is read once per dataset, not once per item: items after the first never
    open it again (here it is gone from disk), and they equal the parcellation of the run with the image."""
    rng = np.random.default_rng(1)
    labels = rng.permutation(np.arange(1, 401)).reshape(4, 10, 10).astype(np.int16)
    runs = []
    for index in range(3):
        run = rng.standard_normal((4, 10, 10, 50)).astype(np.float32) + np.arange(50, dtype=np.float32) * 0.1
        nib.save(nib.Nifti1Image(run, np.eye(4)), tmp_path / f"run{index}.nii.gz")
        runs.append(run)
    nib.save(nib.Nifti1Image(labels, np.eye(4)), tmp_path / "atlas.nii.gz")
    rows = [
        {"subject": f"s{index}", "fmri": str(tmp_path / f"run{index}.nii.gz"), "repetition_time": 2.0}
        for index in range(3)
    ]
    dataset = FMRIPretrainingDataset(
        load_manifest(rows), num_time_patches=4, window_seconds=35.28, label_image=str(tmp_path / "atlas.nii.gz")
    )
    first = dataset[0]
    (tmp_path / "atlas.nii.gz").unlink()
    for index in (1, 2, 0):
        item = dataset[index]
        # Each label marks one voxel: the parcel means are the voxel series, in label order.
        expected = runs[index].reshape(-1, 50)[np.argsort(labels.reshape(-1))]
        np.testing.assert_allclose(item["fmri"], expected, rtol=1e-6)
    np.testing.assert_array_equal(dataset[0]["fmri"], first["fmri"])


def test_the_function_stage_reads_the_label_image_once_for_every_reader(cohort, tmp_path):
    """`--fmri_label_image` is read once by the stage and serves the training and held-out data and the cohort
    connectivity, however many 4D NIfTI runs they read."""
    rng = np.random.default_rng(2)
    labels = rng.permutation(np.arange(1, 401)).reshape(4, 10, 10).astype(np.int16)
    atlas = tmp_path / "atlas.nii.gz"
    nib.save(nib.Nifti1Image(labels, np.eye(4)), atlas)
    lines = []
    for index, split in enumerate(["train", "train", "train", "validation"]):
        run = rng.standard_normal((4, 10, 10, 50)).astype(np.float32)
        nib.save(nib.Nifti1Image(run, np.eye(4)), tmp_path / f"run{index}.nii.gz")
        lines.append(f"s{index},run{index}.nii.gz,2.0,{split}")
    manifest = tmp_path / "fmri.csv"
    manifest.write_text("subject,fmri,repetition_time,split\n" + "\n".join(lines) + "\n")
    flags = ["--model_config", str(cohort / "function_config"), "--manifest", str(manifest)]
    stage = FunctionStage(
        parse_arguments(["function", "--output_dir", str(tmp_path / "out"), *flags, "--fmri_label_image", str(atlas)])
    )
    with count_opens() as one_load:
        load_image(atlas)
    with count_opens() as opens:
        data = stage.build_data()
        items = [data.train[index] for index in range(3)] + [data.held_out[0]]
        connectivity = stage.cohort_connectivity()
    assert opens[str(atlas)] == one_load[str(atlas)] > 0
    assert [item["fmri"].shape[0] for item in items] == [400] * 4 and connectivity.shape == (400, 400)
