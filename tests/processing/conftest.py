"""Real fMRI data shipped by registry packages (see `brainharmonix_hf.sample_data`), loaded once per session.

brainspace is installed with `pip install --no-deps brainspace` and only its data files are read (never imported);
the tests that need it skip when it is absent.
"""

import importlib.util

import numpy as np
import pytest

from brainharmonix_hf import sample_data
from brainharmonix_hf.processing.parcellation import parcellate_surface


@pytest.fixture(scope="session")
def brainspace_data():
    if importlib.util.find_spec("brainspace") is None:
        pytest.skip("brainspace is not installed (`pip install --no-deps brainspace`): it ships the real fMRI run")
    return sample_data.brainspace_data_folder()


@pytest.fixture(scope="session")
def schaefer400_fsaverage5(brainspace_data) -> np.ndarray:
    """Schaefer-400 labels (1-200 left, 201-400 right) on the 2 x 10242 fsaverage5 vertices, left then right."""
    return sample_data.schaefer400_fsaverage5_labels()


@pytest.fixture(scope="session")
def lemon_run(brainspace_data) -> tuple[np.ndarray, float]:
    """The LEMON run as `(20484 vertices, 652 frames)` float32, left then right hemisphere, and its header TR."""
    return sample_data.load_lemon_vertex_run()


@pytest.fixture(scope="session")
def lemon_schaefer400(lemon_run, schaefer400_fsaverage5) -> np.ndarray:
    """The LEMON run parcellated to Schaefer-400: `(400, 652)` float32, ROI-first."""
    return parcellate_surface(lemon_run[0], schaefer400_fsaverage5, labels=np.arange(1, 401))[0]
