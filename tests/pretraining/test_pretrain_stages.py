"""Every registered stage runs through the one loop's pieces: the held-out pass returns the exact loss and, on
request, one pooled embedding `(hidden_size,)` per held-out item in item order, equal to the stage's embedding of
that item alone."""

import pytest
import torch
from pretraining_runs import stage_flags

from brainharmonix_hf.training.held_out import evaluate_held_out
from brainharmonix_hf.training.pretrain import parse_arguments
from brainharmonix_hf.training.run_setup import prepare_run
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
