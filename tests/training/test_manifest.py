"""Cohort manifests: file formats, path resolution, types, and the errors a broken manifest gets."""

import json

import datasets
import numpy as np
import pytest

from brainharmonix_hf.training.manifest import MANIFEST_COLUMNS, ManifestError, load_manifest


@pytest.fixture
def cohort(tmp_path):
    """Two subjects' files in a `data` folder beside the manifests."""
    data = tmp_path / "data"
    data.mkdir()
    for name in ("sub-01_T1w.nii.gz", "sub-01_bold.csv", "sub-02_bold.csv"):
        (data / name).write_bytes(b"x")
    rows = [
        {
            "subject": "01",
            "t1": "data/sub-01_T1w.nii.gz",
            "fmri": "data/sub-01_bold.csv",
            "repetition_time": 2.0,
            "label": 1,
            "site": "A",
            "split": "train",
        },
        {
            "subject": "02",
            "t1": "",
            "fmri": "data/sub-02_bold.csv",
            "repetition_time": 0.8,
            "label": 0,
            "site": "B",
            "split": "test",
        },
    ]
    return tmp_path, rows


def write(tmp_path, rows, suffix):
    path = tmp_path / f"manifest{suffix}"
    if suffix in (".csv", ".tsv"):
        header = list(rows[0])
        sep = "," if suffix == ".csv" else "\t"
        lines = [sep.join(header)] + [sep.join(str(row[key]) for key in header) for row in rows]
        path.write_text("\n".join(lines) + "\n")
    elif suffix == ".jsonl":
        path.write_text("\n".join(json.dumps(row) for row in rows))
    else:
        path.write_text(json.dumps(rows))
    return path


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".json", ".jsonl"])
def test_formats_load_to_the_same_table(cohort, suffix):
    tmp_path, rows = cohort
    manifest = load_manifest(write(tmp_path, rows, suffix))
    assert isinstance(manifest, datasets.Dataset)
    assert manifest.column_names == list(MANIFEST_COLUMNS)
    assert manifest["subject"] == ["01", "02"]  # text, leading zeros kept
    assert manifest["t1"] == [str((tmp_path / "data/sub-01_T1w.nii.gz").resolve()), None]
    assert manifest["fmri"][1] == str((tmp_path / "data/sub-02_bold.csv").resolve())
    np.testing.assert_allclose(manifest["repetition_time"], [2.0, 0.8])
    assert manifest["session"] == [None, None]
    assert [int(label) for label in manifest["label"]] == [1, 0]
    assert manifest["split"] == ["train", "test"]


def test_rows_and_datasets_resolve_against_the_working_directory(cohort, monkeypatch):
    tmp_path, rows = cohort
    monkeypatch.chdir(tmp_path)
    from_rows = load_manifest(rows)
    from_dataset = load_manifest(datasets.Dataset.from_list(rows))
    assert from_rows["fmri"] == from_dataset["fmri"] == load_manifest(write(tmp_path, rows, ".csv"))["fmri"]


def test_every_problem_is_reported_at_once(cohort):
    tmp_path, rows = cohort
    rows = [*rows, {"subject": "01", "fmri": "data/missing.csv", "split": "val"}, {"subject": "03"}]
    with pytest.raises(ManifestError) as error:
        load_manifest(write(tmp_path, rows, ".json"))
    message = str(error.value)
    assert "3 problem(s)" in message
    assert "missing.csv" not in message  # files are checked once the table is sound
    assert "subject 03): neither `t1` nor `fmri`" in message
    assert "['val']" in message and "validation" in message
    assert "(01, None)" in message


def test_missing_subject_column_and_unknown_format(tmp_path):
    with pytest.raises(ManifestError, match="no `subject` column"):
        load_manifest([{"t1": "a.nii"}])
    other = tmp_path / "manifest.xlsx"
    other.write_bytes(b"")
    with pytest.raises(ManifestError, match=r"\.csv, \.tsv"):
        load_manifest(other)
    with pytest.raises(ManifestError, match="not a number of seconds"):
        load_manifest([{"subject": "1", "fmri": "x.csv", "repetition_time": "2s"}], check_files=False)


def test_missing_files_are_listed_together(cohort):
    tmp_path, rows = cohort
    rows[0]["t1"], rows[1]["fmri"] = "data/gone_T1w.nii.gz", "data/gone.csv"
    path = write(tmp_path, rows, ".csv")
    with pytest.raises(ManifestError, match=r"2 problem\(s\)(.|\n)*gone_T1w.nii.gz does not exist(.|\n)*gone.csv"):
        load_manifest(path)
    assert load_manifest(path, check_files=False)["subject"] == ["01", "02"]


@pytest.mark.parametrize(
    ("column", "meant"),
    [("T1w", "t1"), ("bold", "fmri"), ("TR", "repetition_time"), ("Session", "session"), ("participant_id", "subject")],
)
def test_a_column_meant_as_a_manifest_column_is_named_with_its_fix(cohort, column, meant):
    tmp_path, rows = cohort
    renamed = [{(column if key == meant else key): value for key, value in row.items()} for row in rows]
    if meant == "session":
        renamed = [{**row, column: f"ses-{index}"} for index, row in enumerate(rows)]
    with pytest.raises(ManifestError) as error:
        load_manifest(write(tmp_path, renamed, ".csv"))
    message = str(error.value)
    assert f"`{column}`" in message and f"rename it `{meant}`" in message


def test_extra_columns_beside_the_manifest_columns_are_kept(cohort):
    tmp_path, rows = cohort
    extra = [{**row, "age": 30 + index, "T1w": "ignored", "labels": "a"} for index, row in enumerate(rows)]
    manifest = load_manifest(write(tmp_path, extra, ".csv"))
    assert manifest["age"] == [30, 31] and manifest["T1w"] == ["ignored", "ignored"] and manifest["labels"] == ["a"] * 2
