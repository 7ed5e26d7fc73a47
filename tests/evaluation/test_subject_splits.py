"""Splits by subject: a subject's sessions never straddle train / validation / test, so random labels score chance."""

import json

import numpy as np
import pandas as pd
import pytest

from brainharmonix_hf.cli import main
from brainharmonix_hf.evaluation.splits import repeated_splits

NUM_SUBJECTS = 60


def random_label_sessions(seed: int = 0, dim: int = 128, session_noise: float = 0.3) -> pd.DataFrame:
    """60 subjects × 2 sessions; each subject has its own embedding (a fingerprint) plus session noise, and a label
    drawn at random (30 patients, 30 controls), so nothing but the subject's identity links embedding and label."""
    rng = np.random.default_rng(seed)
    fingerprints = rng.normal(size=(NUM_SUBJECTS, dim))
    labels = rng.permutation(np.repeat(["control", "patient"], NUM_SUBJECTS // 2))
    rows = [
        {
            "subject": f"{subject:03d}",
            "session": session,
            "label": labels[subject],
            "embedding": fingerprints[subject] + session_noise * rng.normal(size=dim),
        }
        for subject in range(NUM_SUBJECTS)
        for session in ("1", "2")
    ]
    return pd.DataFrame(rows)


def test_random_labels_with_two_sessions_score_chance(tmp_path):
    table = random_label_sessions()
    table.to_parquet(tmp_path / "embeddings.parquet")
    main(["evaluate", "--source", f"A={tmp_path / 'embeddings.parquet'}", "--output", str(tmp_path / "report.json")])
    report = json.loads((tmp_path / "report.json").read_text())
    assert (report["num_subjects"], report["num_sessions"]) == (60, 120)
    accuracy = report["models"]["A"]["summary"]["accuracy"]
    # Chance is 0.5 (balanced labels): it lies inside the reported interval, which lies inside [0, 1].
    assert accuracy["ci_low"] <= report["chance"]["accuracy"] == 0.5 <= accuracy["ci_high"], accuracy
    assert 0.0 <= accuracy["ci_low"] and accuracy["ci_high"] <= 1.0
    for row in report["models"]["A"]["splits"]:
        assert row["num_train_subjects"] + row["num_validation_subjects"] + row["num_test_subjects"] == 60
        assert row["num_train"] + row["num_validation"] + row["num_test"] == 120


def test_no_subject_on_two_sides_of_any_split():
    table = random_label_sessions()
    subjects = table["subject"].to_numpy()
    labels = (table["label"] == "patient").to_numpy().astype(int)
    splits = repeated_splits(labels, subjects)
    assert len(splits) == 25
    for split in splits:
        parts = [set(subjects[part]) for part in (split.train, split.validation, split.test)]
        assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
        assert len(split.train) + len(split.validation) + len(split.test) == 120
        # Both sessions of every test subject are in the test set.
        assert len(split.test) == 2 * len(parts[2])


def test_group_column_must_be_coarser_than_subjects():
    subjects = np.array(["a", "a", "b", "b", "c", "c"])
    labels = np.array([0, 0, 1, 1, 0, 0])
    with pytest.raises(ValueError, match=r"subject a has 2 values of the group column"):
        repeated_splits(labels, subjects, groups=np.array(["s1", "s2", "s1", "s1", "s2", "s2"]))
