"""Reliability of the pretraining loop: a SIGKILLed run resumes to the same loss trajectory, damaged or partial
checkpoints are refused with a clear error, and non-finite losses follow the stated policy (skip, report, abort)."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from pretraining_runs import read_log, run_stage, stage_flags

from brainharmonix_hf import FMRIFeatureExtractor, FunctionJEPAConfig
from brainharmonix_hf.training.checkpoints import CheckpointError
from brainharmonix_hf.training.pretrain import NonFiniteLossError

SRC = Path(__file__).parents[2] / "src"
FLAGS = (
    "--max_steps",
    "16",
    "--per_device_batch_size",
    "2",
    "--learning_rate",
    "2e-3",
    "--save_steps",
    "2",
    "--save_total_limit",
    "3",
)


def train_losses(records: list[dict]) -> dict[int, float]:
    return {record["step"]: record["loss"] for record in records if record["split"] == "train" and "loss" in record}


@pytest.fixture(scope="module")
def uninterrupted(cohort, tmp_path_factory) -> Path:
    output_dir = tmp_path_factory.mktemp("uninterrupted")
    run_stage(cohort, output_dir, "function", *FLAGS)
    return output_dir


def test_sigkilled_run_resumes_to_the_same_losses(cohort, uninterrupted, tmp_path):
    command = [
        sys.executable,
        "-m",
        "brainharmonix_hf.training.pretrain",
        "function",
        "--output_dir",
        str(tmp_path),
        *stage_flags(cohort, "function"),
        *FLAGS,
    ]
    environment = os.environ | {"PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "checkpoints" / "step-00000006").exists():
            assert process.poll() is None, process.stderr.read().decode()[-3000:]
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.01)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    assert process.returncode == -signal.SIGKILL
    assert not (tmp_path / "model").exists()
    killed_at = max(train_losses(read_log(tmp_path)))
    assert 6 <= killed_at < 16

    _, records = run_stage(cohort, tmp_path, "function", *FLAGS, "--resume_from_checkpoint", "latest")
    expected, resumed = train_losses(read_log(uninterrupted)), train_losses(records)
    assert sorted(resumed) == list(range(1, 17))
    np.testing.assert_allclose([resumed[s] for s in range(1, 17)], [expected[s] for s in range(1, 17)], rtol=1e-5)


def test_damaged_checkpoints_are_refused(cohort, uninterrupted, tmp_path):
    shutil.copytree(uninterrupted / "checkpoints", tmp_path / "checkpoints")
    latest = sorted((tmp_path / "checkpoints").iterdir())[-1]
    with pytest.raises(CheckpointError, match="already holds checkpoints"):
        run_stage(cohort, tmp_path, "function", *FLAGS)

    weights = latest / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"corrupt: the contents of model\.safetensors changed"):
        run_stage(cohort, tmp_path, "function", *FLAGS, "--resume_from_checkpoint", "latest")

    weights.write_bytes(bytes(data[:1000]))
    with pytest.raises(CheckpointError, match=r"corrupt: model\.safetensors has 1000 bytes"):
        run_stage(cohort, tmp_path, "function", *FLAGS, "--resume_from_checkpoint", str(latest))

    (latest / "checkpoint.json").unlink()
    with pytest.raises(CheckpointError, match=r"incomplete: it has no checkpoint\.json"):
        run_stage(cohort, tmp_path, "function", *FLAGS, "--resume_from_checkpoint", "latest")


def _cohort_with_bad_subject(cohort: Path, folder: Path, num_good: int) -> Path:
    """A copy of the fMRI manifest (train rows kept: `num_good`) plus subject `bad`, whose values overflow float32
    inside the model (1e38), so its loss is NaN; and `raw_processor/`, an fMRI processor that passes values unchanged
    with its raw-scale guard off (`--processor`), so the values reach the model."""
    shutil.copytree(cohort, folder, dirs_exist_ok=True)
    num_time_patches = FunctionJEPAConfig.from_pretrained(cohort / "function_config").num_time_patches
    raw = FMRIFeatureExtractor(num_time_patches=num_time_patches, normalization="none", raw_scale_threshold=None)
    raw.save_pretrained(folder / "raw_processor")
    np.save(folder / "bad.npy", np.full((400, 120), 1e38, dtype=np.float32) * np.linspace(-1, 1, 120))
    lines = (cohort / "fmri.csv").read_text().splitlines()
    train = [line for line in lines[1:] if line.endswith(",train")][:num_good]
    (folder / "fmri.csv").write_text("\n".join([lines[0], *train, "bad,1,bad.npy,1.4,train"]) + "\n")
    return folder


def test_nonfinite_loss_skips_the_update_and_reports_the_subject(cohort, tmp_path):
    folder = _cohort_with_bad_subject(cohort, tmp_path / "cohort", num_good=3)
    flags = ("--max_steps", "6", "--per_device_batch_size", "1", "--processor", str(folder / "raw_processor"))
    model, records = run_stage(folder, tmp_path / "run", "function", *flags)
    events = [record for record in records if record.get("event") == "nonfinite_loss"]
    assert events and all(event["subjects"] == ["bad/1"] for event in events)
    # Skipped updates do not count: every step 1..6 is a real update, and the weights stay finite.
    assert sorted(train_losses(records)) == [1, 2, 3, 4, 5, 6]
    assert all(np.isfinite(loss) for loss in train_losses(records).values())
    assert all(bool(torch.isfinite(parameter).all()) for parameter in model.parameters())


def test_consecutive_nonfinite_losses_abort_without_any_update(cohort, tmp_path):
    folder = _cohort_with_bad_subject(cohort, tmp_path / "cohort", num_good=0)
    flags = (
        "--max_steps",
        "6",
        "--per_device_batch_size",
        "1",
        "--processor",
        str(folder / "raw_processor"),
        "--max_consecutive_nonfinite",
        "3",
    )
    with pytest.raises(NonFiniteLossError, match=r"3 updates in a row .* subjects \['bad/1'\]"):
        run_stage(folder, tmp_path / "run", "function", *flags)
    events = [record for record in read_log(tmp_path / "run") if record.get("event") == "nonfinite_loss"]
    assert [event["step"] for event in events] == [0, 0, 0]
