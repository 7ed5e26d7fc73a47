"""The two entry points run a stage on the bundled real data: `brainharmonix pretrain <stage>` (in this process) and
`accelerate launch -m brainharmonix_hf.training.pretrain <stage>` (a launched process; slow)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pretraining_runs import read_log, stage_flags

from brainharmonix_hf import HarmonizerForPreTraining
from brainharmonix_hf.cli import main

SRC = Path(__file__).parents[2] / "src"


def test_brainharmonix_pretrain_runs_and_exports(cohort, tmp_path):
    main(
        [
            "pretrain",
            "harmonizer",
            "--output_dir",
            str(tmp_path),
            *stage_flags(cohort, "harmonizer"),
            "--max_steps",
            "2",
        ]
    )
    steps = [record["step"] for record in read_log(tmp_path) if record["split"] == "train"]
    assert steps == [1, 2]
    model = HarmonizerForPreTraining.from_pretrained(tmp_path / "model")
    assert model.config.num_hub_tokens == 4
    assert "2 optimizer steps" in (tmp_path / "model" / "README.md").read_text()


def test_unknown_stage_is_a_usage_error(capsys):
    with pytest.raises(SystemExit):
        main(["pretrain", "everything", "--output_dir", "x"])
    assert "stage must be one of ('structure', 'function', 'harmonizer')" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["structure", "function", "harmonizer"])
def test_accelerate_launch_runs_each_stage(cohort, tmp_path, stage):
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "1", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "brainharmonix_hf.training.pretrain", stage,
        "--output_dir", str(tmp_path), *stage_flags(cohort, stage), "--max_steps", "2",
    ]  # fmt: skip
    environment = os.environ | {"PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "model" / "config.json").is_file()
    assert [r["step"] for r in read_log(tmp_path) if r["split"] == "train"] == [1, 2]
