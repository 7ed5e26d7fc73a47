"""The evaluation protocol: splits checked by counting, corrected statistics, the paired test's sign, the report."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from brainharmonix_hf.cli import main
from brainharmonix_hf.evaluation.protocol import EmbeddingProbe, run_protocol
from brainharmonix_hf.evaluation.splits import Split, repeated_splits
from brainharmonix_hf.evaluation.statistics import corrected_paired_t_test, summarise


def synthetic_cohort(num_subjects: int = 60, seed: int = 0) -> pd.DataFrame:
    """Subjects in 6 sites (subject i at site i mod 6) of 10 subjects each, 4 of them patients; embedding `informative`
    carries the label, `noise` does not."""
    rng = np.random.default_rng(seed)
    labels = ((np.arange(num_subjects) // 6) % 3 == 0).astype(int)
    informative = rng.normal(size=(num_subjects, 8)) + 1.5 * labels[:, None]
    return pd.DataFrame(
        {
            "subject": [f"{index:03d}" for index in range(num_subjects)],
            "label": np.where(labels == 1, "patient", "control"),
            "site": [f"site{index % 6}" for index in range(num_subjects)],
            "informative": list(informative),
            "noise": list(rng.normal(size=(num_subjects, 8))),
        }
    )


def test_splits_are_stratified_disjoint_and_cover_each_repeat():
    labels = np.array([0] * 40 + [1] * 20)
    subjects = np.arange(60)
    splits = repeated_splits(labels, subjects, num_repeats=3, num_folds=5, num_validation_folds=4, seed=7)
    assert len(splits) == 15
    for repeat in range(3):
        tests = np.concatenate([split.test for split in splits if split.repeat == repeat])
        assert sorted(tests) == list(range(60))  # every subject is tested exactly once per repeat
    for split in splits:
        parts = [set(split.train), set(split.validation), set(split.test)]
        assert sum(map(len, parts)) == 60 and len(set().union(*parts)) == 60
        # Stratified: the test fold holds 12 subjects, 8 + 4 as in the cohort; validation a quarter of the rest.
        assert np.bincount(labels[split.test]).tolist() == [8, 4]
        assert np.bincount(labels[split.validation]).tolist() == [8, 4]
    # Different repeats shuffle differently; the same seed gives the same splits.
    assert not np.array_equal(splits[0].test, splits[5].test)
    again = repeated_splits(labels, subjects, num_repeats=3, num_folds=5, num_validation_folds=4, seed=7)
    assert all(
        np.array_equal(a.test, b.test) and np.array_equal(a.validation, b.validation)
        for a, b in zip(splits, again, strict=True)
    )


def test_grouped_splits_never_share_a_site():
    cohort = synthetic_cohort()
    labels = (cohort["label"] == "patient").to_numpy().astype(int)
    sites = cohort["site"].to_numpy()
    splits = repeated_splits(
        labels, cohort["subject"], groups=sites, num_repeats=2, num_folds=3, num_validation_folds=2, seed=0
    )
    for split in splits:
        site_sets = [set(sites[part]) for part in (split.train, split.validation, split.test)]
        assert all(not (a & b) for index, a in enumerate(site_sets) for b in site_sets[index + 1 :])
        # 6 sites in 3 folds: two sites (20 subjects, 8 patients) per test set, one of the other four for validation.
        assert len(site_sets[2]) == 2 and np.bincount(labels[split.test]).tolist() == [12, 8]
        assert len(site_sets[1]) == 2 and len(site_sets[0]) == 2


def test_corrected_interval_and_paired_test_by_hand():
    values = np.array([0.7, 0.8, 0.75, 0.85])
    summary = summarise(values, n_train=80, n_test=20, metric="accuracy")
    sd = values.std(ddof=1)
    # Corrected standard error, widened on the logit scale by the derivative 1 / (m (1 - m)) at the mean, mapped back.
    half = stats.t.ppf(0.975, 3) * np.sqrt((1 / 4 + 20 / 80) * sd**2) / (0.775 * 0.225)
    logit = np.log(0.775 / 0.225)
    assert summary["mean"] == pytest.approx(0.775) and summary["sd"] == pytest.approx(sd)
    assert (summary["ci_low"], summary["ci_high"]) == pytest.approx(
        (1 / (1 + np.exp(-(logit - half))), 1 / (1 + np.exp(-(logit + half))))
    )
    # Differences [0.1, 0.2, 0.1, 0.2]: mean 0.15, var 1/300; t = 0.15 / sqrt((1/4 + 1/4) / 300) = 0.15 · sqrt(600).
    result = corrected_paired_t_test(values, values - [0.1, 0.2, 0.1, 0.2], n_train=80, n_test=20)
    assert result["t"] == pytest.approx(0.15 * np.sqrt(600))
    assert result["p_value"] == pytest.approx(2 * stats.t.sf(0.15 * np.sqrt(600), 3))


def test_protocol_finds_the_better_model_and_touches_test_once():
    cohort = synthetic_cohort()
    labels = (cohort["label"] == "patient").to_numpy().astype(int)
    subjects = cohort["subject"]
    splits = repeated_splits(
        labels, subjects, groups=cohort["site"], num_repeats=3, num_folds=3, num_validation_folds=2
    )
    seen_tests = []
    probe = EmbeddingProbe(np.stack(cohort["informative"]), labels)

    def recording(split):
        seen_tests.append(tuple(split.test))
        return probe(split)

    predictors = {"informative": recording, "noise": EmbeddingProbe(np.stack(cohort["noise"]), labels)}
    report = run_protocol(splits, labels, predictors, subjects=subjects, settings={"seed": 0})
    assert seen_tests == [tuple(split.test) for split in splits]  # each split's test set asked for once
    assert set(report) == {
        "protocol",
        "settings",
        "num_subjects",
        "num_sessions",
        "num_rows",
        "chance",
        "models",
        "comparison",
    }
    assert report["chance"] == {"accuracy": 0.6, "balanced_accuracy": 0.5, "auroc": 0.5}
    informative = report["models"]["informative"]
    assert len(informative["splits"]) == 9 and informative["splits"][0]["num_test"] == 20
    assert informative["summary"]["auroc"]["mean"] > 0.85 > report["models"]["noise"]["summary"]["auroc"]["mean"]
    comparison = report["comparison"]
    assert comparison["auroc"]["better"] == "informative" and comparison["auroc"]["mean_difference"] > 0
    assert comparison["auroc"]["p_value"] < 0.01
    swapped = run_protocol(splits, labels, dict(reversed(list(predictors.items()))), subjects=subjects)
    swapped = swapped["comparison"]["auroc"]
    assert swapped["better"] == "informative" and swapped["t"] == pytest.approx(-comparison["auroc"]["t"])
    json.dumps(report)  # JSON-ready


def test_protocol_refuses_a_subject_in_two_parts_before_predicting():
    # Rows are subject-sessions: subject "b" has one session in train and one in test of the second split.
    subjects = np.repeat(["a", "b", "c", "d", "e"], 2)
    labels = np.repeat([0, 1, 0, 1, 1], 2)
    clean = Split(0, 0, train=np.arange(4), validation=np.array([8, 9]), test=np.arange(4, 8))
    leaking = Split(0, 1, train=np.arange(3), validation=np.array([8, 9]), test=np.arange(3, 8))
    calls = []

    def predict(split):
        calls.append(split.fold)
        return np.eye(2)[labels[split.test]]  # always right

    with pytest.raises(ValueError) as error:
        run_protocol([clean, leaking], labels, {"model": predict}, subjects=subjects)
    assert str(error.value) == (
        "Split (repeat 0, fold 1) puts subjects ['b'] in two parts: make splits by subject with `repeated_splits`."
    )
    assert calls == []  # refused before any test set is predicted
    report = run_protocol([clean], labels, {"model": predict}, subjects=subjects)
    assert calls == [0] and report["models"]["model"]["splits"][0]["num_test_subjects"] == 2
    assert report["models"]["model"]["splits"][0]["accuracy"] == 1.0


def test_evaluate_command_on_embedding_tables(tmp_path):
    cohort = synthetic_cohort()
    for name in ("informative", "noise"):
        table = cohort[["subject", "label", "site"]].assign(embedding=cohort[name])
        table.sample(frac=1.0, random_state=1).to_parquet(tmp_path / f"{name}.parquet")  # rows matched by subject
    # Source A as `brainharmonix embed` leaves it: a folder holding embeddings.parquet.
    (tmp_path / "embed_output").mkdir()
    (tmp_path / "informative.parquet").rename(tmp_path / "embed_output" / "embeddings.parquet")
    main(
        [
            "evaluate",
            "--source",
            f"A={tmp_path / 'embed_output'}",
            "--source",
            f"B={tmp_path / 'noise.parquet'}",
            "--group-column",
            "site",
            "--repeats",
            "2",
            "--folds",
            "3",
            "--validation-folds",
            "2",
            "--output",
            str(tmp_path / "report.json"),
        ]
    )
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["settings"]["classes"] == ["control", "patient"] and report["settings"]["group_column"] == "site"
    assert report["comparison"]["f1"]["better"] == "A"
    assert set(report["models"]["A"]["summary"]) == {"accuracy", "balanced_accuracy", "f1", "auroc"}
    assert "Nadeau" in report["protocol"]["paired_test"]
    # The report states how its intervals are made: on scales that keep each metric inside its range.
    interval = report["protocol"]["confidence_interval"]
    assert "Nadeau-Bengio corrected variance" in interval
    for scale in ("logit scale for metrics in [0, 1]", "Fisher z scale for correlations", "log scale for errors"):
        assert scale in interval


def test_evaluate_command_on_a_latent_cache(cohort, tiny_model_dir, tmp_path):
    from brainharmonix_hf import BrainHarmonixModel, BrainHarmonixProcessor
    from brainharmonix_hf.training.latent_cache import cache_latents

    model = BrainHarmonixModel.from_pretrained(tiny_model_dir)
    cache_latents(model, BrainHarmonixProcessor.from_pretrained(tiny_model_dir), cohort, tmp_path / "cache")
    model.harmonizer.save_pretrained(tmp_path / "harmonizer")
    main(
        [
            "evaluate",
            "--source",
            f"tiny={tmp_path / 'harmonizer'}",
            "--latent-cache",
            str(tmp_path / "cache"),
            "--group-column",
            "site",
            "--repeats",
            "2",
            "--folds",
            "3",
            "--validation-folds",
            "2",
            "--output",
            str(tmp_path / "report.json"),
        ]
    )
    report = json.loads((tmp_path / "report.json").read_text())
    rows = report["models"]["tiny"]["splits"]
    # 12 subjects at 3 sites of 4: each test set is one site, validation one of the other two.
    assert [(row["num_train"], row["num_validation"], row["num_test"]) for row in rows] == [(4, 4, 4)] * 6
    assert "comparison" not in report and report["num_subjects"] == 12
    assert all(0.0 <= row["balanced_accuracy"] <= 1.0 for row in rows)


def test_regression_protocol_prefers_the_lower_error():
    rng = np.random.default_rng(1)
    targets = rng.normal(size=50)
    informative = np.stack([targets + 0.3 * rng.normal(size=50), rng.normal(size=50)], axis=1)
    noise = rng.normal(size=(50, 2))
    subjects = np.arange(50)
    splits = repeated_splits(targets, subjects, num_repeats=2, num_folds=5, regression=True)
    # Quantile-bin stratification: each test fold of 10 holds two targets of each fifth of the distribution.
    bins = np.digitize(targets, np.quantile(targets, [0.2, 0.4, 0.6, 0.8]))
    assert all(np.bincount(bins[split.test]).tolist() == [2] * 5 for split in splits)
    predictors = {
        "noise": EmbeddingProbe(noise, targets, regression=True),
        "informative": EmbeddingProbe(informative, targets, regression=True),
    }
    report = run_protocol(splits, targets, predictors, subjects=subjects, regression=True)
    assert set(report["models"]["noise"]["summary"]) == {"mse", "mae", "pearson_r"}
    mse = report["comparison"]["mse"]
    assert mse["mean_difference"] > 0 and mse["better"] == "informative"  # noise - informative: noise errs more
    assert report["comparison"]["pearson_r"]["better"] == "informative"
