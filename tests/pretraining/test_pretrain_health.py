"""Representation health during pretraining, on the real LEMON windows: every held-out evaluation logs the metrics;
a run built to collapse (weight decay so strong that every weight, the patch kernel included, decays to nothing, so
every series gets the same embedding) is reported as collapsed, and `--stop_on_collapse` stops it; a normal run is
not reported."""

import json

import pytest
from distributed_runs import torchrun
from pretraining_runs import read_log, run_stage
from tqdm import tqdm

from brainharmonix_hf.training.health import HEALTH_METRICS
from brainharmonix_hf.training.loop import RepresentationCollapseError

COLLAPSING = ["--learning_rate", "1e-2", "--warmup_ratio", "0", "--weight_decay", "50", "--weight_decay_end", "50"]


def validation_records(records):
    return [record for record in records if record["split"] == "validation" and "loss" in record]


def test_collapse_is_detected_and_reported(cohort, tmp_path, caplog):
    _, records = run_stage(cohort, tmp_path, "function", "--max_steps", "12", "--eval_steps", "6", *COLLAPSING)
    evaluations = validation_records(records)
    assert [record["step"] for record in evaluations] == [0, 6, 12]
    for record in evaluations:
        assert set(HEALTH_METRICS) <= set(record) and record["num_samples"] == 4
    # The windows' embeddings draw together: their spread falls below a quarter of the initial model's.
    assert evaluations[-1]["relative_spread"] < 0.25 * evaluations[0]["relative_spread"]
    assert evaluations[-1]["mean_cosine_similarity"] > evaluations[0]["mean_cosine_similarity"]
    events = [record for record in records if record.get("event") == "collapse"]
    assert [event["step"] for event in events] == [6, 12]
    assert "spread fell" in events[-1]["reasons"][0]
    assert "has collapsed" in caplog.text


def test_stop_on_collapse_checkpoints_exports_and_stops(cohort, tmp_path):
    with pytest.raises(RepresentationCollapseError, match="Stopped at step 6"):
        run_stage(
            cohort, tmp_path, "function", "--max_steps", "12", "--eval_steps", "6", "--stop_on_collapse", "true",
            *COLLAPSING,
        )  # fmt: skip
    assert (tmp_path / "model" / "config.json").is_file()
    assert (tmp_path / "checkpoints" / "step-00000006").is_dir()
    assert max(record["step"] for record in read_log(tmp_path)) == 6


HELD_OUT_ITEMS = {"function": 4, "structure": 2, "harmonizer": 5}  # validation rows of the test cohort


@pytest.mark.parametrize("stage", ["function", "structure", "harmonizer"])
def test_normal_runs_log_health_without_collapse(cohort, tmp_path, stage):
    _, records = run_stage(cohort, tmp_path, stage, "--max_steps", "4", "--eval_steps", "2")
    evaluations = validation_records(records)
    assert [record["step"] for record in evaluations] == [0, 2, 4]
    # Every held-out item is embedded; the embeddings span most of the dimensions their number allows (RankMe of n
    # centred items is at most n - 1) and keep at least half of their initial spread (collapse is below a quarter).
    assert [record["num_samples"] for record in evaluations] == [HELD_OUT_ITEMS[stage]] * 3
    assert all(record["effective_rank"] > 0.6 * (record["num_samples"] - 1) for record in evaluations)
    assert evaluations[-1]["relative_spread"] >= 0.5 * evaluations[0]["relative_spread"] > 0
    assert not [record for record in records if record.get("event") == "collapse"]


def test_only_the_main_process_computes_health_and_every_process_gets_its_verdict(tmp_path):
    torchrun("health_monitor_ranks.py", [str(tmp_path)])
    main, other = (json.loads((tmp_path / f"health_rank{rank}.json").read_text()) for rank in (0, 1))
    assert main["computed"] == [8, 8] and other["computed"] == []
    assert main["reasons"][0] == [] and "nearly the same embedding" in main["reasons"][1][0]
    assert other["reasons"] == main["reasons"]


def test_stop_on_collapse_closes_the_progress_bar(cohort, tmp_path):
    # `stopped` keeps the stopped loop's frame (and its bar) alive: an unclosed bar stays among tqdm's open bars.
    with pytest.raises(RepresentationCollapseError) as stopped:
        run_stage(
            cohort, tmp_path, "function", "--max_steps", "12", "--eval_steps", "6", "--stop_on_collapse", "true",
            *COLLAPSING,
        )  # fmt: skip
    open_bars = [bar for bar in tqdm._instances if bar.desc == "function"]
    assert open_bars == [], [(bar.n, bar.total) for bar in open_bars]
    assert "Stopped at step 6" in str(stopped.value)
