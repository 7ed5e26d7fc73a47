"""Resuming anywhere: a run resumed with another number of processes or another per-device batch continues at the
first item of the epoch it has not trained on (sample ids recorded with `--log_samples`: every training item of the
epoch once, none skipped, none twice), and resuming from an older checkpoint abandons the newer ones, so that
`--resume_from_checkpoint latest` and pruning never pick them."""

import pytest
import torch
from distributed_runs import torchrun
from pretraining_runs import read_log, run_stage, stage_flags
from safetensors.torch import load_file

from brainharmonix_hf.training import checkpoints

# The fMRI cohort has 8 training rows: one epoch is 8 items.
NUM_TRAIN = 8
FLAGS = ("--log_samples", "true", "--seed", "7")


def run(cohort, output_dir, processes: int, per_device: int, max_steps: int, *flags: str) -> None:
    options = [*FLAGS, "--per_device_batch_size", str(per_device), "--max_steps", str(max_steps), *flags]
    if processes == 1:
        run_stage(cohort, output_dir, "function", *options)
    else:
        torchrun(
            "ddp_pretrain.py",
            ["function", "--output_dir", str(output_dir), *stage_flags(cohort, "function"), *options],
            nproc=processes,
        )


def samples_by_step(output_dir) -> dict[int, list[int]]:
    return {r["step"]: r["samples"] for r in read_log(output_dir) if r["split"] == "train" and "samples" in r}


@pytest.mark.parametrize(
    "first, then",
    [
        pytest.param((1, 2, 2), (2, 2, 1), id="1x2-then-2x2"),
        pytest.param((2, 1, 2), (1, 3, 1), id="2x1-then-1x3", marks=pytest.mark.slow),
        pytest.param((1, 2, 1), (1, 3, 2), id="1x2-then-1x3", marks=pytest.mark.slow),
    ],
)
def test_resume_with_other_processes_or_batch_continues_at_the_next_unseen_item(cohort, tmp_path, first, then):
    """`first` / `then`: (processes, per-device batch, optimizer steps) before and after the resume, the steps after
    reaching the end of the first epoch."""
    processes, per_device, steps = first
    run(cohort, tmp_path, processes, per_device, steps)
    seen = [index for step in sorted(samples_by_step(tmp_path)) for index in samples_by_step(tmp_path)[step]]
    assert len(seen) == processes * per_device * steps
    processes_after, per_device_after, steps_after = then
    run(cohort, tmp_path, processes_after, per_device_after, steps + steps_after, "--resume_from_checkpoint", "latest")
    by_step = samples_by_step(tmp_path)
    assert sorted(by_step) == list(range(1, steps + steps_after + 1))
    epoch = [index for step in sorted(by_step) for index in by_step[step]]
    assert epoch[: len(seen)] == seen  # the log kept the first part of the epoch
    # The rest of the epoch: every item not seen before, once; only fewer than one global batch may be left over.
    assert len(epoch) == len(set(epoch))
    assert NUM_TRAIN - len(epoch) < processes_after * per_device_after


def test_resuming_from_an_older_checkpoint_abandons_the_newer_ones(cohort, tmp_path):
    flags = ("--per_device_batch_size", "2", "--save_steps", "2")
    run_stage(cohort, tmp_path, "function", *flags, "--max_steps", "6", "--save_total_limit", "0")
    folder = tmp_path / "checkpoints"
    assert [path.name for path in checkpoints.list_checkpoints(folder)] == [f"step-0000000{s}" for s in (2, 4, 6)]

    model, records = run_stage(
        cohort, tmp_path, "function", *flags, "--max_steps", "4", "--save_total_limit", "2",
        "--resume_from_checkpoint", str(folder / "step-00000002"),
    )  # fmt: skip
    assert [path.name for path in checkpoints.list_checkpoints(folder)] == ["step-00000002", "step-00000004"]
    assert sorted(path.name for path in (folder / "abandoned").iterdir()) == ["step-00000004", "step-00000006"]
    latest = checkpoints.resolve("latest", folder)
    weights = load_file(latest / "model.safetensors")
    for name, parameter in model.named_parameters():
        assert torch.equal(weights[name], parameter.detach()), name
    assert max(r["step"] for r in records) == 4
