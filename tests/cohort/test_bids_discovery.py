"""Finding sessions in a real BIDS derivatives tree with pybids; reading XCP-D-style time series tables."""

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
from cohort_sample import NUM_TIMEPOINTS, SESSIONS

from brainharmonix_hf.cohort import find_bids_sessions, sessions_from_manifest
from brainharmonix_hf.processing.atlases import SCHAEFER400_7NETWORKS, schaefer400_roi_names
from brainharmonix_hf.processing.roi_csv import read_roi_table
from brainharmonix_hf.sample_data import load_fmri_sample


def test_every_session_with_t1_table_and_sidecar_tr(sample_tree):
    sessions = find_bids_sessions(sample_tree)
    assert [s.session_key for s in sessions] == [(subject, session or "") for subject, session in SESSIONS]
    assert [s.key[2:] for s in sessions] == [("rest", "", "", "")] * len(SESSIONS)  # task, acq, dir, run
    first = sessions[0]
    assert first.t1.endswith("sub-01/ses-1/anat/sub-01_ses-1_space-MNI152NLin2009cAsym_desc-preproc_T1w.nii.gz")
    assert first.fmri.endswith("sub-01_ses-1_task-rest_space-MNI152NLin2009cAsym_atlas-Schaefer400_timeseries.tsv")
    assert {s.repetition_time for s in sessions} == {1.4}  # from the BOLD runs' sidecars
    assert first.repetition_time_source.endswith(
        "sub-01_ses-1_task-rest_space-MNI152NLin2009cAsym_desc-preproc_bold.json"
    )
    # `Schaefer400` does not say which order (7 or 17 networks): the tables' column labels do.
    assert {s.atlas for s in sessions} == {None}
    assert sessions[3].session is None


def test_filters(sample_tree):
    keys = [s.session_key for s in find_bids_sessions(sample_tree, participant_label=["sub-01", "03"])]
    assert keys == [("01", "1"), ("01", "2"), ("03", "")]
    assert [s.session_key for s in find_bids_sessions(sample_tree, session=["ses-2"])] == [("01", "2")]
    # No run of task "nback": only the T1s remain.
    t1_only = find_bids_sessions(sample_tree, participant_label=["02"], task="nback")
    assert [(s.key, s.fmri is None, s.t1 is not None) for s in t1_only] == [(("02", "1", "", "", "", ""), True, True)]


def test_table_sidecar_tr_wins_and_atlas_choice(sample_tree, tmp_path):
    tree = shutil.copytree(sample_tree, tmp_path / "tree")
    func = tree / "sub-02" / "ses-1" / "func"
    table = func / "sub-02_ses-1_task-rest_space-MNI152NLin2009cAsym_atlas-Schaefer400_timeseries.tsv"
    table.with_suffix(".json").write_text(json.dumps({"RepetitionTime": 2.0}))
    shutil.copy(table, func / table.name.replace("Schaefer400", "Gordon333"))
    # Newer XCP-D names the atlas with `seg-`.
    shutil.copy(table, func / table.name.replace("atlas-Schaefer400", "seg-4S456Parcels_stat-mean"))
    with pytest.raises(ValueError, match=r"several atlases \['4S456Parcels', 'Gordon333', 'Schaefer400'\].*--atlas"):
        find_bids_sessions(tree)
    sessions = {s.session_key: s for s in find_bids_sessions(tree, atlas="Schaefer400")}
    assert sessions[("02", "1")].repetition_time == 2.0 and sessions[("01", "1")].repetition_time == 1.4
    assert sessions[("02", "1")].repetition_time_source == str(table.with_suffix(".json"))
    gordon = find_bids_sessions(tree, atlas="Gordon333", participant_label=["02"])
    assert gordon[0].fmri.endswith("atlas-Gordon333_timeseries.tsv") and gordon[0].atlas is None
    (seg,) = [s for s in find_bids_sessions(tree, atlas="4S456Parcels") if s.fmri is not None]
    assert seg.fmri.endswith("seg-4S456Parcels_stat-mean_timeseries.tsv") and seg.session_key == ("02", "1")


def test_bold_runs_when_asked(sample_tree):
    sessions = find_bids_sessions(sample_tree, participant_label=["01"], session=["1"], task="rest", use_bold=True)
    assert sessions[0].fmri.endswith("_timeseries.tsv")  # a table, when there is one, is preferred
    # An atlas with no tables: every session falls back to its BOLD run, TR from the run's sidecar.
    bold_only = find_bids_sessions(sample_tree, atlas="Gordon333", use_bold=True)
    assert len(bold_only) == len(SESSIONS)
    assert all(s.fmri.endswith("_desc-preproc_bold.nii.gz") and s.repetition_time == 1.4 for s in bold_only)


def test_not_a_dataset(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"dataset_description\.json"):
        find_bids_sessions(tmp_path)


def test_table_reads_back_the_run_with_its_parcel_names(sample_tree):
    table = read_roi_table(
        sample_tree
        / "sub-01/ses-1/func/sub-01_ses-1_task-rest_space-MNI152NLin2009cAsym_atlas-Schaefer400_timeseries.tsv",
        layout="time_first",
    )
    assert table.series.shape == (400, NUM_TIMEPOINTS)
    assert table.labels == schaefer400_roi_names(SCHAEFER400_7NETWORKS)  # XCP-D heads columns with the CBIG names
    np.testing.assert_allclose(table.series, load_fmri_sample().series[:, :NUM_TIMEPOINTS], rtol=1e-6, atol=1e-6)


def test_manifest_sessions(sample_tree, tmp_path):
    found = find_bids_sessions(sample_tree, participant_label=["01"])
    manifest = tmp_path / "cohort.csv"
    manifest.write_text(
        "subject,session,task,t1,fmri,repetition_time,atlas\n"
        + "".join(f"{s.subject},{s.session},{s.task},{s.t1},{s.fmri},{s.repetition_time},\n" for s in found)
    )
    assert sessions_from_manifest(manifest) == [replace(s, repetition_time_source="manifest") for s in found]


def test_bold_runs_outside_mni_space_or_not_preprocessed_are_never_parcellated(sample_tree, tmp_path):
    tree = shutil.copytree(sample_tree, tmp_path / "tree")
    func = tree / "sub-01" / "ses-1" / "func"
    for path in sorted(func.glob("*_desc-preproc_bold.*")):
        # A native-space run and a denoised MNI run instead of the preprocessed MNI one.
        path.rename(func / path.name.replace("space-MNI152NLin2009cAsym", "space-T1w"))
        shutil.copy(
            func / path.name.replace("space-MNI152NLin2009cAsym", "space-T1w"),
            func / path.name.replace("desc-preproc", "desc-denoised"),
        )
    sessions = {s.session_key: s for s in find_bids_sessions(tree, atlas="Gordon333", use_bold=True)}
    assert sessions[("01", "1")].fmri is None  # refused: only the T1 of that session is found
    assert sessions[("02", "1")].fmri.endswith("_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz")
