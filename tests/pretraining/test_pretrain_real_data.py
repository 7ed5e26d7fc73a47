"""Each stage learns on real data with tiny configs: the training loss and the held-out loss fall.

fMRI: windows of the LEMON run (TR 1.4 s) and the same run downsampled x2 and x3 (TR 2.8 s, 4.2 s); the held-out loss
is on windows from frames the training never sees. T1: nilearn's MNI152 template with augmentation; its held-out rows
are the same template under other augmentation draws and masks (no second real 1 mm T1 ships offline). Harmonizer:
latents of those inputs from frozen tiny encoders, held-out rows from the held-out frames.
"""

import pytest
from pretraining_runs import run_stage


def _first_and_last(records: list[dict], split: str) -> tuple[float, float]:
    losses = [record["loss"] for record in records if record["split"] == split and "loss" in record]
    return losses[0], losses[-1]


def assert_learns(records: list[dict], train_drop: float, held_out_drop: float) -> None:
    train_losses = [record["loss"] for record in records if record["split"] == "train"]
    start, end = sum(train_losses[:3]) / 3, sum(train_losses[-3:]) / 3
    held_start, held_end = _first_and_last(records, "validation")
    assert end < start * (1 - train_drop), (start, end)
    assert held_end < held_start * (1 - held_out_drop), (held_start, held_end)


@pytest.mark.parametrize(
    "rates",
    [
        pytest.param(["1", "2", "3"], id="multi_tr"),
        *(pytest.param([rate], marks=pytest.mark.slow, id=f"x{rate}") for rate in ("1", "2", "3")),
    ],
)
def test_function_jepa_learns_on_lemon_windows(cohort, tmp_path, rates):
    _, records = run_stage(
        cohort,
        tmp_path,
        "function",
        "--max_steps",
        "40",
        "--per_device_batch_size",
        "4",
        "--learning_rate",
        "3e-3",
        "--warmup_ratio",
        "0.1",
        "--eval_steps",
        "20",
        "--fmri_downsample_rates",
        *rates,
    )
    assert_learns(records, 0.05, 0.03)
    assert [r["step"] for r in records if r["split"] == "validation"] == [0, 20, 40]


def test_structure_mae_learns_on_mni152(cohort, tmp_path):
    _, records = run_stage(
        cohort,
        tmp_path,
        "structure",
        "--max_steps",
        "12",
        "--per_device_batch_size",
        "2",
        "--learning_rate",
        "2e-3",
        "--warmup_ratio",
        "0.1",
        "--eval_steps",
        "12",
    )
    assert_learns(records, 0.05, 0.03)


def test_harmonizer_learns_on_cached_latents(cohort, tmp_path):
    _, records = run_stage(
        cohort,
        tmp_path,
        "harmonizer",
        "--max_steps",
        "16",
        "--per_device_batch_size",
        "4",
        "--learning_rate",
        "3e-3",
        "--warmup_ratio",
        "0.1",
        "--eval_steps",
        "8",
    )
    assert_learns(records, 0.05, 0.03)
