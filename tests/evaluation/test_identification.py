"""Identification across sessions and across disjoint windows of one scan: metrics by hand, the FC baseline, the
real LEMON run cut into windows, and `brainharmonix evaluate --task identification`."""

import json

import numpy as np
import pytest

from brainharmonix_hf.cli import main
from brainharmonix_hf.evaluation.identification import (
    cut_windows,
    functional_connectivity,
    identification_report,
    identify,
)

# Windows of the LEMON run: 6 disjoint segments of 100 frames (140 s) stand for 6 scans; the tool cuts each into 2
# windows of 50 frames (the tiny model's 2 time patches of 25 frames at TR 1.4 s).
NUM_SEGMENTS, SEGMENT_FRAMES = 6, 100


def test_identification_by_hand():
    # Rows with zero mean, so Pearson correlation is the cosine. Session 2 of subject a leans towards b's pattern.
    session_1 = np.array([[1.0, -1.0, 0.0, 0.0], [0.0, 0.0, 1.0, -1.0], [1.0, 1.0, -1.0, -1.0]])
    session_2 = np.array([[0.2, -0.2, 1.0, -1.0], [0.0, 0.0, 1.0, -1.0], [1.0, 1.0, -1.0, -1.0]])
    result = identify(np.concatenate([session_1, session_2]), ["a", "b", "c"] * 2, ["1"] * 3 + ["2"] * 3)
    pairs = {(pair["query"], pair["candidates"]): pair for pair in result["session_pairs"]}
    # 1 -> 2: a1 correlates 0.4 / (√2 · √2.08) ≈ 0.196 with a2 and 0 with b2 and c2; b1 and c2 match exactly.
    assert (pairs["1", "2"]["identification_accuracy"], pairs["1", "2"]["mean_rank"]) == (1.0, 1.0)
    # 2 -> 1: a2 correlates 2 / (√2 · √2.08) ≈ 0.981 with b1, more than with a1: a ranks 2nd.
    assert pairs["2", "1"]["identification_accuracy"] == pytest.approx(2 / 3)
    assert pairs["2", "1"]["mean_rank"] == pytest.approx(4 / 3)
    assert result["identification_accuracy"] == pytest.approx(5 / 6) and result["mean_rank"] == pytest.approx(7 / 6)
    assert result["chance_identification_accuracy"] == pytest.approx(1 / 3) and result["chance_mean_rank"] == 2.0
    assert result["num_queries"] == 6
    # Without session ids, each subject's rows are numbered in order: the same result.
    again = identify(np.concatenate([session_1, session_2]), ["a", "b", "c"] * 2)
    assert again["identification_accuracy"] == result["identification_accuracy"]
    # A tie with the own subject is not an identification: tied candidates share the mean of their ranks. Session 2
    # = [b1, b1, c1]: a1 correlates 0 with all three (rank 2), b1 ties a2 and b2 (rank 1.5), c1 is found.
    tied = identify(np.concatenate([session_1, session_1[[1, 1, 2]]]), ["a", "b", "c"] * 2)
    assert tied["session_pairs"][0]["identification_accuracy"] == pytest.approx(1 / 3)
    assert tied["session_pairs"][0]["mean_rank"] == pytest.approx((2 + 1.5 + 1) / 3)


def test_identification_refuses_what_it_cannot_score():
    with pytest.raises(ValueError, match="two rows in session 1"):
        identify(np.eye(3), ["a", "a", "b"], ["1", "1", "1"])
    with pytest.raises(ValueError, match="identification needs several subjects"):
        identify(np.eye(2), ["a", "b"], ["1", "1"])


def test_functional_connectivity_by_hand():
    rng = np.random.default_rng(0)
    series = rng.normal(size=(3, 50))
    series[2] = series[0] + 0.5 * series[2]
    (features,) = functional_connectivity([series])
    correlation = np.corrcoef(series)
    np.testing.assert_allclose(features, np.arctanh([correlation[0, 1], correlation[0, 2], correlation[1, 2]]))
    with pytest.raises(ValueError, match="Cannot cut 5 frames into 3 windows"):
        cut_windows(series[:, :5], 3)
    windows = cut_windows(series, 3)
    assert [window.shape for window in windows] == [(3, 16)] * 3
    np.testing.assert_array_equal(np.concatenate(windows, axis=1), series[:, :48])


def lemon_windows(lemon_series):
    """The LEMON run as 6 segments (standing for scans), each cut into 2 disjoint windows."""
    series, subjects, sessions = [], [], []
    for segment in range(NUM_SEGMENTS):
        frames = lemon_series[:, segment * SEGMENT_FRAMES : (segment + 1) * SEGMENT_FRAMES]
        for index, window in enumerate(cut_windows(frames, 2)):
            series.append(window)
            subjects.append(f"segment{segment}")
            sessions.append(f"w{index}")
    return series, subjects, sessions


def test_fc_identifies_windows_of_the_real_run(lemon_series):
    series, subjects, sessions = lemon_windows(lemon_series)
    # Random embeddings know nothing of the windows; FC of the windows finds the other half of the segment well above
    # chance (the halves share the segment's slow fluctuations).
    noise = np.random.default_rng(0).normal(size=(len(series), 16))
    report = identification_report({"noise": noise}, subjects, sessions, series)
    fc, chance = report["fc_baseline"], report["chance"]
    assert chance == {"identification_accuracy": pytest.approx(1 / 6), "mean_rank": 3.5}
    assert fc["num_queries"] == 12 and fc["num_subjects"] == 6 and fc["num_sessions"] == 2
    assert fc["identification_accuracy"] >= 0.5 > 2 * chance["identification_accuracy"]
    assert fc["mean_rank"] < 2.0 < chance["mean_rank"]
    json.dumps(report)


def write_segment_manifest(lemon_series, folder) -> str:
    """`runs.csv`: the LEMON run's segments as the runs of 6 subjects (`.npy` files in `folder`)."""
    rows = ["subject,fmri,repetition_time,atlas"]
    for segment in range(NUM_SEGMENTS):
        path = folder / f"segment{segment}.npy"
        np.save(path, lemon_series[:, segment * SEGMENT_FRAMES : (segment + 1) * SEGMENT_FRAMES])
        rows.append(f"segment{segment},{path},1.4,schaefer400_7networks")
    (folder / "runs.csv").write_text("\n".join(rows) + "\n")
    return str(folder / "runs.csv")


def test_evaluate_command_identifies_windows_it_cuts(lemon_series, tiny_model_dir, tmp_path, capsys):
    manifest = write_segment_manifest(lemon_series, tmp_path)
    main(
        [
            "evaluate",
            "--task",
            "identification",
            "--source",
            f"tiny={tiny_model_dir}",
            "--manifest",
            manifest,
            "--windows",
            "2",
            "--output",
            str(tmp_path / "report.json"),
        ]
    )
    report = json.loads((tmp_path / "report.json").read_text())
    tiny, fc = report["sources"]["tiny"], report["fc_baseline"]
    assert tiny["num_queries"] == fc["num_queries"] == 12 and tiny["num_sessions"] == 2
    assert report["chance"] == {"identification_accuracy": pytest.approx(1 / 6), "mean_rank": 3.5}
    assert 0.0 <= tiny["identification_accuracy"] <= 1.0 and 1.0 <= tiny["mean_rank"] <= 6.0
    # FC of the same windows, computed in the same run, matches the Python API on the windows cut the same way.
    series, subjects, sessions = lemon_windows(lemon_series)
    expected = identification_report({"x": np.zeros((12, 2))}, subjects, sessions, series)["fc_baseline"]
    assert fc["identification_accuracy"] == expected["identification_accuracy"]
    assert fc["mean_rank"] == pytest.approx(expected["mean_rank"])
    assert "each fMRI run cut into 2 disjoint windows of 50 frames" in report["settings"]["windows"]
    printed = capsys.readouterr().out
    assert "FC baseline top-1 0.5000 (chance 0.1667)" in printed


def test_evaluate_command_reads_function_encoder_tokens(lemon_series, tiny_model_dir, tmp_path):
    # The tiny model's FunctionJEPA encoder saved on its own, as a pretraining run exports `model/encoder`.
    from brainharmonix_hf import BrainHarmonixModel, BrainHarmonixProcessor
    from brainharmonix_hf.evaluation.fmri_readouts import embed_fmri_series

    encoder_dir = tmp_path / "encoder"
    encoder = BrainHarmonixModel.from_pretrained(tiny_model_dir).function
    encoder.save_pretrained(encoder_dir)
    extractor = BrainHarmonixProcessor.from_pretrained(tiny_model_dir).fmri_feature_extractor
    extractor.save_pretrained(encoder_dir)
    manifest = write_segment_manifest(lemon_series, tmp_path)
    arguments = ["evaluate", "--task", "identification", "--manifest", manifest, "--windows", "2"]
    series, subjects, sessions = lemon_windows(lemon_series)
    for readout in (None, "token_connectivity"):
        output = tmp_path / f"{readout}.json"
        main(
            [*arguments, "--source", f"encoder={encoder_dir}", "--output", str(output)]
            + (["--readout", readout] if readout else [])
        )
        report = json.loads(output.read_text())
        used = readout or "roi_similarity"
        assert report["settings"]["representations"]["encoder"].startswith(f"FunctionJEPA tokens, readout {used}")
        # The command's identification is the Python API's on the same windows and readout.
        expected = identify(embed_fmri_series(encoder, extractor, series, 1.4, used), subjects, sessions)
        result = report["sources"]["encoder"]
        assert result["identification_accuracy"] == expected["identification_accuracy"]
        assert result["mean_rank"] == pytest.approx(expected["mean_rank"])
    # A BrainHarmonix source has no tokens to read out.
    with pytest.raises(ValueError, match="--readout reads the tokens of a FunctionJEPA encoder"):
        main([*arguments, "--source", f"tiny={tiny_model_dir}", "--readout", "mean", "--output", str(output)])


def test_evaluate_command_identifies_across_sessions(tmp_path):
    rng = np.random.default_rng(0)
    fingerprints = rng.normal(size=(10, 32))
    rows = [
        {"subject": f"s{subject}", "session": session, "embedding": fingerprints[subject] + 0.5 * rng.normal(size=32)}
        for subject in range(10)
        for session in ("1", "2", "3")
    ]
    import pandas as pd

    pd.DataFrame(rows).to_parquet(tmp_path / "embeddings.parquet")
    main(
        [
            "evaluate",
            "--task",
            "identification",
            "--source",
            f"A={tmp_path / 'embeddings.parquet'}",
            "--output",
            str(tmp_path / "report.json"),
        ]
    )
    report = json.loads((tmp_path / "report.json").read_text())
    result = report["sources"]["A"]
    assert (result["num_subjects"], result["num_sessions"], result["num_queries"]) == (10, 3, 60)
    assert len(result["session_pairs"]) == 6 and result["identification_accuracy"] == 1.0
    assert "fc_baseline" not in report and report["settings"]["fc_baseline"].startswith("none")


def test_fisher_z_upper_takes_the_upper_triangle_row_major_and_stays_finite():
    """The one Fisher z of functional connectivity and of the token readouts: pairs (0,1), (0,2), (1,2) in that order,
    a batch axis kept, a correlation of 1 clipped to a finite value."""
    from brainharmonix_hf.evaluation.identification import FISHER_Z_CLIP, fisher_z_upper

    similarity = np.array([[1.0, 0.5, -0.25], [0.5, 1.0, 1.0], [-0.25, 1.0, 1.0]])
    np.testing.assert_allclose(fisher_z_upper(similarity), np.arctanh([0.5, -0.25, FISHER_Z_CLIP]))
    batch = np.stack([similarity, -similarity])
    np.testing.assert_allclose(fisher_z_upper(batch), [fisher_z_upper(similarity), -fisher_z_upper(similarity)])
    assert np.isfinite(fisher_z_upper(batch)).all() and fisher_z_upper(similarity)[2] > 8
