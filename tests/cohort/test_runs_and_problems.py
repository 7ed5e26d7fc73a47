"""Every fMRI run of a session becomes a row (or the one selected, said in the output); the T1 choice is stated; a
broken sidecar fails its own run, naming the file and field, and the cohort goes on."""

import json
import shutil

import numpy as np
import pytest
import torch

from brainharmonix_hf import BrainHarmonixModel, BrainHarmonixProcessor
from brainharmonix_hf.cli import main
from brainharmonix_hf.cohort import find_bids_sessions, load_embeddings, load_failures, write_sample_derivatives
from brainharmonix_hf.cohort.bids_files import parse_bids_name, scan_tree
from brainharmonix_hf.processing.roi_csv import read_roi_table

RUNS = [("rest", "1"), ("rest", "2"), ("nback", None)]
RUN_KEYS = [("nback", "", "", ""), ("rest", "", "", "1"), ("rest", "", "", "2")]  # task, acq, dir, run in key order


@pytest.fixture(scope="module")
def runs_tree(tmp_path_factory):
    """Two sessions of sub-01 and a session-less sub-02, three runs each (real LEMON windows of 50 frames)."""
    pytest.importorskip("brainspace")
    root = tmp_path_factory.mktemp("runs")
    return write_sample_derivatives(root, [("01", "1"), ("01", "2"), ("02", None)], num_timepoints=50, runs=RUNS)


def embed_command(model_dir, tree, output, *extra):
    return ["embed", "--model", str(model_dir), "--bids", str(tree), "--output", str(output), "--no-progress", *extra]


def reference_embedding(model, t1, tsv) -> np.ndarray:
    table = read_roi_table(tsv, layout="time_first")
    inputs = BrainHarmonixProcessor.for_config(model.config)(
        t1=t1, fmri=table.series, roi_labels=table.labels, repetition_time=1.4, layout="rois_first",
        return_tensors="pt",
    )  # fmt: skip
    with torch.no_grad():
        return model(**inputs).pooler_output[0].numpy()


def test_every_run_of_every_session_is_embedded(tiny_model_dir, runs_tree, tmp_path, capsys):
    output = tmp_path / "all"
    main(embed_command(tiny_model_dir, runs_tree, output, "--batch-size", "4"))
    printed = capsys.readouterr().out
    assert "Inputs: 9 session-runs of 3 sessions" in printed
    assert "Runs: every fMRI run of each session" in printed and "T1: one T1 per session" in printed
    assert "9 embedded, 0 already done, 0 failed" in printed
    table = load_embeddings(output)
    keys = list(
        zip(*(table[name] for name in ("subject", "session", "task", "acquisition", "direction", "run")), strict=True)
    )
    expected = [(subject, session, *run) for subject, session in [("01", "1"), ("01", "2"), ("02", "")]
                for run in RUN_KEYS]  # fmt: skip
    assert keys == expected
    model = BrainHarmonixModel.from_pretrained(tiny_model_dir).eval()
    for row in table:
        assert f"task-{row['task']}" in row["fmri"] and (not row["run"] or f"run-{row['run']}" in row["fmri"])
        np.testing.assert_allclose(row["embedding"], reference_embedding(model, row["t1"], row["fmri"]), atol=1e-5)
    embeddings = np.array(table["embedding"][:3])
    assert np.abs(embeddings[1] - embeddings[2]).max() > 1e-4  # two runs of one session: two embeddings
    (record,) = [json.loads(line) for line in (output / "runs.jsonl").read_text().splitlines()]
    assert record["selection"]["runs"].startswith("every fMRI run") and record["embedded"] == 9


def test_first_run_or_a_task_and_run_are_selected_and_said(tiny_model_dir, runs_tree, tmp_path, capsys):
    main(embed_command(tiny_model_dir, runs_tree, tmp_path / "first", "--runs", "first"))
    assert "Runs: the first fMRI run of each session" in capsys.readouterr().out
    first = load_embeddings(tmp_path / "first")
    assert list(first["task"]) == ["nback"] * 3  # "nback" sorts before "rest"
    assert [len(others) for others in first["fmri_alternatives"]] == [2, 2, 2]
    assert all("task-rest_run-" in path for path in first["fmri_alternatives"][0])
    main(embed_command(tiny_model_dir, runs_tree, tmp_path / "run2", "--task", "rest", "--run", "2"))
    assert "(task rest, run 2 only)" in capsys.readouterr().out
    run2 = load_embeddings(tmp_path / "run2")
    assert list(zip(run2["task"], run2["run"], strict=True)) == [("rest", "2")] * 3
    record = json.loads((tmp_path / "run2" / "runs.jsonl").read_text())
    assert "task rest, run 2 only" in record["selection"]["runs"]


def test_t1_choice_per_session_is_stated(runs_tree, tmp_path):
    tree = shutil.copytree(runs_tree, tmp_path / "tree")
    anat = tree / "sub-01" / "ses-1" / "anat"
    (t1,) = anat.glob("*_T1w.nii.gz")
    shutil.copy(t1, anat / t1.name.replace("MNI152NLin2009cAsym", "MNI152NLin6Asym"))
    # sub-01's second session has no T1 of its own: it takes the subject's session-less one.
    moved = tree / "sub-01" / "anat" / "sub-01_space-MNI152NLin2009cAsym_desc-preproc_T1w.nii.gz"
    moved.parent.mkdir()
    next((tree / "sub-01" / "ses-2" / "anat").glob("*_T1w.nii.gz")).rename(moved)
    rows = {row.key[:3]: row for row in find_bids_sessions(tree, task="nback")}
    assert rows[("01", "1", "nback")].t1 == str(t1)
    assert rows[("01", "1", "nback")].t1_alternatives == (str(anat / t1.name.replace("2009cAsym", "6Asym")),)
    assert rows[("01", "2", "nback")].t1 == str(moved) and ("01", "", "") not in rows


def test_broken_sidecars_fail_their_run_alone(tiny_model_dir, runs_tree, tmp_path, capsys):
    tree = shutil.copytree(runs_tree, tmp_path / "tree")
    func = tree / "sub-01" / "ses-2" / "func"
    seconds = func / "sub-01_ses-2_task-rest_run-1_space-MNI152NLin2009cAsym_desc-preproc_bold.json"
    seconds.write_text(json.dumps({"RepetitionTime": "1.4s"}))
    broken = tree / "sub-02" / "func" / "sub-02_task-nback_space-MNI152NLin2009cAsym_desc-preproc_bold.json"
    broken.write_text('{"RepetitionTime": 1.4,')
    # fMRIPrep's confounds table (no atlas) is never taken for an fMRI input.
    (func / "sub-01_ses-2_task-rest_run-1_desc-confounds_timeseries.tsv").write_text("a\tb\n1\t2\n")
    output = tmp_path / "out"
    main(embed_command(tiny_model_dir, tree, output))
    assert "7 embedded, 0 already done, 2 failed" in capsys.readouterr().out
    failures = {(f["subject"], f["session"], f["task"], f["run"]): f for f in load_failures(output)}
    assert set(failures) == {("01", "2", "rest", "1"), ("02", "", "nback", "")}
    failure = failures[("01", "2", "rest", "1")]
    assert (failure["file"], failure["field"]) == (str(seconds), "RepetitionTime")
    assert failure["message"] == f"RepetitionTime in {seconds} must be a number of seconds, got '1.4s'."
    failure = failures[("02", "", "nback", "")]
    assert (failure["file"], failure["field"]) == (str(broken), "json")
    assert failure["message"].startswith(f"Sidecar {broken} is not a readable JSON object")
    # Fixed, the two runs are embedded on the next run; nothing else is redone.
    seconds.write_text(json.dumps({"RepetitionTime": 1.4}))
    broken.write_text(json.dumps({"RepetitionTime": 1.4}))
    main(embed_command(tiny_model_dir, tree, output))
    assert "2 embedded, 7 already done, 0 failed" in capsys.readouterr().out
    assert load_failures(output) == [] and len(load_embeddings(output)) == 9


def test_file_names_parse_like_pybids(runs_tree):
    """The walk reads every file of the tree and splits its name into the entities pybids finds."""
    from bids.layout import parse_file_entities

    long_names = {"sub": "subject", "ses": "session", "task": "task", "run": "run", "space": "space",
                  "atlas": "atlas", "desc": "desc"}  # fmt: skip
    tree = scan_tree(runs_tree)
    names = [file.path for file in tree.files] + [sidecar.path for found in tree.sidecars.values() for sidecar in found]
    on_disk = [str(path) for path in runs_tree.rglob("sub-*") if path.is_file()]
    assert sorted(names) == sorted(on_disk)
    for path in names:
        entities, suffix, extension = parse_bids_name(path.rsplit("/", 1)[1])
        expected = parse_file_entities(path)
        assert {long_names[key]: value for key, value in entities.items()} == {
            key: str(value) for key, value in expected.items() if key not in ("suffix", "extension", "datatype")
        }
        assert (suffix, extension) == (expected["suffix"], expected["extension"])
