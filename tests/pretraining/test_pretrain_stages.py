"""Every registered stage runs through the one loop's pieces: the held-out pass returns the exact loss and, on
request, one pooled embedding `(hidden_size,)` per held-out item in item order, equal to the stage's embedding of
that item alone. An FSDP launch that Accelerate cannot shard is said."""

import pytest
import torch
from pretraining_runs import stage_flags
from transformers.testing_utils import CaptureLogger
from transformers.utils import logging

from brainharmonix_hf.training.held_out import evaluate_held_out
from brainharmonix_hf.training.pretrain import parse_arguments
from brainharmonix_hf.training.run_setup import build_accelerator, prepare_run
from brainharmonix_hf.training.stages import STAGES


@pytest.mark.parametrize("stage", list(STAGES))
def test_held_out_pass_gives_one_embedding_per_item_in_order(cohort, tmp_path, stage):
    args = parse_arguments(
        [stage, "--output_dir", str(tmp_path), *stage_flags(cohort, stage), "--per_device_batch_size", "2"]
    )
    run = prepare_run(args)
    held_out = run.held_out.dataset
    result = evaluate_held_out(run.accelerator, run.stage, run.model, run.held_out, with_embeddings=True)
    again = evaluate_held_out(run.accelerator, run.stage, run.model, run.held_out)
    assert result.loss == again.loss and result.loss > 0 and again.embeddings is None
    assert result.embeddings.shape == (len(held_out), run.stage.config.hidden_size)
    run.model.eval()
    with torch.no_grad():
        for index in (0, len(held_out) - 1):
            batch = run.held_out.collator([held_out[index]])
            batch.pop("sample_index")
            alone = run.stage.embeddings(run.model, batch)[0]
            torch.testing.assert_close(result.embeddings[index], alone, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(result.embeddings[0], result.embeddings[-1])


def test_an_fsdp_config_without_fsdp_is_said(tmp_path, monkeypatch):
    """Accelerate runs FSDP on accelerators only: on CPU an FSDP config trains unsharded, and the run says so."""
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    with CaptureLogger(logging.get_logger("brainharmonix_hf.training.run_setup")) as captured:
        accelerator = build_accelerator(parse_arguments(["function", "--output_dir", str(tmp_path)]))
    assert accelerator.device.type == "cpu"
    assert (
        "asks for FSDP" in captured.out
        and "trains as one process, every process holding the whole model" in captured.out
    )


def test_a_multi_process_launch_that_accelerate_runs_as_one_process_is_refused(tmp_path, monkeypatch):
    """torchrun on a machine without GPUs and without ACCELERATE_USE_CPU=1: Accelerate sets up every process as a
    run of its own, which would train N separate models into one folder."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("ACCELERATE_USE_CPU", raising=False)
    with pytest.raises(RuntimeError, match=r"one of 2 processes.*set ACCELERATE_USE_CPU=1"):
        build_accelerator(parse_arguments(["function", "--output_dir", str(tmp_path)]))
    assert not (tmp_path / "log.jsonl").exists()


def test_the_registry_gives_each_stage_class_and_refuses_unknown_names():
    from brainharmonix_hf.training import stages
    from brainharmonix_hf.training.stages.base import PretrainingStage
    from brainharmonix_hf.training.stages.function import FunctionStage

    assert list(STAGES) == list(stages.STAGE_CLASSES) == ["structure", "function", "harmonizer"]
    assert stages.get_stage("function") is FunctionStage is stages.FunctionStage is STAGES["function"]
    assert all(issubclass(stage, PretrainingStage) and stage.__name__ == stages.STAGE_CLASSES[name]
               for name, stage in STAGES.items())  # fmt: skip
    with pytest.raises(ValueError, match=r"stage must be one of \('structure', 'function', 'harmonizer'\), got 'jepa'"):
        stages.get_stage("jepa")
