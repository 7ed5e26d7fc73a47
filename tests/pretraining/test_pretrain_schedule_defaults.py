"""Warmup starts from a non-zero learning rate that the arguments name (the reference JEPA warms up 5e-5 -> 1e-3),
so the first optimizer step of every stage moves the weights."""

import re

import pytest
from pretraining_runs import run_stage

from brainharmonix_hf.training.pretrain import parse_arguments

STAGE_WARMUP = {"structure": (7.5e-6, 1.5e-4), "function": (5e-5, 1e-3), "harmonizer": (2.5e-5, 5e-4)}


@pytest.mark.parametrize("stage", sorted(STAGE_WARMUP))
def test_each_stage_warms_up_from_a_named_non_zero_learning_rate(stage, tmp_path):
    args = parse_arguments([stage, "--output_dir", str(tmp_path)])
    assert (args.warmup_start_learning_rate, args.learning_rate) == STAGE_WARMUP[stage]


def test_the_first_optimizer_step_runs_at_the_warmup_start_rate(cohort, tmp_path):
    _, records = run_stage(cohort, tmp_path, "harmonizer", "--max_steps", "4", "--warmup_ratio", "0.5")
    rates = [record["lr"] for record in records if record["split"] == "train"]
    # Steps 0 and 1 warm up linearly from 2.5e-5 towards 5e-4; step 2 is the peak.
    assert rates[:3] == pytest.approx([2.5e-5, 2.5e-5 + (5e-4 - 2.5e-5) / 2, 5e-4])


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--warmup_start_learning_rate", "0"], r"warmup_start_learning_rate must be positive"),
        (["--learning_rate", "1e-5"], r"warmup_start_learning_rate \(5e-05\) is above the learning rate \(1e-05\)"),
    ],
)
def test_a_warmup_start_of_zero_or_above_the_peak_is_refused(flags, message, tmp_path, capsys):
    with pytest.raises(SystemExit):
        parse_arguments(["function", "--output_dir", str(tmp_path), *flags])
    assert re.search(message, capsys.readouterr().err)
