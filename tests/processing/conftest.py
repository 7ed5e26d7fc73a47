"""Real fMRI data shipped by registry packages, loaded once per session.

brainspace ships one LEMON resting-state run on fsaverage5 vertices and the Schaefer-400 (7-network order) atlas on
the fs_LR conte69 mesh. brainspace hard-requires vtk, so it is installed with `pip install --no-deps brainspace` and
only its data files are read (never imported); the tests that need it skip when it is absent.
"""

import importlib.util
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from brainharmonix_hf.processing.nifti_io import repetition_time
from brainharmonix_hf.processing.parcellation import parcellate_surface, transfer_labels

LEMON_RUN = "sub-010188_ses-02_task-rest_acq-AP_run-01.fsa5.{hemi}.mgz"
# The run's true TR; the files' headers say 1.0 s.
LEMON_REPETITION_TIME = 1.4


@pytest.fixture(scope="session")
def brainspace_data() -> Path:
    spec = importlib.util.find_spec("brainspace")
    if spec is None:
        pytest.skip("brainspace is not installed (`pip install --no-deps brainspace`): it ships the real fMRI run")
    return Path(spec.origin).parent / "datasets"


@pytest.fixture(scope="session")
def schaefer400_fsaverage5(brainspace_data) -> np.ndarray:
    """Schaefer-400 labels (1-200 left, 201-400 right) on the 2 x 10242 fsaverage5 vertices, left then right.

    Transferred by nearest neighbour from brainspace's fs_LR conte69 mesh to the fsaverage5 midthickness
    ((pial + white) / 2, bundled with nilearn).
    """
    from nilearn.datasets import load_fsaverage

    fsaverage5 = load_fsaverage("fsaverage5")
    conte69_labels = np.loadtxt(brainspace_data / "parcellations" / "schaefer_400_conte69.csv").astype(np.int64)
    hemispheres, offset = [], 0
    for hemi, part in (("lh", "left"), ("rh", "right")):
        source = nib.load(brainspace_data / "surfaces" / f"conte69_32k_{hemi}.gii").darrays[0].data
        source_labels = conte69_labels[offset : offset + len(source)]
        offset += len(source)
        midthickness = (
            fsaverage5["pial"].parts[part].coordinates + fsaverage5["white_matter"].parts[part].coordinates
        ) / 2
        hemispheres.append(transfer_labels(source, source_labels, midthickness))
    return np.concatenate(hemispheres)


@pytest.fixture(scope="session")
def lemon_run(brainspace_data) -> tuple[np.ndarray, float]:
    """The LEMON run as `(20484 vertices, 652 frames)` float32, left then right hemisphere, and its header TR."""
    images = [nib.load(brainspace_data / "preprocessing" / LEMON_RUN.format(hemi=hemi)) for hemi in ("lh", "rh")]
    vertex_data = np.concatenate(
        [np.asarray(image.dataobj, dtype=np.float32).reshape(image.shape[0], -1) for image in images]
    )
    return vertex_data, repetition_time(images[0])


@pytest.fixture(scope="session")
def lemon_schaefer400(lemon_run, schaefer400_fsaverage5) -> np.ndarray:
    """The LEMON run parcellated to Schaefer-400: `(400, 652)` float32, ROI-first."""
    return parcellate_surface(lemon_run[0], schaefer400_fsaverage5, labels=np.arange(1, 401))[0]
