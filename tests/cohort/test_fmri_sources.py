"""One fMRI file reader for every caller: a manifest's `atlas` column, `.npy` rows and NIfTI runs with a label image
give the same model inputs in `embed`, pretraining data, latent caching and the fine-tuning collator."""

import shutil

import numpy as np
import pytest
import torch

from brainharmonix_hf import BrainHarmonixModel, BrainHarmonixProcessor
from brainharmonix_hf.cohort import embed_cohort, find_bids_sessions, load_embeddings, load_failures
from brainharmonix_hf.cohort.sample_tree import atlas_image
from brainharmonix_hf.cohort.session_inputs import sessions_from_manifest
from brainharmonix_hf.processing.atlases import (
    SCHAEFER400_7NETWORKS,
    SCHAEFER400_17NETWORKS,
    schaefer400_permutation,
)
from brainharmonix_hf.processing.roi_csv import read_roi_table
from brainharmonix_hf.training.data import load_fmri_series
from brainharmonix_hf.training.finetune import ManifestRowCollator
from brainharmonix_hf.training.latent_cache import processor_inputs
from brainharmonix_hf.training.manifest import load_manifest

SEVEN_TO_SEVENTEEN = schaefer400_permutation(SCHAEFER400_7NETWORKS, SCHAEFER400_17NETWORKS)


def rois_first_csv(path, series, labels=None):
    """ROI rows, one column per frame; a first column of labels when given."""
    lines = [("" if labels is None else f"{label},") + ",".join(f"{v:.9g}" for v in row) for label, row in
             zip(labels if labels is not None else [None] * len(series), series, strict=True)]  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def session(sample_tree):
    """Sub-02's session: its XCP-D table (7-network parcel names), T1, TR and BOLD run."""
    (found,) = find_bids_sessions(sample_tree, participant_label=["02"])
    return found


@pytest.fixture(scope="module")
def fmri_files(session, tmp_path_factory):
    """The session's series written as every file kind a manifest may list, with the atlas each row declares."""
    folder = tmp_path_factory.mktemp("fmri_files")
    seven = read_roi_table(session.fmri, layout="time_first").series
    seventeen = seven[SEVEN_TO_SEVENTEEN]
    np.save(folder / "seven.npy", seven.astype(np.float32))
    np.save(folder / "seventeen.npy", seventeen.astype(np.float32))
    return {
        "unlabelled17": (rois_first_csv(folder / "unlabelled17.csv", seventeen), SCHAEFER400_17NETWORKS),
        "numbered17": (rois_first_csv(folder / "numbered17.csv", seventeen, range(1, 401)), SCHAEFER400_17NETWORKS),
        "numbered7": (rois_first_csv(folder / "numbered7.csv", seven, range(1, 401)), SCHAEFER400_7NETWORKS),
        "npy7": (folder / "seven.npy", None),
        "npy17": (folder / "seventeen.npy", SCHAEFER400_17NETWORKS),
    }


def manifest_rows(session, fmri_files) -> list[dict]:
    return [
        {"subject": "02", "session": name, "t1": session.t1, "fmri": str(path), "repetition_time": 1.4, "atlas": atlas}
        for name, (path, atlas) in fmri_files.items()
    ]


def test_manifest_atlas_column_and_npy_rows_embed_like_the_table(tiny_model_dir, session, fmri_files, tmp_path):
    """A row declaring `schaefer400_17networks` for an unlabelled or numbered CSV, and `.npy` rows, embed exactly like
    the session's labelled table (read in the model's 7-network order)."""
    model = BrainHarmonixModel.from_pretrained(tiny_model_dir).eval()
    embed_cohort(model, [session], tmp_path / "table", progress=False)
    (reference,) = load_embeddings(tmp_path / "table")["embedding"]

    sessions = sessions_from_manifest(manifest_rows(session, fmri_files))
    run = embed_cohort(model, sessions, tmp_path / "manifest", batch_size=2, progress=False)
    assert load_failures(tmp_path / "manifest") == []
    assert (run.embedded, run.failed) == (len(fmri_files), 0)
    table = load_embeddings(tmp_path / "manifest")
    assert sorted(table["session"]) == sorted(fmri_files)
    for row in table:
        np.testing.assert_allclose(row["embedding"], reference, atol=1e-5, err_msg=row["session"])
        assert row["atlas"] == fmri_files[row["session"]][1]


def test_every_reader_gives_the_same_series(tiny_model_dir, session, fmri_files, sample_tree):
    """Pretraining data (`load_fmri_series`), latent caching (`processor_inputs`) and the fine-tuning collator read
    each file kind, a NIfTI run with its label image included, into the same model-order series."""
    processor = BrainHarmonixProcessor.for_config(BrainHarmonixModel.config_class.from_pretrained(tiny_model_dir))
    extractor = processor.fmri_feature_extractor
    reference = read_roi_table(session.fmri, layout="time_first").series
    bold = next(
        s.fmri for s in find_bids_sessions(sample_tree, atlas="Gordon333", use_bold=True, participant_label=["02"])
    )
    label_image = atlas_image(sample_tree)
    files = {**fmri_files, "table": (session.fmri, None), "bold": (bold, SCHAEFER400_7NETWORKS)}
    for name, (path, atlas) in files.items():
        series, _ = load_fmri_series(str(path), extractor, atlas, label_image)
        np.testing.assert_allclose(series, reference, atol=1e-5, err_msg=name)

    rows = load_manifest(
        [{"subject": name, "fmri": str(path), "repetition_time": 1.4, "atlas": atlas} for name, (path, atlas) in
         files.items()]
    )  # fmt: skip
    expected = processor(fmri=reference, repetition_time=1.4, layout="rois_first", return_tensors="pt")["fmri_values"]
    cached = processor_inputs(processor, rows[:], label_image=label_image)["fmri_values"]
    collated = ManifestRowCollator(processor, label_image=label_image)(list(rows))["fmri_values"]
    for values in (cached, collated):
        assert values.shape == (len(files), *expected.shape[1:])
        torch.testing.assert_close(values, expected.expand_as(values), atol=1e-5, rtol=0)


def test_tables_declaring_another_atlas_are_refused_per_row(tiny_model_dir, session, fmri_files, tmp_path):
    """A row whose declared atlas the model cannot take goes to failures.jsonl naming the file; the others embed."""
    model = BrainHarmonixModel.from_pretrained(tiny_model_dir).eval()
    path, _ = fmri_files["npy7"]
    other = {"subject": "03", "t1": None, "fmri": str(path), "repetition_time": 1.4, "atlas": "gordon333"}
    rows = [*manifest_rows(session, fmri_files)[:1], other]
    run = embed_cohort(model, sessions_from_manifest(rows), tmp_path / "out", progress=False)
    assert (run.embedded, run.failed) == (1, 1)
    (failure,) = load_failures(tmp_path / "out")
    assert failure["subject"] == "03" and failure["file"] == str(path) and failure["field"] == "fmri"
    assert "ROIs of 'gordon333', but the model expects atlas 'schaefer400_7networks'" in failure["message"]


def test_bids_atlas_entity_declares_the_order_of_an_unlabelled_table(tiny_model_dir, session, sample_tree, tmp_path):
    """A headerless table (frames × 400, the 17-network order) named `atlas-Schaefer417` (XCP-D's name) is discovered
    as `schaefer400_17networks` and embeds exactly like the session's labelled 7-network table."""
    tree = shutil.copytree(sample_tree, tmp_path / "bids")
    func = tree / "sub-02" / "ses-1" / "func"
    (labelled,) = func.glob("*_atlas-Schaefer400_timeseries.tsv")
    seventeen = read_roi_table(labelled, layout="time_first").series[SEVEN_TO_SEVENTEEN]
    unlabelled = func / labelled.name.replace("atlas-Schaefer400", "atlas-Schaefer417")
    unlabelled.write_text("".join("\t".join(f"{value:.9g}" for value in frame) + "\n" for frame in seventeen.T))
    labelled.unlink()

    (found,) = find_bids_sessions(tree, atlas="Schaefer417", participant_label=["02"])
    assert found.fmri == str(unlabelled) and found.atlas == SCHAEFER400_17NETWORKS
    model = BrainHarmonixModel.from_pretrained(tiny_model_dir).eval()
    embed_cohort(model, [session], tmp_path / "labelled", progress=False)
    run = embed_cohort(model, [found], tmp_path / "unlabelled", progress=False)
    assert (run.embedded, run.failed) == (1, 0)
    (reference,) = load_embeddings(tmp_path / "labelled")["embedding"]
    (row,) = load_embeddings(tmp_path / "unlabelled")
    np.testing.assert_allclose(row["embedding"], reference, atol=1e-5)
    assert row["atlas"] == SCHAEFER400_17NETWORKS
