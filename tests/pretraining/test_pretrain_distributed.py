"""FunctionJEPA pretraining in two real processes on CPU (torchrun, gloo): after several steps the parameters (context
encoder, predictor, EMA target encoder) are identical on both ranks and equal to a one-process run with the same
global batch."""

from pathlib import Path

import pytest
import torch
from distributed_runs import torchrun
from pretraining_runs import run_stage, stage_flags
from safetensors.torch import load_file

from brainharmonix_hf import FunctionJEPAConfig, FunctionJEPAForPreTraining

FLAGS = ("--max_steps", "4", "--learning_rate", "2e-3", "--warmup_ratio", "0.25", "--seed", "3")


@pytest.fixture(scope="module")
def two_process_run(cohort, tmp_path_factory) -> Path:
    """Output folder of a 2-process run (global batch 4 = 2 per process, dispatched from process 0)."""
    output_dir = tmp_path_factory.mktemp("ddp")
    arguments = ["function", "--output_dir", str(output_dir), *stage_flags(cohort, "function"), *FLAGS]
    torchrun("ddp_pretrain.py", [*arguments, "--per_device_batch_size", "2", "--dispatch_batches", "true"])
    return output_dir


def test_parameters_are_identical_on_both_ranks_and_trained(two_process_run, cohort):
    rank0, rank1 = (load_file(two_process_run / f"rank{rank}.safetensors") for rank in (0, 1))
    assert rank0.keys() == rank1.keys()
    for name, value in rank0.items():
        assert torch.equal(value, rank1[name]), name
    torch.manual_seed(3)
    start = FunctionJEPAForPreTraining(FunctionJEPAConfig.from_pretrained(cohort / "function_config")).state_dict()
    moved = [name for name, value in rank0.items() if not torch.equal(value, start[name])]
    assert len(moved) > len(rank0) // 2, "training changed too few parameters for the comparison to mean anything"
    assert any(name.startswith("target_encoder.") for name in moved), "the EMA target encoder did not move"


def test_two_processes_match_one_process_with_the_same_global_batch(two_process_run, cohort, tmp_path):
    rank0 = load_file(two_process_run / "rank0.safetensors")
    single, _ = run_stage(cohort, tmp_path, "function", *FLAGS, "--per_device_batch_size", "4")
    for name, parameter in single.named_parameters():
        torch.testing.assert_close(rank0[name], parameter.detach(), rtol=1e-4, atol=1e-6, msg=name)
