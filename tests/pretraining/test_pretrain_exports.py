"""The function stage exports the encoder it is told to (`--export_encoder`), recorded in its config and card, and
`--samples_per_epoch` draws several random crops of each series per epoch."""

import json

import numpy as np
import pytest
import torch
from pretraining_runs import run_stage, stage_flags

from brainharmonix_hf import FunctionJEPAForPreTraining, FunctionJEPAModel
from brainharmonix_hf.training.pretrain import parse_arguments
from brainharmonix_hf.training.stages import get_stage


def assert_same_weights(first, second):
    for (name, one), (_, other) in zip(first.state_dict().items(), second.state_dict().items(), strict=True):
        assert torch.equal(one, other), name


@pytest.mark.parametrize("choice", ["target", "context", "both"])
def test_export_encoder_choice(cohort, tmp_path, choice):
    run_stage(cohort, tmp_path, "function", "--max_steps", "3", "--export_encoder", choice)
    pretraining = FunctionJEPAForPreTraining.from_pretrained(tmp_path / "model")
    # After 3 steps the two encoders differ, so each export is identifiable.
    assert not torch.equal(
        pretraining.encoder.layers[0].mlp.fc1.weight, pretraining.target_encoder.layers[0].mlp.fc1.weight
    )
    expected = {"target": ["target"], "context": ["context"], "both": ["target", "context"]}[choice]
    for name, role in zip(["encoder", "context_encoder"], expected, strict=False):
        exported = FunctionJEPAModel.from_pretrained(tmp_path / "model" / name)
        assert exported.config.exported_encoder == role
        assert_same_weights(exported, pretraining.target_encoder if role == "target" else pretraining.encoder)
        card = (tmp_path / "model" / name / "README.md").read_text()
        assert f"These weights are the JEPA {role} encoder" in card
        assert (tmp_path / "model" / name / "preprocessor_config.json").is_file()
    assert (tmp_path / "model" / "context_encoder").exists() == (choice == "both")
    # The pretraining model itself carries no export record; loading it as an encoder still gives the target.
    assert json.loads((tmp_path / "model" / "config.json").read_text()).get("exported_encoder") is None


def test_export_encoder_must_be_known(cohort, tmp_path):
    with pytest.raises(SystemExit):
        parse_arguments(["function", "--output_dir", str(tmp_path), "--export_encoder", "predictor"])


def test_samples_per_epoch_gives_several_crops_of_each_series(cohort, tmp_path):
    args = parse_arguments(
        ["function", "--output_dir", str(tmp_path), *stage_flags(cohort, "function"), "--samples_per_epoch", "20"]
    )
    stage = get_stage("function")(args)
    data = stage.build_data()
    rows = len(data.train.rows)
    assert len(data.train) == 20 and len(data.train.batch_keys()) == 20 and len(data.held_out) == 4
    first, again = data.train[0], data.train[rows]  # the same row, another item: another random crop
    assert data.train.subject(0) == data.train.subject(rows)
    assert first["fmri"].shape == again["fmri"].shape and not np.array_equal(first["fmri"], again["fmri"])
    with pytest.raises(ValueError, match="samples_per_epoch must be a positive"):
        get_stage("function")(
            parse_arguments(["function", "--output_dir", str(tmp_path), *stage_flags(cohort, "function"),
                             "--samples_per_epoch", "0"])
        ).build_data()  # fmt: skip


def test_generated_card_names_the_exported_encoder(cohort, tmp_path):
    from brainharmonix_hf import build_model_card

    run_stage(cohort, tmp_path, "function", "--max_steps", "1", "--export_encoder", "context")
    card = str(build_model_card(tmp_path / "model" / "encoder"))
    assert "These weights are the JEPA context encoder" in card
    assert "These weights are the JEPA" not in str(build_model_card(tmp_path / "model"))


@pytest.mark.parametrize("source", ["tables", "centres with a connectivity file"])
def test_roi_tables_with_their_own_gradients_do_not_read_the_cohort(cohort, tmp_path, source):
    """Precomputed tables, or centres with a connectivity file, build the model without the training series (the
    manifest named here is not written yet)."""
    from brainharmonix_hf import FunctionJEPAConfig, RoiTables
    from brainharmonix_hf.roi_positions.tables import save_roi_tables

    config = FunctionJEPAConfig.from_pretrained(cohort / "function_config")
    rois, modes, components = config.num_rois, config.num_geometric_modes, config.num_gradient_components
    if source == "tables":
        harmonics, gradients = torch.randn(rois, modes), torch.randn(rois, components)
        save_roi_tables(RoiTables(harmonics, gradients, atlas="mine", roi_order="1..R"), tmp_path / "tables.st")
        flags = ["--roi_table_source", "tables", "--roi_table_path", str(tmp_path / "tables.st")]
    else:
        rng = np.random.default_rng(0)
        np.savetxt(tmp_path / "centres.csv", rng.normal(scale=40, size=(rois, 3)), delimiter=",", header="x,y,z",
                   comments="")  # fmt: skip
        np.save(tmp_path / "connectivity.npy", np.corrcoef(rng.normal(size=(rois, 200))))
        flags = ["--roi_table_source", "centres", "--roi_table_path", str(tmp_path / "centres.csv"),
                 "--roi_connectivity", str(tmp_path / "connectivity.npy")]  # fmt: skip
    args = parse_arguments(
        ["function", "--output_dir", str(tmp_path / "run"), "--model_config", str(cohort / "function_config"),
         "--manifest", str(tmp_path / "cohort_not_written_yet.csv"), "--atlas", "mine", *flags]
    )  # fmt: skip
    model = get_stage("function")(args).build_model()
    tables = model.encoder.roi_positions
    assert tables.geometric_harmonics.shape == (rois, modes) and tables.geometric_harmonics.abs().sum() > 0
    if source == "tables":
        assert torch.equal(tables.geometric_harmonics, harmonics) and torch.equal(
            tables.functional_gradients, gradients
        )
