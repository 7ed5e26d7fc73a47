"""4D NIfTI runs in a manifest, parcellated with `--fmri-label-image`, through `brainharmonix cache-latents` and
`brainharmonix finetune`: the same latents and the same training as the ROI tables of the same runs."""

import json

import pytest
import torch

from brainharmonix_hf.cli import main
from brainharmonix_hf.cohort import write_sample_derivatives
from brainharmonix_hf.cohort.sample_tree import atlas_image
from brainharmonix_hf.processing.atlases import SCHAEFER400_7NETWORKS
from brainharmonix_hf.training.latent_cache import load_latent_cache, with_model_inputs

# The tiny model reads 2 time patches of 25 frames at TR 1.4 s.
NUM_FRAMES = 50
SUBJECTS = ["01", "02", "03", "04", "05", "06"]


@pytest.fixture(scope="module")
def manifests(lemon_series, tmp_path_factory):
    """Two manifests of the same six runs: the preprocessed BOLD runs (4D NIfTI, one voxel per ROI) and their ROI
    tables; and the label image of the BOLD grid."""
    root = write_sample_derivatives(
        tmp_path_factory.mktemp("bids"), [(subject, None) for subject in SUBJECTS], num_timepoints=NUM_FRAMES
    )
    tables = {subject: next(root.glob(f"sub-{subject}/func/*_timeseries.tsv")) for subject in SUBJECTS}
    bold = {subject: next(root.glob(f"sub-{subject}/func/*_desc-preproc_bold.nii.gz")) for subject in SUBJECTS}
    paths = {}
    for kind, files, atlas in (("bold", bold, SCHAEFER400_7NETWORKS), ("table", tables, None)):
        rows = [
            {"subject": subject, "fmri": str(files[subject]), "repetition_time": 1.4, "atlas": atlas,
             "label": index % 2, "split": "train" if index < 4 else "validation"}
            for index, subject in enumerate(SUBJECTS)
        ]  # fmt: skip
        paths[kind] = root / f"{kind}.json"
        paths[kind].write_text(json.dumps(rows))
    return paths, atlas_image(root)


def cached_inputs(folder) -> dict:
    cache = load_latent_cache(folder)
    return with_model_inputs(cache)[:]


def test_cache_latents_parcellates_nifti_runs_with_the_label_image(tiny_model_dir, manifests, tmp_path):
    paths, label_image = manifests
    common = ["cache-latents", "--model", tiny_model_dir, "--dtype", "fp16", "--batch-size", "4"]
    main([*common, "--manifest", str(paths["bold"]), "--output", str(tmp_path / "bold"),
          "--fmri-label-image", str(label_image)])  # fmt: skip
    main([*common, "--manifest", str(paths["table"]), "--output", str(tmp_path / "table")])
    bold, table = cached_inputs(tmp_path / "bold"), cached_inputs(tmp_path / "table")
    assert bold["fmri_latents"].shape[0] == len(SUBJECTS)
    assert bold["fmri_token_mask"].sum() == table["fmri_token_mask"].sum() > 0
    assert bold["fmri_latents"].float().abs().mean() > 0.1
    torch.testing.assert_close(bold["fmri_latents"].float(), table["fmri_latents"].float(), atol=2e-3, rtol=1e-2)


def test_cache_latents_refuses_a_missing_label_image_before_writing(tiny_model_dir, manifests, tmp_path):
    paths, _ = manifests
    with pytest.raises(FileNotFoundError, match=r"missing_dseg\.nii\.gz"):
        main(["cache-latents", "--model", tiny_model_dir, "--manifest", str(paths["bold"]), "--output",
              str(tmp_path / "c"), "--fmri-label-image", str(tmp_path / "missing_dseg.nii.gz")])  # fmt: skip
    assert not any(tmp_path.iterdir())


def test_finetune_a_manifest_of_nifti_runs_with_the_label_image(tiny_model_dir, manifests, tmp_path):
    paths, label_image = manifests
    fast = ["--epochs", "1", "--warmup-epochs", "0", "--batch-size", "2", "--learning-rate", "1e-2", "--device", "cpu"]
    reports = {}
    for kind, extra in (("bold", ["--fmri-label-image", str(label_image)]), ("table", [])):
        output = tmp_path / kind
        main(["finetune", "--model", tiny_model_dir, "--manifest", str(paths[kind]), "--output", str(output),
              *extra, *fast])  # fmt: skip
        reports[kind] = json.loads((output / "metrics.json").read_text())
    sizes = {"train": (4, 4), "validation": (2, 2), "test": (0, 0)}
    expected = {part: {"rows": rows, "subjects": subjects} for part, (rows, subjects) in sizes.items()}
    assert reports["bold"]["sizes"] == reports["table"]["sizes"] == expected
    bold_loss, table_loss = (reports[kind]["validation"]["validation_loss"] for kind in ("bold", "table"))
    assert bold_loss == pytest.approx(table_loss, rel=1e-5) and bold_loss > 0
