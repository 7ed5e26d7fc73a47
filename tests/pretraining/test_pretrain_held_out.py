"""The held-out loss is the exact mean over the held-out set, each item counted once, for any number of processes.

The fMRI cohort holds 4 held-out rows; in batches of 3 they make one full and one partial batch, so two processes end
on an uneven round (one has a batch, the other none). The figure must equal the one-process run over the same batches.
"""

import pytest
from distributed_runs import torchrun
from pretraining_runs import read_log, run_stage, stage_flags

FLAGS = ("--max_steps", "1", "--seed", "5", "--per_device_batch_size", "3")


def held_out_losses(records: list[dict]) -> dict[int, float]:
    return {record["step"]: record["loss"] for record in records if record["split"] == "validation"}


def test_two_processes_give_the_one_process_held_out_loss(cohort, tmp_path):
    torchrun("ddp_pretrain.py", ["function", "--output_dir", str(tmp_path / "two"), *stage_flags(cohort, "function"),
                                 *FLAGS])  # fmt: skip
    _, one = run_stage(cohort, tmp_path / "one", "function", *FLAGS)
    two = held_out_losses(read_log(tmp_path / "two"))
    assert two[0] == pytest.approx(held_out_losses(one)[0], rel=1e-6)
