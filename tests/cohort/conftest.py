"""A small real cohort: the bundled MNI152 T1 and LEMON run (Schaefer-400, TR 1.4 s) as a BIDS derivatives tree, and a
tiny BrainHarmonix model saved to a folder."""

import importlib.util

import pytest
import torch
from cohort_sample import NUM_TIME_PATCHES, NUM_TIMEPOINTS, SESSIONS
from small_configs import small_brainharmonix_config

from brainharmonix_hf import BrainHarmonixModel, BrainHarmonixProcessor
from brainharmonix_hf.cohort import write_sample_derivatives


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    torch.manual_seed(0)
    model = BrainHarmonixModel(small_brainharmonix_config(num_time_patches=NUM_TIME_PATCHES)).eval()
    folder = tmp_path_factory.mktemp("model")
    model.save_pretrained(folder)
    BrainHarmonixProcessor.for_config(model.config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def sample_tree(tmp_path_factory):
    """The intact tree (written once); tests that change files copy it first."""
    if importlib.util.find_spec("brainspace") is None:
        pytest.skip("brainspace is not installed (`pip install --no-deps brainspace`): it ships the real fMRI run")
    return write_sample_derivatives(tmp_path_factory.mktemp("bids"), SESSIONS, num_timepoints=NUM_TIMEPOINTS)
