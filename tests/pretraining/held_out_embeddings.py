"""Run under torchrun or `accelerate launch`: set up a run with the given flags (no training) and write the held-out
pass's loss and pooled embeddings (`evaluate_held_out(..., with_embeddings=True)`) to
`<output_dir>/held_out_rank<R>.safetensors`."""

import os
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from brainharmonix_hf.training.held_out import evaluate_held_out
from brainharmonix_hf.training.pretrain import parse_arguments
from brainharmonix_hf.training.run_setup import prepare_run

if __name__ == "__main__":
    args = parse_arguments(sys.argv[1:])
    run = prepare_run(args)
    result = evaluate_held_out(run.accelerator, run.stage, run.model, run.held_out, with_embeddings=True)
    tensors = {"loss": torch.tensor(result.loss, dtype=torch.float64), "embeddings": result.embeddings}
    save_file(tensors, str(Path(args.output_dir) / f"held_out_rank{os.environ.get('RANK', '0')}.safetensors"))
    run.accelerator.end_training()
