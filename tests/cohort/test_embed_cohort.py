"""`brainharmonix embed` on a small real cohort: a broken subject, resume, hub tokens, checksums, three input routes."""

import dataclasses
import hashlib
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from cohort_sample import BROKEN, SESSIONS
from file_opens import count_opens

from brainharmonix_hf import BrainHarmonixModel, BrainHarmonixProcessor
from brainharmonix_hf.cli import main
from brainharmonix_hf.cohort import (
    embed_cohort,
    find_bids_sessions,
    load_embeddings,
    load_failures,
)
from brainharmonix_hf.cohort.sample_tree import atlas_image
from brainharmonix_hf.cohort.session_inputs import SessionInputs
from brainharmonix_hf.processing.atlases import SCHAEFER400_17NETWORKS, schaefer400_permutation, schaefer400_roi_names
from brainharmonix_hf.processing.feature_extraction_fmri import FMRIFeatureExtractor
from brainharmonix_hf.processing.roi_csv import read_roi_table


def reference_embedding(model, t1, tsv, repetition_time) -> tuple[np.ndarray, np.ndarray]:
    """Pooled embedding and hub tokens of one session through the processor and model directly."""
    table = read_roi_table(tsv, layout="time_first")
    inputs = BrainHarmonixProcessor.for_config(model.config)(
        t1=t1,
        fmri=table.series,
        roi_labels=table.labels,
        repetition_time=repetition_time,
        layout="rois_first",
        return_tensors="pt",
    )
    with torch.no_grad():
        outputs = model(**inputs)
    return outputs.pooler_output[0].numpy(), outputs.last_hidden_state[0].numpy()


def test_cli_cohort_with_broken_subject_then_resume(tiny_model_dir, sample_tree, tmp_path, capsys):
    tree = shutil.copytree(sample_tree, tmp_path / "tree")
    broken_t1 = next((tree / f"sub-{BROKEN[0]}" / f"ses-{BROKEN[1]}" / "anat").glob("*_T1w.nii.gz"))
    intact_bytes = broken_t1.read_bytes()
    broken_t1.write_bytes(intact_bytes[: len(intact_bytes) // 2])
    output = tmp_path / "embeddings"
    command = ["embed", "--model", str(tiny_model_dir), "--bids", str(tree), "--output", str(output)]
    main([*command, "--hub-tokens", "--batch-size", "2", "--no-progress"])
    assert "4 embedded, 0 already done, 1 failed" in capsys.readouterr().out

    table = load_embeddings(output)
    good = [(subject, session or "") for subject, session in SESSIONS if (subject, session) != BROKEN]
    assert list(zip(table["subject"], table["session"], strict=True)) == good
    failures = load_failures(output)
    assert [(f["subject"], f["session"]) for f in failures] == [BROKEN]
    assert failures[0]["error_type"] and failures[0]["message"]

    model = BrainHarmonixModel.from_pretrained(tiny_model_dir).eval()
    row = table[2]  # sub-02 ses-1
    embedding, hub_tokens = reference_embedding(model, row["t1"], row["fmri"], 1.4)
    np.testing.assert_allclose(row["embedding"], embedding, atol=1e-5)
    np.testing.assert_allclose(np.array(row["hub_tokens"]), hub_tokens, atol=1e-5)
    assert np.array(row["hub_tokens"]).shape == (1 + model.config.harmonizer_config.num_hub_tokens, 24)
    assert row["t1_sha256"] == hashlib.sha256(open(row["t1"], "rb").read()).hexdigest()
    assert row["fmri_sha256"] == hashlib.sha256(open(row["fmri"], "rb").read()).hexdigest()
    assert (row["has_t1"], row["has_fmri"], row["repetition_time"], row["task"]) == (True, True, 1.4, "rest")
    assert row["model_name"] == str(tiny_model_dir)
    # Sessions differ (perturbed inputs), so their embeddings do too.
    assert np.abs(np.array(table[0]["embedding"]) - np.array(table[1]["embedding"])).max() > 1e-4

    # Resume: nothing is recomputed, the table is not rewritten, the failure is retried and still reported.
    table_file = output / "embeddings.parquet"
    before = table_file.stat().st_mtime_ns
    main([*command, "--hub-tokens", "--no-progress"])
    assert "0 embedded, 4 already done, 1 failed" in capsys.readouterr().out
    assert table_file.stat().st_mtime_ns == before

    # Repaired, the subject is embedded on the next run and leaves the failures file; other rows are unchanged.
    broken_t1.write_bytes(intact_bytes)
    main([*command, "--hub-tokens", "--no-progress"])
    assert "1 embedded, 4 already done, 0 failed" in capsys.readouterr().out
    resumed = load_embeddings(output)
    assert len(resumed) == len(SESSIONS) and load_failures(output) == []
    np.testing.assert_array_equal(np.array(resumed["embedding"][:4]), np.array(table["embedding"]))


def test_same_embedding_from_table_bold_run_and_manifest(tiny_model_dir, sample_tree, tmp_path):
    model = BrainHarmonixModel.from_pretrained(tiny_model_dir).eval()
    from_table = find_bids_sessions(sample_tree, participant_label=["02"])
    from_bold = find_bids_sessions(sample_tree, participant_label=["02"], atlas="Gordon333", use_bold=True)
    rows = {}
    for name, sessions, atlas in [("table", from_table, None), ("bold", from_bold, str(atlas_image(sample_tree)))]:
        run = embed_cohort(model, sessions, tmp_path / name, fmri_atlas_image=atlas, progress=False)
        assert (run.embedded, run.failed) == (1, 0)
        rows[name] = load_embeddings(tmp_path / name)[0]
    # The manifest lists two subjects; the CLI keeps the one asked for, in float32 and in bfloat16.
    manifest = tmp_path / "cohort.csv"
    manifest.write_text(
        "subject,t1,fmri,repetition_time\n"
        + "".join(f"{s.subject},{s.t1},{s.fmri},1.4\n" for s in find_bids_sessions(sample_tree, session=["1"]))
    )
    for name, dtype in (("manifest", "float32"), ("bfloat16", "bfloat16")):
        command = [
            "embed",
            "--model",
            str(tiny_model_dir),
            "--manifest",
            str(manifest),
            "--output",
            str(tmp_path / name),
        ]
        main([*command, "--participant-label", "sub-02", "--dtype", dtype, "--no-progress"])
        (rows[name],) = load_embeddings(tmp_path / name)
    assert rows["bold"]["fmri"].endswith("_bold.nii.gz") and rows["manifest"]["session"] == ""
    assert rows["manifest"]["subject"] == "02"
    for name in ("bold", "manifest"):
        np.testing.assert_allclose(rows[name]["embedding"], rows["table"]["embedding"], atol=1e-5)
    low, reference = np.array(rows["bfloat16"]["embedding"]), np.array(rows["table"]["embedding"])
    assert 0 < np.abs(low - reference).max() < 0.1 * np.abs(reference).max()


def test_the_atlas_image_is_read_once_per_run_not_per_row(tiny_model_dir, sample_tree, tmp_path):
    """The label image of 4D NIfTI runs is read (and hashed for the folder's settings) once per run, however many
    runs it parcellates; each run is read once, and parcellated like the one-row cohort does."""
    model = BrainHarmonixModel.from_pretrained(tiny_model_dir).eval()
    atlas = str(atlas_image(sample_tree))
    sessions = [row for row in find_bids_sessions(sample_tree, atlas="Gordon333", use_bold=True) if row.fmri]
    opens = {}
    for count in (1, len(sessions)):
        with count_opens() as opens[count]:
            run = embed_cohort(model, sessions[:count], tmp_path / str(count), fmri_atlas_image=atlas, progress=False)
        assert (run.embedded, run.failed) == (count, 0)
    assert len(sessions) >= 3 and opens[1][atlas] == opens[len(sessions)][atlas]
    assert {opens[len(sessions)][row.fmri] for row in sessions} == {opens[1][sessions[0].fmri]}
    np.testing.assert_allclose(
        load_embeddings(tmp_path / str(len(sessions)))[0]["embedding"], load_embeddings(tmp_path / "1")[0]["embedding"]
    )


def test_other_schaefer_order_permuted_other_atlas_refused(tiny_model_dir, sample_tree, tmp_path):
    """XCP-D tables are checked by their column labels: a 17-network table of the same series embeds like the
    7-network one (the model's order), a table of another atlas fails with a message naming it."""
    model = BrainHarmonixModel.from_pretrained(tiny_model_dir).eval()
    assert model.config.function_config.atlas == "schaefer400_7networks"
    (session,) = [s for s in find_bids_sessions(sample_tree, participant_label=["02"]) if s.fmri]
    table = pd.read_csv(session.fmri, sep="\t")
    seventeen = tmp_path / "sub-02_ses-1_task-rest_atlas-Schaefer40017n_timeseries.tsv"
    order = schaefer400_permutation("schaefer400_7networks", SCHAEFER400_17NETWORKS)
    reordered = table.iloc[:, order].set_axis(schaefer400_roi_names(SCHAEFER400_17NETWORKS), axis=1)
    reordered.to_csv(seventeen, sep="\t", index=False)
    other = tmp_path / "sub-02_ses-1_task-rest_atlas-Other_timeseries.tsv"
    table.set_axis([f"parcel_{roi}" for roi in range(400)], axis=1).to_csv(other, sep="\t", index=False)
    embeddings = {}
    for name, fmri in (("table", session.fmri), ("seventeen", str(seventeen))):
        run = embed_cohort(model, [dataclasses.replace(session, fmri=fmri)], tmp_path / name, progress=False)
        assert (run.embedded, run.failed) == (1, 0)
        embeddings[name] = load_embeddings(tmp_path / name)[0]["embedding"]
    np.testing.assert_allclose(embeddings["seventeen"], embeddings["table"], atol=1e-6)
    run = embed_cohort(model, [dataclasses.replace(session, fmri=str(other))], tmp_path / "other", progress=False)
    (failure,) = load_failures(tmp_path / "other")
    assert (run.embedded, run.failed) == (0, 1)
    assert "ROIs of an atlas with 400 ROIs labelled 'parcel_0'" in failure["message"]
    assert "the model expects atlas 'schaefer400_7networks'" in failure["message"]


def test_batch_mixing_modalities_equals_one_by_one(tiny_model_dir, sample_tree, tmp_path):
    """A T1-only, an fMRI-only and a complete session in one batch (inputs read by a worker process) get the
    embeddings they get alone; a session without a TR in the same batch fails alone."""
    model = BrainHarmonixModel.from_pretrained(tiny_model_dir).eval()
    first, second, third = find_bids_sessions(sample_tree)[:3]
    sessions = [dataclasses.replace(first, fmri=None), dataclasses.replace(second, t1=None), third]
    no_tr = dataclasses.replace(third, subject="05", repetition_time=None)
    run = embed_cohort(model, [*sessions, no_tr], tmp_path / "batch", batch_size=4, num_workers=1, progress=False)
    assert (run.embedded, run.failed) == (3, 1)
    (failure,) = load_failures(tmp_path / "batch")
    assert failure["subject"] == "05" and failure["message"].startswith(f"No repetition time for {third.fmri}")
    batched = load_embeddings(tmp_path / "batch")
    assert (list(batched["has_t1"]), list(batched["has_fmri"])) == ([True, False, True], [False, True, True])
    assert batched["t1_sha256"][1] is None and batched["fmri_sha256"][0] is None
    for index, session in enumerate(sessions):
        embed_cohort(model, [session], tmp_path / f"alone{index}", progress=False)
        alone = load_embeddings(tmp_path / f"alone{index}")[0]["embedding"]
        np.testing.assert_allclose(batched[index]["embedding"], alone, atol=1e-5)


@pytest.mark.slow
def test_two_processes_split_the_cohort(tiny_model_dir, sample_tree, tmp_path):
    """Two CPU processes under torchrun (gloo): each embeds its share into its own shard, the main one merges."""
    import os
    import subprocess
    import sys

    output = tmp_path / "embeddings"
    environment = os.environ | {"ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    # --standalone: a free rendezvous port, so other distributed runs on the machine do not collide with this one.
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    command += ["-m", "brainharmonix_hf.cli"]
    args = ["embed", "--model", str(tiny_model_dir), "--bids", str(sample_tree), "--output", str(output)]
    result = subprocess.run([*command, *args, "--no-progress"], env=environment, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(line for line in result.stdout.splitlines() if "embedded" in line) == [
        f"2 embedded, 0 already done, 0 failed; table: {output}/embeddings.parquet, failures: {output}/failures.jsonl",
        f"3 embedded, 0 already done, 0 failed; table: {output}/embeddings.parquet, failures: {output}/failures.jsonl",
    ]
    assert len(load_embeddings(output)) == len(SESSIONS)


def test_hub_model_commit_is_recorded(tiny_model_dir, sample_tree, tmp_path):
    """A model loaded by Hub id from the local cache (offline): the row records the snapshot's commit."""
    import os
    import subprocess
    import sys

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--lab--brainharmonix-tiny"
    shutil.copytree(tiny_model_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    environment = os.environ | {"HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    output = tmp_path / "embeddings"
    args = ["embed", "--model", "lab/brainharmonix-tiny", "--bids", str(sample_tree), "--output", str(output)]
    filters = ["--participant-label", "01", "--session", "1", "--no-progress"]
    command = [sys.executable, "-m", "brainharmonix_hf.cli", *args, *filters]
    result = subprocess.run(command, env=environment, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    (row,) = load_embeddings(output)
    assert (row["model_name"], row["model_commit"]) == ("lab/brainharmonix-tiny", commit)


def test_model_error_fails_its_row_alone(tiny_model_dir, sample_tree, tmp_path):
    """An error inside the forward pass goes to failures.jsonl under field `model`, naming the model; the batch is
    retried row by row, so the other rows of the batch embed. The error here: a processor for a 100-ROI atlas, whose
    prepared series the 400-ROI model refuses (T1-only rows never reach the function encoder)."""
    model = BrainHarmonixModel.from_pretrained(tiny_model_dir).eval()
    own = BrainHarmonixProcessor.for_config(model.config)
    other_atlas = FMRIFeatureExtractor(
        num_rois=100,
        atlas="other100",
        roi_labels=[f"parcel_{roi}" for roi in range(100)],
        num_time_patches=model.config.function_config.num_time_patches,
    )
    processor = BrainHarmonixProcessor(own.t1_feature_extractor, other_atlas)
    series = tmp_path / "sub-09_other100.npy"
    np.save(series, np.random.default_rng(0).normal(size=(100, 80)).astype(np.float32))
    t1_only = [dataclasses.replace(session, fmri=None) for session in find_bids_sessions(sample_tree)[:2]]
    fmri_row = SessionInputs(subject="09", fmri=str(series), repetition_time=1.4, atlas="other100")
    rows = [t1_only[0], fmri_row, t1_only[1]]
    run = embed_cohort(model, rows, tmp_path / "out", processor=processor, batch_size=3, progress=False)
    assert (run.embedded, run.failed) == (2, 1)
    (failure,) = load_failures(tmp_path / "out")
    assert (failure["subject"], failure["field"], failure["file"]) == ("09", "model", str(tiny_model_dir))
    assert failure["error_type"] == "ValueError"
    assert failure["message"].startswith(
        "fmri_values must have shape (batch, num_rois=400, num_timepoints), got (1, 100,"
    )
    embedded = load_embeddings(tmp_path / "out")
    assert sorted(zip(embedded["subject"], embedded["session"], strict=True)) == sorted(s.key[:2] for s in t1_only)
    # Each T1-only row gets the embedding it gets alone, with the model's own processor.
    for session in t1_only:
        embed_cohort(model, [session], tmp_path / f"alone-{session.subject}-{session.session}", progress=False)
        alone = load_embeddings(tmp_path / f"alone-{session.subject}-{session.session}")[0]["embedding"]
        row = next(r for r in embedded if (r["subject"], r["session"]) == session.key[:2])
        np.testing.assert_allclose(row["embedding"], alone, atol=1e-5)
